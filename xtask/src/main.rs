//! Project automation for zerorpc-rs, run as `cargo xtask <task>`.
//!
//! One binary with subcommands, reached through the `xtask` alias in
//! `.cargo/config.toml`, so the automation is Rust code that works from any
//! directory of the workspace and needs nothing but cargo. See [`flags`] for
//! the list of tasks.

mod bench;
mod ci;
mod flags;
mod layering;
mod run;
mod setup;
mod tasks;
mod tidy;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use flags::{Bench, Task};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let task = match flags::parse(&args) {
        Ok(task) => task,
        Err(e) => {
            eprintln!("error: {e}\n\n{}", flags::USAGE);
            return ExitCode::from(2);
        }
    };
    match dispatch(task) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(task: Task) -> anyhow::Result<ExitCode> {
    let root = workspace_root();
    match task {
        Task::Help => {
            println!("{}", flags::USAGE);
        }
        Task::Ci => ci::run(&root)?,
        Task::Setup => {
            setup::run(&root)?;
        }
        Task::Layering => layering::run(&root.join("Cargo.toml"))?,
        Task::Tidy => tidy::run(&root)?,
        Task::Soak { minutes } => bench::soak(&root, minutes)?,
        Task::Fuzz { target, seconds } => tasks::fuzz(&root, target.as_deref(), seconds)?,
        // Forward the demo's own status: it is what a user sees.
        Task::Demo => return tasks::demo(&root),
        Task::Bench(Bench::Suite(options)) => bench::run(&root, &options)?,
        Task::Bench(Bench::Criterion(name)) => tasks::criterion(&root, &name)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The workspace root: xtask lives one level below it.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask has a parent directory")
        .to_path_buf()
}
