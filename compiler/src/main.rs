//! `veilc`: the Veil compiler's command line.
//!
//! Exit codes: 0 success, 1 a named file or input rejected (missing, unreadable, malformed;
//! explained), 2 an internal error or a failed write. Errors print `error: ...` and then one `caused by: ...` line per cause.

// A binary: results go to stdout and status to stderr by design (the library never prints).
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod cli;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Args::parse();
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "error: {}", e.error);
            for cause in e.error.chain().skip(1) {
                let _ = writeln!(err, "caused by: {cause}");
            }
            ExitCode::from(e.code)
        }
    }
}
