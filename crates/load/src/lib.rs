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
//!   checks every answer and prints one JSON line of counts and latencies.
//!   It exits 0 only if every call succeeded with the right answer.
//! * `zerorpc-bench-raw` does the same round trips and one-way transfers
//!   with bare ZeroMQ sockets (DEALER/ROUTER, PUSH/PULL) through the same
//!   `zmq` crate: the baseline `cargo xtask bench` compares the others with.
//! * `zerorpc-bench-grpc` makes the same calls and streams over gRPC in
//!   Rust (tonic): what users would pick instead, set beside ours.
//!
//! This library holds what the binaries and the tests share: parsing
//! durations given in seconds, reading a process's memory and thread count
//! from `/proc`, summarising latencies and making the payloads both sides
//! check, and the floor of tracing `zerorpc-bench-raw --traced` measures
//! ([`trace_floor`]). It is not published.
//!
//! This crate has no feature flags.

use std::io;
use std::time::Duration;

pub mod trace_floor;

use anyhow::Context as _;
use serde_json::json;
use zerorpc::Value;
use zerorpc_tracing_collector::Tracer;

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
    /// The largest resident set size so far (`VmHWM`), in bytes: what a
    /// brief allocation left, even once freed.
    pub peak_rss_bytes: u64,
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
            peak_rss_bytes: field("VmHWM")?.saturating_mul(1024),
            threads: field("Threads")?,
        })
    }
}

/// The time each call took, summarised as percentiles at the end.
#[derive(Clone, Debug, Default)]
pub struct Latencies {
    samples: Vec<Duration>,
}

impl Latencies {
    /// Room for `calls` samples, so that recording does not reallocate
    /// while the calls being measured run.
    pub fn with_capacity(calls: usize) -> Latencies {
        Latencies {
            samples: Vec::with_capacity(calls),
        }
    }

    /// Adds one call's time.
    pub fn record(&mut self, took: Duration) {
        self.samples.push(took);
    }

    /// Percentiles in microseconds, `None` if nothing was recorded.
    pub fn summary(&mut self) -> Option<LatencySummary> {
        if self.samples.is_empty() {
            return None;
        }
        self.samples.sort_unstable();
        let total: Duration = self.samples.iter().sum();
        let micros = |d: Duration| d.as_secs_f64() * 1e6;
        Some(LatencySummary {
            p50_us: micros(self.percentile(50.0)),
            p90_us: micros(self.percentile(90.0)),
            p99_us: micros(self.percentile(99.0)),
            max_us: micros(self.percentile(100.0)),
            mean_us: micros(total) / self.samples.len() as f64,
        })
    }

    /// The nearest-rank percentile of the sorted, non-empty samples.
    fn percentile(&self, percent: f64) -> Duration {
        let count = self.samples.len();
        let rank = (percent / 100.0 * count as f64).ceil() as usize;
        self.samples[rank.clamp(1, count) - 1]
    }
}

/// What [`Latencies::summary`] reports, in microseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LatencySummary {
    /// The median.
    pub p50_us: f64,
    /// The 90th percentile.
    pub p90_us: f64,
    /// The 99th percentile.
    pub p99_us: f64,
    /// The slowest call.
    pub max_us: f64,
    /// The average.
    pub mean_us: f64,
}

impl LatencySummary {
    /// The JSON object the clients print as `latency_us`.
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "p50": self.p50_us,
            "p90": self.p90_us,
            "p99": self.p99_us,
            "max": self.max_us,
            "mean": self.mean_us,
        })
    }
}

/// Item number `index` of a stream of `bytes`-byte items, as the servers
/// send it and the clients expect it: the index in little-endian first (as
/// much of it as fits), then `x`s, so that a lost, repeated or reordered
/// item is seen.
pub fn stream_item(index: u64, bytes: usize) -> Vec<u8> {
    let mut item = vec![b'x'; bytes];
    let index = index.to_le_bytes();
    let head = bytes.min(index.len());
    item[..head].copy_from_slice(&index[..head]);
    item
}

/// Whether `item` is item number `index` of a stream of `bytes`-byte items
/// (see [`stream_item`]). Only the length and the index are compared, so
/// that checking costs the receiver little next to receiving.
pub fn is_stream_item(item: &[u8], index: u64, bytes: usize) -> bool {
    let head = bytes.min(8);
    item.len() == bytes && item[..head] == index.to_le_bytes()[..head]
}

/// What call number `i` of an echo method sends: `[i, <bytes x's>]`.
pub fn echo_payload(i: i64, bytes: usize) -> Value {
    Value::Array(vec![Value::from(i), Value::Binary(vec![b'x'; bytes])])
}

