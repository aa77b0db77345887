//! `cargo xtask bench`: the side-by-side benchmark suite.
//!
//! Every workload runs client and server as separate processes over tcp on
//! 127.0.0.1, release builds, 64-byte payloads unless said otherwise:
//!
//! * the baseline, bare ZeroMQ sockets through the same `zmq` crate
//!   (`zerorpc-bench-raw`: DEALER/ROUTER round trips, PUSH/PULL one way);
//! * the floors, the same with one thing our design or the protocol
//!   cannot do without added (a thread hand-off on the client, or on both
//!   sides; our codec; a stream framed ROUTER to DEALER, with and without
//!   the codec): the cheapest implementation of what each of our
//!   workloads must do, which its row is also set against;
//! * ours (`zerorpc-load-server`, `zerorpc-load-client`, `zerorpc-hub`):
//!   latency of inline, async and sync methods, calls in flight, several
//!   client processes, streams, the hub, the server's memory;
//! * zerorpc-python 0.6.3 with gevent (`python_peer.py`, in the virtualenv
//!   `cargo xtask setup` makes), when it is there;
//! * gRPC in Rust, tonic (`zerorpc-bench-grpc`): one call at a time, 100 in
//!   flight and streams, what users would pick instead.
//!
//! Each job runs three times (in three rounds over all of them, so that a
//! disturbance of the machine spreads over jobs rather than spoiling one)
//! and the median of each figure is shown, with ratios against the
//! baselines of the same run. The tables are printed and written to
//! `docs/benchmarks.md` with the machine and the commit.
//!
//! `--quick` runs every job once with a fraction of the work, and writes
//! nothing unless asked (`--write`): `cargo xtask ci` runs it on debug
//! builds (`--debug`) so that the suite keeps working. It asserts nothing
//! about speed; it fails if a call, an item or a process fails.
//! `--against REV` compares the working tree with git revision REV instead
//! (see [`against`]).

mod against;
mod machine;
mod process;
mod soak;
mod table;
mod workloads;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};

use crate::run::{cargo, run as run_command, succeeds};
pub(crate) use soak::run as soak;

use machine::Machine;
use workloads::{Figures, Job, Metric, Programs, Runner, Scale};

/// The peer script for zerorpc-python, relative to the workspace root.
const PYTHON_PEER: &str = "xtask/src/bench/python_peer.py";

/// Where the suite writes its tables, relative to the workspace root.
const DOCUMENT: &str = "docs/benchmarks.md";

/// How `cargo xtask bench` was asked to run the suite.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Options {
    /// A fraction of the work, one run each.
    pub(crate) quick: bool,
    /// Write docs/benchmarks.md even though `quick`, `debug` or `only`.
    pub(crate) write: bool,
    /// Debug builds: checks the suite runs; its figures mean little.
    pub(crate) debug: bool,
    /// Only the rows whose id contains this.
    pub(crate) only: Option<String>,
    /// Runs per job, instead of 3 (1 with `quick`).
    pub(crate) runs: Option<usize>,
    /// Compare the working tree with this git revision.
    pub(crate) against: Option<String>,
    /// The zerorpc-python interpreter, instead of `ZERORPC_PYTHON` or
    /// `target/venv` (`cargo xtask ci` passes the one setup made).
    pub(crate) python: Option<PathBuf>,
}

impl Options {
    fn scale(&self) -> Scale {
        if self.quick {
            Scale::Quick
        } else {
            Scale::Full
        }
    }

    fn runs(&self) -> usize {
        self.runs.unwrap_or(if self.quick { 1 } else { 3 })
    }

    fn profile(&self) -> &'static str {
        if self.debug { "debug" } else { "release" }
    }
}

