//! The `idp-proxy` command: serve, and the operator's tools (keys, mandates, config); see
//! `cli/`.

use std::process::ExitCode;

use clap::Parser;

mod cli;

// Many small short-lived allocations across worker and blocking threads: mimalloc avoids the
// arena lock contention glibc's allocator showed under load (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    match cli::run(cli::Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
