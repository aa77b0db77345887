//! How the program fails: one [`Failure`] per documented exit status, and
//! its report on stderr.

use std::fmt;
use std::io::Write;

use anstyle::{AnsiColor, Style};
use zerorpc::{ErrorKind, RemoteError};

use crate::args::Endpoints;

/// Exit statuses, as documented in docs/cli.md and `--help`.
pub(crate) mod code {
    /// The remote method failed.
    pub(crate) const REMOTE: u8 = 1;
    /// Bad command line or service file.
    pub(crate) const USAGE: u8 = 2;
    /// No reply within the call timeout.
    pub(crate) const TIMEOUT: u8 = 3;
    /// The remote stopped heartbeating.
    pub(crate) const LOST_REMOTE: u8 = 4;
    /// A socket or endpoint failure.
    pub(crate) const TRANSPORT: u8 = 5;
    /// A reply that is not valid ZeroRPC.
    pub(crate) const PROTOCOL: u8 = 6;
    /// Anything else local (cannot start the runtime, write the output...).
    pub(crate) const LOCAL: u8 = 7;
}

/// A failure, with the exit status it maps to.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The remote method answered with an error.
    Remote(RemoteError),
    /// A local failure: exit status and a one-line message.
    Local { code: u8, message: String },
    /// A failure and what was probably meant instead.
    Hinted { failure: Box<Failure>, hint: String },
}

impl Failure {
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Failure::Local {
            code: code::USAGE,
            message: message.into(),
        }
    }

    pub(crate) fn local(message: impl Into<String>) -> Self {
        Failure::Local {
            code: code::LOCAL,
            message: message.into(),
        }
    }

    pub(crate) fn protocol(message: impl Into<String>) -> Self {
        Failure::Local {
            code: code::PROTOCOL,
            message: message.into(),
        }
    }

    /// Explains a client error in terms of what the user asked for.
    pub(crate) fn from_call(
        error: zerorpc::Error,
        endpoints: &Endpoints,
        method: &str,
        timeout: Option<std::time::Duration>,
    ) -> Self {
        let where_ = endpoints.describe();
        match error.kind() {
            ErrorKind::Remote => match error.remote() {
                Some(remote) => Failure::Remote(remote.clone()),
                None => Failure::protocol(error.to_string()),
            },
            ErrorKind::Timeout => {
                let after = timeout.map_or_else(
                    || "the timeout".to_owned(),
                    |t| format!("{}s", t.as_secs_f64()),
                );
                Failure::Local {
                    code: code::TIMEOUT,
                    message: format!(
                        "no reply from {where_} within {after} when calling {method} (is a server running there? see --timeout)"
                    ),
                }
            }
            ErrorKind::LostRemote => Failure::Local {
                code: code::LOST_REMOTE,
                message: format!("{error} from {where_} while calling {method}"),
            },
            ErrorKind::Transport => Failure::Local {
                code: code::TRANSPORT,
                message: chain(&error),
            },
            ErrorKind::Codec => Failure::protocol(format!(
                "bad reply from {where_} to {method}: {}",
                chain(&error)
            )),
            _ => Failure::local(chain(&error)),
        }
    }

    /// A client or server that could not be set up.
    pub(crate) fn from_setup(error: zerorpc::Error) -> Self {
        let code = if error.is_transport() {
            code::TRANSPORT
        } else {
            code::LOCAL
        };
        Failure::Local {
            code,
            message: chain(&error),
        }
    }

    /// This failure, followed by a hint at what was probably meant.
    pub(crate) fn with_hint(self, hint: impl Into<String>) -> Self {
        Failure::Hinted {
            failure: Box::new(self),
            hint: hint.into(),
        }
    }

    pub(crate) fn code(&self) -> u8 {
        match self {
            Failure::Remote(_) => code::REMOTE,
            Failure::Local { code, .. } => *code,
            Failure::Hinted { failure, .. } => failure.code(),
        }
    }

    /// Prints the failure on stderr: a remote error as its name, message and
    /// traceback, anything else as one line.
    pub(crate) fn report(&self) {
        let mut err = anstream::stderr().lock();
        let red = Style::new().fg_color(Some(AnsiColor::Red.into())).bold();
        // Nothing sensible is left to do if stderr itself fails.
        let _ = match self {
            Failure::Remote(e) => {
                let traceback = e.traceback().trim_end();
                let summary = format!("{}: {}", e.name(), e.message());
                // A Python traceback already ends with `Name: message`.
                let traceback = if traceback.is_empty() || traceback == summary {
                    ""
                } else {
                    traceback
                };
                // ... as does ours for a panic: `Panic in method boom: kaboom`.
                let said = |line: &str| {
                    let line = line.trim();
                    line == summary.trim()
                        || (line.starts_with(e.name())
                            && line.ends_with(&format!(": {}", e.message().trim())))
                };
                let summary_line = if traceback.lines().any(said) {
                    Ok(())
                } else {
                    writeln!(err, "{red}{}{red:#}: {}", e.name(), e.message())
                };
                summary_line.and_then(|()| {
                    if traceback.is_empty() {
                        Ok(())
                    } else {
                        writeln!(err, "{traceback}")
                    }
                })
            }
            Failure::Local { message, .. } => {
                writeln!(err, "{red}zerorpc: error:{red:#} {message}")
            }
            Failure::Hinted { failure, hint } => {
                failure.report();
                let bold = Style::new().bold();
                writeln!(err, "{bold}hint:{bold:#} {hint}")
            }
        };
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Remote(e) => write!(f, "{}: {}", e.name(), e.message()),
            Failure::Local { message, .. } => f.write_str(message),
            Failure::Hinted { failure, hint } => write!(f, "{failure} (hint: {hint})"),
        }
    }
}

/// The error and its causes on one line, `error: cause: cause's cause`.
pub(crate) use zerorpc::error_chain as chain;

/// Writes one line of status or debug output to stderr.
///
/// Unlike `eprintln!`, which panics when stderr is a closed pipe (`zerorpc
/// --server ... 2>&1 | head`), a failed write is ignored: losing these lines
/// must not stop a server or, from the I/O thread's event hook, a client.
pub(crate) fn stderr_line(line: fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// Output errors: a closed pipe (`zerorpc ... | head`) ends quietly.
pub(crate) fn output_error(error: std::io::Error) -> Failure {
    if error.kind() == std::io::ErrorKind::BrokenPipe {
        Failure::Local {
            code: 0,
            message: String::new(),
        }
    } else {
        Failure::local(format!("cannot write the output: {error}"))
    }
}
