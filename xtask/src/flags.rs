//! Command-line parsing for `cargo xtask`.
//!
//! Hand-written rather than clap: there are few flags, and xtask should build
//! fast on a fresh machine.

use anyhow::{Context, bail};

use crate::bench::Options as SuiteOptions;

/// Shown by `cargo xtask help` and after a usage error.
pub(crate) const USAGE: &str = "\
usage: cargo xtask <task> [options]

tasks:
  ci                      setup, fmt, clippy, layering, tidy, doc, then the tests
  setup                   install the system packages and target/venv the tests need
  layering                check the crate layering rules (and print them)
  tidy                    check //! docs, whitespace, line endings and the README
  fuzz [--seconds N]      run every fuzz target for N seconds each (default 60)
       [--target NAME]    only this one
  soak [--minutes N]      mixed load with faults injected for N minutes (default 10),
                          watching memory, descriptors and threads for growth
  demo                    run the demo of the whole system
  bench                   the side-by-side suite (raw libzmq, ours, zerorpc-python),
                          separate processes, median of 3 runs; writes docs/benchmarks.md
        [--quick]         every workload briefly, once; writes nothing unless --write
        [--write]         write docs/benchmarks.md whatever the other options
        [--debug]         use debug builds (checks the suite runs; figures mean little)
        [--only TEXT]     only the workloads whose id contains TEXT
        [--runs N]        runs per workload (default 3, 1 with --quick)
        [--against REV]   sequential and 100-in-flight calls, this tree against git REV
  bench NAME              a criterion benchmark: codec (wire) or latency (hub)
  help                    show this message";

/// Default fuzzing time for `cargo xtask fuzz`.
pub(crate) const DEFAULT_FUZZ_SECONDS: u64 = 60;

/// What `cargo xtask` was asked to do.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Task {
    Help,
    Ci,
    Setup,
    Layering,
    Tidy,
    Fuzz {
        /// One target; every target when `None`.
        target: Option<String>,
        seconds: u64,
    },
    Demo,
    Soak {
        minutes: u64,
    },
    Bench(Bench),
}

/// What `cargo xtask bench` runs.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Bench {
    /// The suite.
    Suite(SuiteOptions),
    /// One criterion benchmark, by name.
    Criterion(String),
}

/// Parses the arguments after `cargo xtask`.
pub(crate) fn parse(args: &[String]) -> anyhow::Result<Task> {
    let Some((task, rest)) = args.split_first() else {
        return Ok(Task::Help);
    };
    let task = match task.as_str() {
        "help" | "-h" | "--help" => Task::Help,
        "ci" => Task::Ci,
        "setup" => Task::Setup,
        "layering" => Task::Layering,
        "tidy" => Task::Tidy,
        "demo" => Task::Demo,
        "fuzz" => return parse_fuzz(rest),
        "soak" => return parse_soak(rest),
        "bench" => return parse_bench(rest).map(Task::Bench),
        other => bail!("unknown task `{other}`"),
    };
    if let Some(extra) = rest.first() {
        bail!("unexpected argument `{extra}` for `{}`", args[0]);
    }
    Ok(task)
}

/// Calls `handle(flag, value)` for each option of `args`, where `value`
/// takes the option's value (`--flag value` or `--flag=value`).
fn each_option(
    args: &[String],
    mut handle: impl FnMut(&str, &mut dyn FnMut() -> anyhow::Result<String>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag, Some(value.to_owned())),
            None => (arg.as_str(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next().cloned())
                .with_context(|| format!("`{flag}` needs a value"))
        };
        handle(flag, &mut value)?;
    }
    Ok(())
}

/// A positive whole number given to `flag`.
fn positive(flag: &str, text: &str) -> anyhow::Result<u64> {
    let n: u64 = text
        .parse()
        .with_context(|| format!("`{flag} {text}`: not a whole number"))?;
    if n == 0 {
        bail!("`{flag}` must be at least 1");
    }
    Ok(n)
}

/// Default length of `cargo xtask soak`, in minutes.
pub(crate) const DEFAULT_SOAK_MINUTES: u64 = 10;

fn parse_soak(args: &[String]) -> anyhow::Result<Task> {
    let mut minutes = DEFAULT_SOAK_MINUTES;
    each_option(args, |flag, value| {
        match flag {
            "--minutes" => minutes = positive(flag, &value()?)?,
            _ => bail!("unknown option `{flag}` for `soak`"),
        }
        Ok(())
    })?;
    Ok(Task::Soak { minutes })
}

