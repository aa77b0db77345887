//! Command-line parsing for `cargo xtask`.
//!
//! Hand-written rather than clap: there are few flags, and xtask should build
//! fast on a fresh machine.

use anyhow::{Context, bail};

/// Shown by `cargo xtask help` and after a usage error.
pub(crate) const USAGE: &str = "\
usage: cargo xtask <task> [options]

tasks:
  ci                      setup, fmt, clippy, layering, tidy, doc, then the tests
  setup                   install the system packages and target/venv the tests need
  layering                check the crate layering rules (and print them)
  tidy                    check //! docs, whitespace, line endings and the README
  fuzz [--seconds N]      run the `decode` fuzz target for N seconds (default 60)
       [--target NAME]    another fuzz target
  demo                    run the demo of the whole system
  bench [NAME]            run the benchmarks (all, or the one named)
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
    Fuzz { target: String, seconds: u64 },
    Demo,
    Bench { name: Option<String> },
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
        "bench" => {
            return match rest {
                [] => Ok(Task::Bench { name: None }),
                [name] if !name.starts_with('-') => Ok(Task::Bench {
                    name: Some(name.clone()),
                }),
                _ => bail!("`bench` takes at most one benchmark name"),
            };
        }
        other => bail!("unknown task `{other}`"),
    };
    if let Some(extra) = rest.first() {
        bail!("unexpected argument `{extra}` for `{}`", args[0]);
    }
    Ok(task)
}

fn parse_fuzz(args: &[String]) -> anyhow::Result<Task> {
    let mut seconds = DEFAULT_FUZZ_SECONDS;
    let mut target = "decode".to_owned();
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
        match flag {
            "--seconds" => {
                let text = value()?;
                seconds = text
                    .parse()
                    .with_context(|| format!("`--seconds {text}`: not a whole number"))?;
                if seconds == 0 {
                    bail!("`--seconds` must be at least 1");
                }
            }
            "--target" => target = value()?,
            _ => bail!("unknown option `{arg}` for `fuzz`"),
        }
    }
    Ok(Task::Fuzz { target, seconds })
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
            target: "decode".to_owned(),
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
    }

    #[test]
    fn fuzz_seconds() {
        check("fuzz", fuzz(DEFAULT_FUZZ_SECONDS));
        check("fuzz --seconds 5", fuzz(5));
        check("fuzz --seconds=7", fuzz(7));
        check(
            "fuzz --target roundtrip --seconds 3",
            Task::Fuzz {
                target: "roundtrip".to_owned(),
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
        check_error("fuzz --minutes 3", "unknown option `--minutes`");
    }

    #[test]
    fn bench_names() {
        check("bench", Task::Bench { name: None });
        check(
            "bench codec",
            Task::Bench {
                name: Some("codec".to_owned()),
            },
        );
        check_error("bench codec more", "at most one");
        check_error("bench --all", "at most one");
    }

    #[test]
    fn unknown_tasks_and_extra_arguments() {
        check_error("deploy", "unknown task `deploy`");
        check_error("ci --fast", "unexpected argument `--fast` for `ci`");
    }
}