/// Runs the suite (or the comparison with `--against`).
pub(crate) fn run(root: &Path, options: &Options) -> anyhow::Result<()> {
    if let Some(revision) = &options.against {
        return against::run(root, revision, options);
    }
    let mut sections = table::sections(options.scale());
    if let Some(only) = &options.only {
        for section in &mut sections {
            section.rows.retain(|row| row.id.contains(only.as_str()));
        }
        if sections.iter().all(|section| section.rows.is_empty()) {
            let ids: Vec<&str> = table::sections(options.scale())
                .iter()
                .flat_map(|section| section.rows.iter().map(|row| row.id))
                .collect();
            bail!("no workload id contains `{only}`; ids: {}", ids.join(", "));
        }
    }
    let python = find_python(root, options.python.as_deref())?;
    let programs = build(root, options, python.clone())?;
    let mut jobs: Vec<Job> = Vec::new();
    for job in sections
        .iter()
        .flat_map(|section| &section.rows)
        .flat_map(table::Row::jobs)
    {
        if !jobs.contains(&job) && (python.is_some() || !job.is_python()) {
            jobs.push(job);
        }
    }
    pair_shares(&sections, &mut jobs);
    let machine = Machine::describe(root, python.as_ref().map(|(python, _)| python.as_path()));
    let runner = Runner {
        programs,
        scale: options.scale(),
    };
    let started = Instant::now();
    let results = measure(&runner, &jobs, options.runs())?;
    let tables = table::render(&sections, &results);
    println!("\n{tables}");
    println!(
        "bench: {} jobs x {} run(s) in {:.0?}, every call and item answered right",
        jobs.len(),
        options.runs(),
        started.elapsed()
    );
    if options.write || (!options.quick && !options.debug && options.only.is_none()) {
        let document = document(&machine, options, python.is_some(), &tables);
        std::fs::write(root.join(DOCUMENT), document)
            .with_context(|| format!("cannot write {DOCUMENT}"))?;
        println!("bench: wrote {DOCUMENT}");
    } else {
        println!("bench: {DOCUMENT} left as it is (`--write` replaces it)");
    }
    Ok(())
}

/// Moves each row whose note is a share of another job's throughput (the
/// traced calls', the tracing floor's, the hub's, one end of ours against
/// the floor) to run
/// right after that job in every round: a share of two runs seconds apart
/// holds where the machine's speed drifts (a virtual machine's neighbours
/// come and go), where runs a dozen jobs apart measured different
/// machines (traced calls at 67-101% of untraced in one run's rounds).
fn pair_shares(sections: &[table::Section], jobs: &mut Vec<Job>) {
    for row in sections.iter().flat_map(|section| &section.rows) {
        let Some(partner) = row.share_of() else {
            continue;
        };
        let Some(at) = jobs.iter().position(|&job| job == row.ours) else {
            continue;
        };
        if !jobs.contains(&partner) {
            continue;
        }
        let ours = jobs.remove(at);
        let after = jobs
            .iter()
            .position(|&job| job == partner)
            .map_or(jobs.len(), |p| p + 1);
        jobs.insert(after, ours);
    }
}

/// Runs every job `runs` times, in rounds, and returns every round's
/// figures with the median of each.
fn measure(runner: &Runner, jobs: &[Job], runs: usize) -> anyhow::Result<Results> {
    let mut samples: HashMap<Job, Vec<Figures>> = HashMap::new();
    for round in 1..=runs {
        for &job in jobs {
            let started = Instant::now();
            let figures = runner
                .run(job)
                .with_context(|| format!("{} (run {round})", job.name()))?;
            println!(
                "bench: [{round}/{runs}] {:<58} {} ({:.1} s)",
                job.name(),
                summary(&figures),
                started.elapsed().as_secs_f64()
            );
            samples.entry(job).or_default().push(figures);
        }
    }
    Ok(Results::new(samples))
}

/// Every round's figures of each job, and their medians.
pub(crate) struct Results {
    medians: HashMap<Job, Figures>,
    rounds: HashMap<Job, Vec<Figures>>,
}

impl Results {
    pub(crate) fn new(rounds: HashMap<Job, Vec<Figures>>) -> Self {
        let medians = rounds
            .iter()
            .map(|(&job, runs)| (job, medians(runs)))
            .collect();
        Results { medians, rounds }
    }

    /// The median figures of `job`, if it ran.
    pub(crate) fn get(&self, job: &Job) -> Option<&Figures> {
        self.medians.get(job)
    }

