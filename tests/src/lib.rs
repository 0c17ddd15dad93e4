//! Shared helpers for the end-to-end tests (the tests live in `tests/tests/`).
