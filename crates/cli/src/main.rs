//! `zerorpc`: call, list and inspect ZeroRPC services from the command line,
//! or serve existing programs as a service.
//!
//! The command line follows zerorpc-python's `zerorpc` tool (same flags,
//! same positional shift with `--connect`/`--bind`) and adds subcommands
//! (`zerorpc completions SHELL`, `zerorpc announce FILE`). Usage, exit statuses and the service file
//! format are documented in docs/cli.md.

mod announce;
mod args;
mod call;
mod collector;
mod debug;
mod dns;
mod exit;
mod log;
mod register;
mod render;
mod security;
mod serve;
mod size;
mod spec;
mod trace;
mod tracedump;

use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use crate::args::{ColorWhen, Invocation, RawArgs};
use crate::exit::Failure;

fn main() -> ExitCode {
    // Large messages churn glibc's heaps: see `tune_malloc`.
    zerorpc::transport::tune_malloc();
    let argv = args::normalize(std::env::args_os());
    let raw = match RawArgs::try_parse_from(argv) {
        Ok(raw) => raw,
        // clap prints help and version to stdout (status 0) and usage
        // errors to stderr (status 2).
        Err(e) => e.exit(),
    };
    match raw.rpc.color {
        ColorWhen::Auto => {}
        ColorWhen::Always => anstream::ColorChoice::Always.write_global(),
        ColorWhen::Never => anstream::ColorChoice::Never.write_global(),
    }
    log::install();
    let result = raw.validate().and_then(run);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            if failure.code() != 0 {
                failure.report();
            }
            ExitCode::from(failure.code())
        }
    }
}

fn run(invocation: Invocation) -> Result<(), Failure> {
    match invocation {
        Invocation::Completions(shell) => {
            // Generated into memory first: clap_complete panics when it
            // cannot write, e.g. to a closed pipe.
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut RawArgs::command(), "zerorpc", &mut script);
            let mut out = std::io::stdout().lock();
            out.write_all(&script)
                .and_then(|()| out.flush())
                .map_err(exit::output_error)
        }
        Invocation::Call(call) => runtime()?.block_on(call::run(call)),
        Invocation::Serve(serve) => runtime()?.block_on(serve::run(serve)),
        Invocation::Announce(announce) => announce::run(announce),
        Invocation::Resolve(resolve) => dns::resolve(&resolve),
        Invocation::Collector(args) => runtime()?.block_on(collector::run(args)),
        Invocation::Tracedump(args) => runtime()?.block_on(tracedump::tracedump(args)),
        Invocation::Top(args) => runtime()?.block_on(tracedump::top(args)),
        Invocation::Keygen(args) => security::keygen(&args),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::local(format!("cannot start the async runtime: {e}")))
}