    /// The median over rounds of `job`'s `metric` over `other`'s in the
    /// same round. Jobs of one round run minutes apart at most, so this
    /// share holds where the machine's speed drifts between rounds, which
    /// a ratio of medians taken from different rounds does not.
    pub(crate) fn paired_share(&self, job: Job, other: Job, metric: Metric) -> Option<f64> {
        let of = |job: Job| self.rounds.get(&job);
        let mut shares: Vec<f64> = of(job)?
            .iter()
            .zip(of(other)?)
            .filter_map(|(ours, theirs)| Some(ours.get(&metric)? / theirs.get(&metric)?))
            .collect();
        if shares.is_empty() {
            return None;
        }
        shares.sort_by(f64::total_cmp);
        Some(median_of_sorted(&shares))
    }
}

/// The median of each figure over runs.
fn medians(runs: &[Figures]) -> Figures {
    let mut values: HashMap<Metric, Vec<f64>> = HashMap::new();
    for figures in runs {
        for (&metric, &value) in figures {
            values.entry(metric).or_default().push(value);
        }
    }
    values
        .into_iter()
        .map(|(metric, mut values)| {
            values.sort_by(f64::total_cmp);
            (metric, median_of_sorted(&values))
        })
        .collect()
}

/// The median of values sorted in order; not empty.
fn median_of_sorted(values: &[f64]) -> f64 {
    let middle = values.len() / 2;
    if values.len() % 2 == 1 {
        values[middle]
    } else {
        (values[middle - 1] + values[middle]) / 2.0
    }
}

