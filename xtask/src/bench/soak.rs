//! `cargo xtask soak --minutes N`: mixed load for a while, with faults
//! injected, watching the long-lived processes for growth.
//!
//! A server is called directly (inline and sync calls, a stream) and
//! through a queue hub with two workers, round after round. Every other
//! round, one worker is killed in the middle of the round and another
//! started in its place: its calls fail as the protocol says (they are
//! counted, apart), every other call must be answered right. After each
//! round the server's and the hub's resident memory, open file descriptors
//! and threads are sampled, and the calls per second reported. At the end
//! the first and the last third of the run are compared: a process whose
//! memory or descriptors kept growing fails the soak.

use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;

use super::process::{Peer, free_tcp_endpoint};
use super::{build_load_tools, target_dir};

/// How long a process may take to start.
const START: Duration = Duration::from_secs(30);
/// How long one round's clients may take.
const ROUND: Duration = Duration::from_secs(120);
/// Calls a client makes per round.
const CALLS: &str = "20000";
/// Items of a round's stream.
const ITEMS: &str = "200000";
/// Growth of the last third over the first third the soak tolerates:
/// allocators keep some memory, and descriptors come and go with
/// reconnections; steady growth goes past it in a long run.
const RSS_GROWTH: f64 = 1.5;
const FD_GROWTH: u64 = 16;

/// One sample of a process.
#[derive(Clone, Copy, Debug, Default)]
struct Sample {
    rss_kib: u64,
    fds: u64,
    threads: u64,
}

/// What a round measured.
struct Row {
    minute: f64,
    calls: u64,
    failed_by_fault: u64,
    per_second: f64,
    server: Sample,
    hub: Sample,
}

pub(crate) fn run(root: &std::path::Path, minutes: u64) -> anyhow::Result<()> {
    let dir = build_load_tools(root, &target_dir(root), "release", true)?;
    let program = |name: &str| dir.join(name);
    let mut server = Command::new(program("zerorpc-load-server"));
    server.args(["--heartbeat", "1"]);
    let mut server = Peer::spawn("zerorpc-load-server", server)?;
    let direct = server.wait_listening(START)?;
    let (front, back) = (free_tcp_endpoint()?, free_tcp_endpoint()?);
    let mut hub = Command::new(program("zerorpc-hub"));
    hub.args(["--in", &front, "--out", &back, "--type", "queue"])
        .args(["--name", "soak"]);
    let mut hub = Peer::spawn("zerorpc-hub", hub)?;
    hub.wait_for_line("zerorpc-hub: soak", true, START)?;
    let worker = || -> anyhow::Result<Peer> {
        let mut command = Command::new(program("zerorpc-load-server"));
        command.args(["--heartbeat", "1", "--connect", &back]);
        let mut worker = Peer::spawn("zerorpc-load-server (worker)", command)?;
        worker.wait_for_line("connected", false, START)?;
        Ok(worker)
    };
    let mut workers = vec![worker()?, worker()?];
    let client = |args: &[&str]| -> anyhow::Result<Peer> {
        let mut command = Command::new(program("zerorpc-load-client"));
        command
            .args(args)
            .args(["--heartbeat", "1", "--timeout", "60"]);
        Peer::spawn("zerorpc-load-client", command)
    };

    println!(
        "soak: {minutes} min; direct {direct}, hub {front} with 2 workers, one replaced every other round"
    );
    println!(
        "minute  calls  failed(fault)  calls/s  server RSS MiB/fds/threads  hub RSS MiB/fds/threads"
    );
    let started = Instant::now();
    let deadline = started + Duration::from_secs(minutes * 60);
    let mut rows = Vec::new();
    for round in 0u64.. {
        if Instant::now() >= deadline {
            break;
        }
        let fault = round % 2 == 1;
        let round_started = Instant::now();
        let echo = |in_flight: &str, bytes: &str, handler: &str| {
            let calls = [
                "--connect",
                &direct,
                "--calls",
                CALLS,
                "--in-flight",
                in_flight,
            ];
            client(&[&calls[..], &["--echo", bytes, "--handler", handler]].concat())
        };
        let mut direct_clients = vec![
            echo("100", "64", "inline")?,
            echo("50", "256", "sync")?,
            client(&[
                "--connect",
                &direct,
                "--calls",
                "0",
                "--streams",
                "1",
                "--items",
                ITEMS,
                "--item-bytes",
                "64",
            ])?,
        ];
        let mut through_hub = client(&[
            "--connect",
            &front,
            "--calls",
            CALLS,
            "--in-flight",
            "100",
            "--nap",
            "0.01",
        ])?;
        if fault {
            thread::sleep(Duration::from_millis(500));
            let mut killed = workers.remove(0);
            killed.kill();
            workers.push(worker()?);
        }
        let mut calls = 0;
        for peer in &mut direct_clients {
            let report = peer.json_result(ROUND)?;
            calls += ok(&report)?;
        }
        let (hub_ok, failed_by_fault) = match through_hub.json_result(ROUND) {
            Ok(report) => (ok(&report)?, 0),
            // The killed worker's calls fail; nothing else may.
            Err(_) if fault => lost_to_fault(&through_hub)?,
            Err(e) => return Err(e),
        };
        calls += hub_ok;
        let row = Row {
            minute: started.elapsed().as_secs_f64() / 60.0,
            calls,
            failed_by_fault,
            per_second: calls as f64 / round_started.elapsed().as_secs_f64(),
            server: sample(server.pid())?,
            hub: sample(hub.pid())?,
        };
        println!(
            "{:6.1}  {:>6}  {:>13}  {:>7.0}  {:>8.1} / {:>3} / {:>3}            {:>6.1} / {:>3} / {:>3}",
            row.minute,
            row.calls,
            row.failed_by_fault,
            row.per_second,
            row.server.rss_kib as f64 / 1024.0,
            row.server.fds,
            row.server.threads,
            row.hub.rss_kib as f64 / 1024.0,
            row.hub.fds,
            row.hub.threads,
        );
        rows.push(row);
    }
    judge(&rows)
}

