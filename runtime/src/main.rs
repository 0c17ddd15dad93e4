//! `veil`: the two-party runtime. The server and client executors land with the runtime issue;
//! until then the binary says so and exits with code 2.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!("error: the two-party runtime is not built yet (veil {})", env!("CARGO_PKG_VERSION"));
    eprintln!("caused by: `veil server` and `veil client` arrive with the runtime issue; use `veilc` meanwhile");
    ExitCode::from(2)
}
