//! Load generators for zerorpc-rs, run as separate processes.
//!
//! Two binaries put a server and its clients in different processes, as in
//! production, so that the load tests (`tests/it`) and `cargo xtask bench`
//! measure what a real deployment sees: ZeroMQ over tcp between processes,
//! the transport's I/O threads, back-pressure and heartbeats under load.
//!
//! * `zerorpc-load-server` serves `nap`, `echo`, `add`, `count` and `stats`
//!   (see its `--help`), bound or connected to a hub. It prints
//!   `listening <endpoint>` or `connected <endpoint>` once ready and stops on
//!   SIGTERM or SIGINT.
//! * `zerorpc-load-client` makes calls or opens streams with many in flight,
//!   checks every answer and prints one JSON line of counts. It exits 0 only
//!   if every call succeeded with the right answer.
//!
//! This library holds what both binaries and the tests share: parsing
//! durations given in seconds, and reading a process's memory and thread
//! count from `/proc`. It is not published.
//!
//! This crate has no feature flags.

use std::io;
use std::time::Duration;

/// The largest number of seconds accepted on a command line (about 31 years),
/// as for the hub's durations.
pub const MAX_SECONDS: f64 = 1e9;

/// Parses a number of seconds, fractions allowed, from 0 to [`MAX_SECONDS`].
///
/// For clap's `value_parser`; the error is the text clap shows.
pub fn parse_seconds(text: &str) -> Result<f64, String> {
    let secs: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    if !(0.0..=MAX_SECONDS).contains(&secs) {
        return Err(format!(
            "expected a number of seconds from 0 to {MAX_SECONDS:e}, found {text}"
        ));
    }
    Ok(secs)
}

/// `secs` as a duration, `None` for 0 (the command lines' "disabled").
///
/// `secs` must be what [`parse_seconds`] accepts; anything else is `None`.
pub fn optional_duration(secs: f64) -> Option<Duration> {
    if secs > 0.0 {
        Duration::try_from_secs_f64(secs).ok()
    } else {
        None
    }
}

/// What `/proc/<pid>/status` says about a process's size.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcStatus {
    /// Resident set size (`VmRSS`), in bytes.
    pub rss_bytes: u64,
    /// Number of threads (`Threads`).
    pub threads: u64,
}

impl ProcStatus {
    /// The status of the calling process.
    pub fn current() -> io::Result<ProcStatus> {
        ProcStatus::read("/proc/self/status")
    }

    /// The status of process `pid`.
    pub fn of(pid: u32) -> io::Result<ProcStatus> {
        ProcStatus::read(&format!("/proc/{pid}/status"))
    }

    fn read(path: &str) -> io::Result<ProcStatus> {
        let text = std::fs::read_to_string(path)?;
        ProcStatus::parse(&text).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{path}: no VmRSS or Threads line"),
            )
        })
    }

    /// Parses the text of a `/proc/<pid>/status` file.
    fn parse(text: &str) -> Option<ProcStatus> {
        let field = |name: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
                .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
        };
        Some(ProcStatus {
            // The kernel writes "VmRSS:     1234 kB", always in kB.
            rss_bytes: field("VmRSS")?.saturating_mul(1024),
            threads: field("Threads")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_bounded_numbers() {
        assert_eq!(parse_seconds("1.5"), Ok(1.5));
        assert_eq!(parse_seconds("0"), Ok(0.0));
        for bad in ["-1", "NaN", "inf", "x", "", "1e10"] {
            assert!(parse_seconds(bad).is_err(), "{bad}");
        }
        assert_eq!(optional_duration(0.0), None);
        assert_eq!(optional_duration(0.25), Some(Duration::from_millis(250)));
    }

    #[test]
    fn proc_status_is_parsed_and_read() {
        let text = "Name:\tx\nVmPeak:\t  9 kB\nVmRSS:\t    1234 kB\nThreads:\t7\n";
        assert_eq!(
            ProcStatus::parse(text),
            Some(ProcStatus {
                rss_bytes: 1234 * 1024,
                threads: 7
            })
        );
        assert_eq!(ProcStatus::parse("Name:\tx\n"), None);
        let me = ProcStatus::current().unwrap();
        assert!(me.rss_bytes > 0 && me.threads >= 1);
        assert!(ProcStatus::of(std::process::id()).unwrap().threads >= 1);
    }
}