/// The calls a client report says were answered right; wrong answers
/// fail the soak.
fn ok(report: &Value) -> anyhow::Result<u64> {
    let wrong = report["wrong"].as_u64().unwrap_or(0);
    if wrong > 0 {
        bail!("{wrong} wrong answers: {report}");
    }
    report["ok"]
        .as_u64()
        .with_context(|| format!("no `ok` in {report}"))
}

/// A client through the hub in a round that killed a worker: its failed
/// calls must all be the killed worker's, told as lost.
fn lost_to_fault(peer: &Peer) -> anyhow::Result<(u64, u64)> {
    let line = peer
        .last_json_line()
        .context("the client through the hub printed no report")?;
    let report: Value = serde_json::from_str(&line)?;
    let errors = report["errors"].as_object().cloned().unwrap_or_default();
    if let Some(other) = errors.keys().find(|text| !text.contains("LostRemote")) {
        bail!("a call through the hub failed for another reason than the killed worker: {other}");
    }
    Ok((ok(&report)?, report["failed"].as_u64().unwrap_or(0)))
}

/// A process's resident memory, descriptors and threads, from /proc.
fn sample(pid: u32) -> anyhow::Result<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("process {pid} is gone"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))?.count() as u64;
    Ok(Sample {
        rss_kib: field("VmRSS:"),
        fds,
        threads: field("Threads:"),
    })
}

/// Compares the first and last thirds of the run.
fn judge(rows: &[Row]) -> anyhow::Result<()> {
    if rows.len() < 3 {
        bail!(
            "{} rounds: too short to judge growth (give more minutes)",
            rows.len()
        );
    }
    let third = rows.len() / 3;
    let (first, last) = (&rows[..third], &rows[rows.len() - third..]);
    let median = |rows: &[Row], value: &dyn Fn(&Row) -> u64| {
        let mut values: Vec<u64> = rows.iter().map(value).collect();
        values.sort_unstable();
        values[values.len() / 2]
    };
    let mut grown = Vec::new();
    for (name, pick) in [
        (
            "server",
            &(|row: &Row| row.server) as &dyn Fn(&Row) -> Sample,
        ),
        ("hub", &|row: &Row| row.hub),
    ] {
        let (rss_before, rss_after) = (
            median(first, &|row| pick(row).rss_kib),
            median(last, &|row| pick(row).rss_kib),
        );
        let (fds_before, fds_after) = (
            median(first, &|row| pick(row).fds),
            median(last, &|row| pick(row).fds),
        );
        println!(
            "soak: {name}: RSS {:.1} -> {:.1} MiB, fds {fds_before} -> {fds_after} (medians of the first and last third)",
            rss_before as f64 / 1024.0,
            rss_after as f64 / 1024.0,
        );
        if rss_after as f64 > rss_before as f64 * RSS_GROWTH {
            grown.push(format!("{name}'s memory"));
        }
        if fds_after > fds_before + FD_GROWTH {
            grown.push(format!("{name}'s descriptors"));
        }
    }
    let calls: u64 = rows.iter().map(|row| row.calls).sum();
    let lost: u64 = rows.iter().map(|row| row.failed_by_fault).sum();
    println!(
        "soak: {} rounds, {calls} calls and items answered right, {lost} lost with killed workers",
        rows.len()
    );
    if !grown.is_empty() {
        bail!("kept growing: {}", grown.join(", "));
    }
    Ok(())
}