/// Whether `value` is [`echo_payload`]`(i, bytes)`, compared in place, the
/// blob a block at a time: byte by byte, checking 64 bytes cost the client
/// some 400 instructions per call, a tenth of what the call itself costs
/// it on the I/O side (the raw baseline checks its sequence number only).
pub fn is_echo_payload(value: &Value, i: i64, bytes: usize) -> bool {
    const XS: [u8; 64] = [b'x'; 64];
    match value.as_array().map(Vec::as_slice) {
        Some([index, Value::Binary(blob)]) => {
            index.as_i64() == Some(i)
                && blob.len() == bytes
                && blob
                    .chunks(XS.len())
                    .all(|block| block == &XS[..block.len()])
        }
        _ => false,
    }
}

/// `--trace-collector`'s tracer, its processes named `name` in the reports;
/// `None` without a collector (tracing off: nothing on the wire).
pub fn tracer(name: &str, collector: Option<&str>) -> anyhow::Result<Option<Tracer>> {
    let Some(collector) = collector else {
        return Ok(None);
    };
    let tracer = Tracer::builder()
        .name(name)
        .collector(collector)
        .build()
        .with_context(|| format!("cannot report traces to {collector}"))?;
    Ok(Some(tracer))
}

/// A tracer's counters, for the JSON reports: whether reports kept up.
pub fn tracer_json(tracer: &Tracer) -> serde_json::Value {
    let stats = tracer.stats();
    json!({
        "reported": stats.reported,
        "dropped_queue_full": stats.dropped_queue_full,
        "sent": stats.sent,
        "batches_dropped": stats.batches_dropped,
    })
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
    fn latencies_are_nearest_rank_percentiles() {
        assert_eq!(Latencies::default().summary(), None);
        let mut latencies = Latencies::with_capacity(100);
        // 100 µs ... 1 µs, recorded out of order.
        for micros in (1..=100).rev() {
            latencies.record(Duration::from_micros(micros));
        }
        let summary = latencies.summary().unwrap();
        assert_eq!(
            (
                summary.p50_us,
                summary.p90_us,
                summary.p99_us,
                summary.max_us
            ),
            (50.0, 90.0, 99.0, 100.0)
        );
        assert!((summary.mean_us - 50.5).abs() < 1e-9);
        let mut one = Latencies::default();
        one.record(Duration::from_micros(7));
        let one = one.summary().unwrap();
        assert_eq!((one.p50_us, one.p99_us), (7.0, 7.0));
        assert_eq!(one.to_json()["p99"], 7.0);
    }

    #[test]
    fn an_echo_payload_is_recognised_only_whole() {
        assert!(is_echo_payload(&echo_payload(7, 64), 7, 64));
        assert!(is_echo_payload(&echo_payload(-1, 0), -1, 0));
        assert!(!is_echo_payload(&echo_payload(7, 64), 8, 64));
        assert!(!is_echo_payload(&echo_payload(7, 64), 7, 63));
        let altered = Value::Array(vec![Value::from(7), Value::Binary(b"xxy".to_vec())]);
        assert!(!is_echo_payload(&altered, 7, 3));
        assert!(!is_echo_payload(&Value::from(7), 7, 0));
        // Checked whole past the first block too, to the last byte.
        assert!(is_echo_payload(&echo_payload(7, 200), 7, 200));
        for wrong in [63, 64, 130, 199] {
            let mut blob = vec![b'x'; 200];
            blob[wrong] = b'y';
            let altered = Value::Array(vec![Value::from(7), Value::Binary(blob)]);
            assert!(!is_echo_payload(&altered, 7, 200), "byte {wrong}");
        }
    }

    #[test]
    fn stream_items_carry_their_index() {
        assert_eq!(stream_item(1, 10), b"\x01\0\0\0\0\0\0\0xx");
        assert_eq!(stream_item(0x0201, 2), [1, 2]);
        assert_eq!(stream_item(5, 0), b"");
        assert_ne!(stream_item(1, 64), stream_item(2, 64));
        assert_eq!(stream_item(3, 65536).len(), 65536);
        assert!(is_stream_item(&stream_item(300, 64), 300, 64));
        assert!(is_stream_item(&stream_item(300, 3), 300, 3));
        assert!(!is_stream_item(&stream_item(300, 64), 301, 64));
        assert!(!is_stream_item(&stream_item(300, 64), 300, 65));
        assert!(!is_stream_item(b"", 0, 64));
    }

    #[test]
    fn proc_status_is_parsed_and_read() {
        let text =
            "Name:\tx\nVmPeak:\t  9 kB\nVmHWM:\t    2000 kB\nVmRSS:\t    1234 kB\nThreads:\t7\n";
        assert_eq!(
            ProcStatus::parse(text),
            Some(ProcStatus {
                rss_bytes: 1234 * 1024,
                peak_rss_bytes: 2000 * 1024,
                threads: 7
            })
        );
        assert_eq!(ProcStatus::parse("Name:\tx\n"), None);
        let me = ProcStatus::current().unwrap();
        assert!(me.rss_bytes > 0 && me.threads >= 1);
        assert!(ProcStatus::of(std::process::id()).unwrap().threads >= 1);
    }
}