fn parse_fuzz(args: &[String]) -> anyhow::Result<Task> {
    let mut seconds = DEFAULT_FUZZ_SECONDS;
    let mut target = None;
    each_option(args, |flag, value| {
        match flag {
            "--seconds" => seconds = positive(flag, &value()?)?,
            "--target" => target = Some(value()?),
            _ => bail!("unknown option `{flag}` for `fuzz`"),
        }
        Ok(())
    })?;
    Ok(Task::Fuzz { target, seconds })
}

fn parse_bench(args: &[String]) -> anyhow::Result<Bench> {
    if let Some((name, rest)) = args.split_first()
        && !name.starts_with('-')
    {
        if let Some(extra) = rest.first() {
            bail!("unexpected argument `{extra}` after the benchmark name `{name}`");
        }
        return Ok(Bench::Criterion(name.clone()));
    }
    let mut options = SuiteOptions::default();
    each_option(args, |flag, value| {
        match flag {
            "--quick" => options.quick = true,
            "--write" => options.write = true,
            "--debug" => options.debug = true,
            "--only" => options.only = Some(value()?),
            "--against" => options.against = Some(value()?),
            "--runs" => {
                let runs = positive(flag, &value()?)?;
                options.runs = Some(usize::try_from(runs).context("`--runs`: too many")?);
            }
            _ => bail!("unknown option `{flag}` for `bench`"),
        }
        Ok(())
    })?;
    if options.against.is_some() && (options.write || options.only.is_some()) {
        bail!(
            "`--against` runs its own two workloads and writes nothing: drop `--write` and `--only`"
        );
    }
    Ok(Bench::Suite(options))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(args: &str, expected: Task) {
        let args: Vec<String> = args.split_whitespace().map(str::to_owned).collect();
        assert_eq!(parse(&args).unwrap(), expected, "{args:?}");
    }

    fn check_error(args: &str, message: &str) {
        let args: Vec<String> = args.split_whitespace().map(str::to_owned).collect();
        let error = parse(&args).unwrap_err().to_string();
        assert!(error.contains(message), "{args:?}: {error}");
    }

    fn fuzz(seconds: u64) -> Task {
        Task::Fuzz {
            target: None,
            seconds,
        }
    }

    #[test]
    fn simple_tasks() {
        check("", Task::Help);
        check("help", Task::Help);
        check("--help", Task::Help);
        check("ci", Task::Ci);
        check("setup", Task::Setup);
        check("layering", Task::Layering);
        check("tidy", Task::Tidy);
        check("demo", Task::Demo);
        check(
            "soak",
            Task::Soak {
                minutes: DEFAULT_SOAK_MINUTES,
            },
        );
        check("soak --minutes 2", Task::Soak { minutes: 2 });
    }

    #[test]
    fn fuzz_seconds() {
        check("fuzz", fuzz(DEFAULT_FUZZ_SECONDS));
        check("fuzz --seconds 5", fuzz(5));
        check("fuzz --seconds=7", fuzz(7));
        check(
            "fuzz --target roundtrip --seconds 3",
            Task::Fuzz {
                target: Some("roundtrip".to_owned()),
                seconds: 3,
            },
        );
    }

    #[test]
    fn fuzz_errors() {
        check_error("fuzz --seconds", "needs a value");
        check_error("fuzz --seconds ten", "not a whole number");
        check_error("fuzz --seconds -1", "not a whole number");
        check_error("fuzz --seconds 0", "at least 1");
        check_error("fuzz --minutes 3", "unknown option `--minutes` for `fuzz`");
    }

    fn suite(options: SuiteOptions) -> Task {
        Task::Bench(Bench::Suite(options))
    }

    #[test]
    fn bench_suite_and_criterion_names() {
        check("bench", suite(SuiteOptions::default()));
        check(
            "bench codec",
            Task::Bench(Bench::Criterion("codec".to_owned())),
        );
        check(
            "bench --quick --write --debug --only=latency --runs 5",
            suite(SuiteOptions {
                quick: true,
                write: true,
                debug: true,
                only: Some("latency".to_owned()),
                runs: Some(5),
                ..SuiteOptions::default()
            }),
        );
        check(
            "bench --against main",
            suite(SuiteOptions {
                against: Some("main".to_owned()),
                ..SuiteOptions::default()
            }),
        );
    }

    #[test]
    fn bench_errors() {
        check_error("bench codec more", "unexpected argument `more`");
        check_error("bench --all", "unknown option `--all` for `bench`");
        check_error("bench --runs 0", "at least 1");
        check_error("bench --runs x", "not a whole number");
        check_error("bench --only", "needs a value");
        check_error("bench --against main --write", "writes nothing");
    }

    #[test]
    fn unknown_tasks_and_extra_arguments() {
        check_error("deploy", "unknown task `deploy`");
        check_error("ci --fast", "unexpected argument `--fast` for `ci`");
    }
}