/// One run's figures on one line.
fn summary(figures: &Figures) -> String {
    figures
        .iter()
        .map(|(metric, &value)| format!("{} {}", metric.label(), table::figure(*metric, value)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The interpreter with zerorpc-python and gevent (`given`, else
/// `ZERORPC_PYTHON`, else `target/venv`), and the peer script; `None`
/// (saying why) when there is none, an error when `CI` is set.
fn find_python(root: &Path, given: Option<&Path>) -> anyhow::Result<Option<(PathBuf, PathBuf)>> {
    let (python, origin) = match (given, std::env::var_os("ZERORPC_PYTHON")) {
        (Some(path), _) => (path.to_owned(), "cargo xtask setup"),
        (None, Some(path)) if !path.is_empty() => (PathBuf::from(path), "ZERORPC_PYTHON"),
        _ => (root.join("target/venv/bin/python"), "the default path"),
    };
    let why = if !python.exists() {
        format!("{} ({origin}) does not exist", python.display())
    } else if !succeeds(Command::new(&python).args(["-c", "import zerorpc, gevent"])) {
        format!(
            "{} ({origin}) cannot import zerorpc and gevent",
            python.display()
        )
    } else {
        return Ok(Some((python, root.join(PYTHON_PEER))));
    };
    if std::env::var_os("CI").is_some() {
        bail!("zerorpc-python is missing: {why}; `cargo xtask setup` installs it (CI is set)");
    }
    println!("bench: zerorpc-python columns skipped: {why}; `cargo xtask setup` installs it");
    Ok(None)
}

/// Builds the binaries the jobs run and says where they are.
fn build(
    root: &Path,
    options: &Options,
    python: Option<(PathBuf, PathBuf)>,
) -> anyhow::Result<Programs> {
    let dir = build_load_tools(root, &target_dir(root), options.profile(), true)?;
    Ok(Programs {
        load_server: dir.join("zerorpc-load-server"),
        load_client: dir.join("zerorpc-load-client"),
        raw: dir.join("zerorpc-bench-raw"),
        grpc: dir.join("zerorpc-bench-grpc"),
        hub: dir.join("zerorpc-hub"),
        zerorpc: dir.join("zerorpc"),
        python,
    })
}

/// The workspace's target directory: `CARGO_TARGET_DIR` or `target`.
fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .filter(|dir| !dir.is_empty())
        .map_or_else(|| root.join("target"), |dir| root.join(dir))
}

/// Builds the load tools (and, with `with_hub`, the hub) of the workspace
/// at `root` into `target`; returns the directory of the binaries.
fn build_load_tools(
    root: &Path,
    target: &Path,
    profile: &str,
    with_hub: bool,
) -> anyhow::Result<PathBuf> {
    let mut command = cargo();
    command.current_dir(root).env("CARGO_TARGET_DIR", target);
    if profile == "release" {
        command.args(["build", "--release", "--bins", "-p", "zerorpc-load"]);
        if with_hub {
            command.args(["-p", "zerorpc-cli"]);
        }
    } else {
        // The debug binaries `cargo test --workspace` already built: the
        // same selection resolves the same features, so nothing is built
        // twice (a `-p` build would compile a second copy of most crates).
        command.args(["build", "--workspace", "--bins", "--tests"]);
    }
    run_command(&mut command)?;
    Ok(target.join(profile))
}

/// docs/benchmarks.md: how the figures were made, on what, and the tables.
fn document(machine: &Machine, options: &Options, python: bool, tables: &str) -> String {
    let mut caveats = Vec::new();
    if options.quick {
        caveats.push("**Quick mode**: a fraction of the work and one run per workload; the figures are only a sign of life.");
    }
    if options.debug {
        caveats.push("**Debug builds**: the figures say nothing about speed.");
    }
    if options.only.is_some() {
        caveats.push("**Some workloads only** (`--only`).");
    }
    if !python {
        caveats.push("zerorpc-python was not installed: its columns are empty.");
    }
    let caveats = if caveats.is_empty() {
        String::new()
    } else {
        caveats.join("\n") + "\n\n"
    };
    format!(
        "# Benchmarks\n\
         \n\
         Written by `cargo xtask bench`; do not edit by hand. Every workload\n\
         runs client and server as separate processes over tcp on 127.0.0.1,\n\
         built in {profile} mode, with 64-byte payloads unless said otherwise.\n\
         Each figure is the median of {runs} run(s); the runs go in rounds over\n\
         all workloads, and the ratios compare figures of the same run. The\n\
         hub's and tracing's shares are the median of each round's share,\n\
         and the runs they compare go one right after the other.\n\
         \n\
         {caveats}\
         ## Machine\n\
         \n\
         {machine}\
         \n\
         ## Results\n\
         \n\
         {tables}\
         ## What is measured\n\
         \n\
         * **raw libzmq**: `zerorpc-bench-raw` (`crates/load`), bare ZeroMQ\n  \
           sockets through the same `zmq` crate as the transport: a DEALER\n  \
           making round trips to a ROUTER that sends each message back (with\n  \
           the same window of messages in flight as the row's calls), and\n  \
           one-way PUSH/PULL for streams. No events, no msgpack, no\n  \
           heartbeats, no threads of ours: the baseline, what nothing\n  \
           over the same sockets can beat.\n  \
           For the hub, the same round trips through libzmq's own proxy\n  \
           (`zmq_proxy`, ROUTER to DEALER): the floor for a relay.\n\
         * **floors**: `zerorpc-bench-raw` again, with one thing added to\n  \
           the raw round trip or stream that our design or the protocol\n  \
           cannot do without. A client I/O thread (`call --handoff`): the\n  \
           caller never touches the DEALER but hands each request to the\n  \
           thread that owns it, which waits in `zmq_poll` on the socket and\n  \
           on a Unix socket pair that wakes it for hand-offs, and hands each\n  \
           reply back through a queue the caller blocks on, as our client's\n  \
           transport does. The same with a server whose ROUTER thread hands\n  \
           each request to a worker thread and sends the reply handed back\n  \
           (`echo --handoff`), as for our async and sync methods. Our codec\n  \
           (`--codec`, no threads): each request an `echo_inline([i, 64\n  \
           bytes])` event with a fresh message id, each reply its `OK` with\n  \
           the request's id in `response_to`, encoded and decoded with\n  \
           `zerorpc-wire` and checked. A stream framed as the protocol frames\n  \
           it, `[id, \"\", item]` from a ROUTER to a DEALER (`stream-serve`,\n  \
           `stream-take`), plain or with each item a `STREAM` event of our\n  \
           codec. No heartbeats, channels or bookkeeping: the least each\n  \
           part of the design costs, so what a row adds to its floor is our\n  \
           implementation's.\n\
         * **one end ours**: the codec floor's client (`call --codec`)\n  \
           calling our server's `#[zerorpc(inline)]` echo, and our client\n  \
           calling the codec floor's server (`echo --codec`), 100 in flight:\n  \
           what each end of ours alone keeps of the codec floor, so the\n  \
           gap between a row and its floor is found at its end.\n\
         * **zerorpc-rs**: `zerorpc-load-client` calling `zerorpc-load-server`\n  \
           (`crates/load`), an echo of `[i, 64 bytes]` answered by an\n  \
           `#[zerorpc(inline)]`, async or plain sync method; streams of\n  \
           binary items from the `blobs` method; through `zerorpc-hub` as a\n  \
           queue with the server connected as its worker. Latency is timed\n  \
           per call, from the call being made to its answer, after unmeasured\n  \
           warm-up calls. Memory is the server's resident size (`VmRSS`),\n  \
           sampled every 20 ms while the calls run.\n\
         * **zerorpc-python**: 0.6.3 with gevent, client and server from\n  \
           `xtask/src/bench/python_peer.py`, the same echo and streams;\n  \
           calls in flight are that many greenlets sharing one client.\n\
         * **gRPC (tonic)**: `zerorpc-bench-grpc` (`crates/load`), what a\n  \
           Rust user would pick instead: tonic 0.14 with prost, the same echo\n  \
           of 64 bytes as a unary call (calls in flight are that many HTTP/2\n  \
           streams on one connection) and the same items as a\n  \
           server-streaming call, tonic's defaults with `TCP_NODELAY`.\n\
         \n\
         Every call's answer and every item is checked; a run with one wrong\n\
         or missing fails the suite.\n\
         \n\
         ## Reproduce\n\
         \n\
         ```sh\n\
         cargo xtask setup                  # the zerorpc-python virtualenv (target/venv)\n\
         cargo xtask bench                  # the whole suite; writes this file\n\
         cargo xtask bench --quick          # every workload, briefly; writes nothing\n\
         cargo xtask bench --only latency   # some rows only\n\
         cargo xtask bench --only floor     # the floors only\n\
         cargo xtask bench --against main   # this tree against a git revision\n\
         ```\n",
        profile = options.profile(),
        runs = options.runs(),
        machine = machine.to_markdown(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_share_runs_right_after_the_job_it_is_a_share_of() {
        let sections = table::sections(workloads::Scale::Quick);
        let mut jobs: Vec<Job> = Vec::new();
        for job in sections
            .iter()
            .flat_map(|section| &section.rows)
            .flat_map(table::Row::jobs)
        {
            if !jobs.contains(&job) {
                jobs.push(job);
            }
        }
        let count = jobs.len();
        pair_shares(&sections, &mut jobs);
        assert_eq!(jobs.len(), count, "every job runs, once");
        let mut shares = 0;
        for row in sections.iter().flat_map(|section| &section.rows) {
            let Some(partner) = row.share_of() else {
                continue;
            };
            shares += 1;
            let at = |job: Job| {
                jobs.iter()
                    .position(|&j| j == job)
                    .expect("a job of the plan")
            };
            let (partner_at, ours_at) = (at(partner), at(row.ours));
            assert!(partner_at < ours_at, "{} runs after its partner", row.id);
            // Only other shares of the same job come between them.
            for &between in &jobs[partner_at + 1..ours_at] {
                let sharing = sections
                    .iter()
                    .flat_map(|s| &s.rows)
                    .any(|other| other.ours == between && other.share_of() == Some(partner));
                assert!(sharing, "{} waits behind an unrelated job", row.id);
            }
        }
        assert!(shares >= 3, "the traced, hub and split shares are planned");
    }

    #[test]
    fn medians_per_figure() {
        let run = |p50: f64, per_second: f64| {
            Figures::from([(Metric::P50, p50), (Metric::PerSecond, per_second)])
        };
        let median = medians(&[run(3.0, 10.0), run(1.0, 30.0), run(2.0, 20.0)]);
        assert_eq!(
            median,
            Figures::from([(Metric::P50, 2.0), (Metric::PerSecond, 20.0)])
        );
        let median = medians(&[run(1.0, 10.0), run(2.0, 20.0)]);
        assert_eq!(median[&Metric::P50], 1.5);
        assert_eq!(medians(&[run(5.0, 50.0)]), run(5.0, 50.0));
    }
}
