//! The tables of results: which jobs each row sets side by side, and how
//! figures and ratios are written (Markdown, printed and written alike).

use std::collections::HashMap;
use std::fmt::Write;

use super::workloads::{Figures, Handler, Job, LARGE, Metric, SMALL, Scale};

/// A table: a title saying the unit, and its rows.
pub(crate) struct Section {
    pub(crate) title: &'static str,
    pub(crate) rows: Vec<Row>,
}

/// One workload, measured with raw libzmq, ours and zerorpc-python where
/// each applies.
pub(crate) struct Row {
    /// What `--only` matches.
    pub(crate) id: &'static str,
    pub(crate) label: String,
    /// The figures shown, the first one compared.
    pub(crate) metrics: &'static [Metric],
    pub(crate) raw: Option<Job>,
    pub(crate) ours: Job,
    pub(crate) python: Option<Job>,
    pub(crate) note: Option<Note>,
}

/// A remark computed from other jobs than the row's own.
pub(crate) enum Note {
    /// How much latency the hub adds to `direct`, in raw round trips,
    /// next to what libzmq's own proxy adds to a raw round trip
    /// ([`Job::RawRelayCalls`]).
    HubAdds { direct: Job },
    /// The hub's throughput as a share of `direct`'s.
    HubShare { direct: Job },
    /// Traced calls' throughput as a share of the same calls untraced.
    TracedShare { untraced: Job },
    /// The server's size when the calls started, and at its peak if
    /// `peak`.
    RssStart { peak: bool },
}

impl Row {
    /// Every job the row needs, its note's included.
    pub(crate) fn jobs(&self) -> Vec<Job> {
        let direct = match self.note {
            Some(
                Note::HubAdds { direct }
                | Note::HubShare { direct }
                | Note::TracedShare { untraced: direct },
            ) => Some(direct),
            _ => None,
        };
        let relay = matches!(self.note, Some(Note::HubAdds { .. })).then_some(Job::RawRelayCalls);
        [self.raw, Some(self.ours), self.python, direct, relay]
            .into_iter()
            .flatten()
            .collect()
    }
}

fn calls(handler: Handler, clients: usize, in_flight: usize, through_hub: bool) -> Job {
    Job::Calls {
        handler,
        clients,
        in_flight,
        through_hub,
    }
}

fn raw_calls(clients: usize, in_flight: usize) -> Job {
    Job::RawCalls { clients, in_flight }
}

/// The suite's tables, with the amounts of work of `scale` in the labels.
pub(crate) fn sections(scale: Scale) -> Vec<Section> {
    use Handler::{Async, Inline, Sync};
    let sequential = calls(Inline, 1, 1, false);
    let python_sequential = Some(Job::PythonCalls { in_flight: 1 });
    let latency = |id, label: &str, ours, note| Row {
        id,
        label: label.to_owned(),
        metrics: &[Metric::P50, Metric::P99],
        raw: Some(raw_calls(1, 1)),
        ours,
        python: python_sequential,
        note,
    };
    let throughput = |id, label: &str, raw, ours, python, note| Row {
        id,
        label: label.to_owned(),
        metrics: &[Metric::PerSecond],
        raw: Some(raw),
        ours,
        python,
        note,
    };
    let stream = |id, label: &str, metric, item_bytes| Row {
        id,
        label: label.to_owned(),
        metrics: metric,
        raw: Some(Job::RawStream { item_bytes }),
        ours: Job::Stream { item_bytes },
        python: Some(Job::PythonStream { item_bytes }),
        note: None,
    };
    let memory = |id, label: String, metric, ours, peak| Row {
        id,
        label,
        metrics: metric,
        raw: None,
        ours,
        python: None,
        note: Some(Note::RssStart { peak }),
    };
    vec![
        Section {
            title: "Latency of one call at a time: p50 / p99, µs (lower is better)",
            rows: vec![
                latency(
                    "latency-inline",
                    "`#[zerorpc(inline)]` method",
                    sequential,
                    None,
                ),
                latency(
                    "latency-async",
                    "async method",
                    calls(Async, 1, 1, false),
                    None,
                ),
                latency(
                    "latency-sync",
                    "plain sync method (blocking pool)",
                    calls(Sync, 1, 1, false),
                    None,
                ),
                latency(
                    "latency-hub",
                    "inline method through `zerorpc-hub`",
                    calls(Inline, 1, 1, true),
                    Some(Note::HubAdds { direct: sequential }),
                ),
            ],
        },
        Section {
            title: "Calls per second, inline method (higher is better)",
            rows: vec![
                throughput(
                    "calls-1",
                    "one client, 1 in flight",
                    raw_calls(1, 1),
                    sequential,
                    python_sequential,
                    None,
                ),
                throughput(
                    "calls-16",
                    "one client, 16 in flight",
                    raw_calls(1, 16),
                    calls(Inline, 1, 16, false),
                    None,
                    None,
                ),
                throughput(
                    "calls-100",
                    "one client, 100 in flight (Python: 100 greenlets)",
                    raw_calls(1, 100),
                    calls(Inline, 1, 100, false),
                    Some(Job::PythonCalls { in_flight: 100 }),
                    None,
                ),
                throughput(
                    "calls-1000",
                    "one client, 1,000 in flight",
                    raw_calls(1, 1000),
                    calls(Inline, 1, 1000, false),
                    None,
                    None,
                ),
                throughput(
                    "calls-8-clients",
                    "8 client processes, 100 in flight each",
                    raw_calls(8, 100),
                    calls(Inline, 8, 100, false),
                    None,
                    None,
                ),
                throughput(
                    "calls-hub",
                    "one client, 100 in flight, through `zerorpc-hub`",
                    raw_calls(1, 100),
                    calls(Inline, 1, 100, true),
                    None,
                    Some(Note::HubShare {
                        direct: calls(Inline, 1, 100, false),
                    }),
                ),
                throughput(
                    "calls-traced",
                    "one client, 100 in flight, traced (client and server report to a `zerorpc collector` in memory)",
                    raw_calls(1, 100),
                    Job::TracedCalls { in_flight: 100 },
                    None,
                    Some(Note::TracedShare {
                        untraced: calls(Inline, 1, 100, false),
                    }),
                ),
            ],
        },
        Section {
            title: "One stream, server to client (raw: one-way PUSH/PULL; higher is better)",
            rows: vec![
                stream(
                    "stream-64",
                    "64-byte items, items/s",
                    &[Metric::PerSecond],
                    SMALL,
                ),
                stream(
                    "stream-64k",
                    "64 KiB items, MB/s",
                    &[Metric::MegabytesPerSecond],
                    LARGE,
                ),
            ],
        },
        Section {
            title: "Server memory: resident size, MiB (lower is better)",
            rows: vec![
                memory(
                    "rss-in-flight",
                    format!(
                        "with {} calls in flight (peak)",
                        grouped(scale.rss_in_flight())
                    ),
                    &[Metric::RssPeak],
                    Job::RssInFlight,
                    false,
                ),
                memory(
                    "rss-after-calls",
                    format!("after {} calls, 100 in flight", grouped(scale.rss_calls())),
                    &[Metric::RssEnd],
                    Job::RssAfterCalls,
                    true,
                ),
            ],
        },
    ]
}

/// The tables in Markdown, from the median figures of each job; a job
/// without figures (not run) shows as `–`.
pub(crate) fn render(sections: &[Section], results: &HashMap<Job, Figures>) -> String {
    let mut out = String::new();
    for section in sections.iter().filter(|section| !section.rows.is_empty()) {
        let _ = writeln!(out, "### {}\n", section.title);
        out.push_str(
            "| workload | raw libzmq | zerorpc-rs | zerorpc-python | zerorpc-rs vs raw | zerorpc-rs vs python | note |\n\
             | --- | --: | --: | --: | --: | --: | --- |\n",
        );
        for row in &section.rows {
            let figures = |job: Option<Job>| job.and_then(|job| results.get(&job));
            let (raw, ours, python) = (
                figures(row.raw),
                figures(Some(row.ours)),
                figures(row.python),
            );
            let first = row.metrics[0];
            let compare = |other: Option<&Figures>, compare: fn(Metric, f64, f64) -> String| match (
                ours.and_then(|f| f.get(&first)),
                other.and_then(|f| f.get(&first)),
            ) {
                (Some(&ours), Some(&other)) => compare(first, ours, other),
                _ => "–".to_owned(),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                row.label,
                cell(raw, row.metrics),
                cell(ours, row.metrics),
                cell(python, row.metrics),
                compare(raw, versus_raw),
                compare(python, versus_python),
                note(row, results),
            );
        }
        out.push('\n');
    }
    out
}

/// The row's figures joined by ` / `, or `–`.
fn cell(figures: Option<&Figures>, metrics: &[Metric]) -> String {
    let shown: Option<Vec<String>> = metrics
        .iter()
        .map(|metric| figures?.get(metric).map(|&value| figure(*metric, value)))
        .collect();
    shown.map_or_else(|| "–".to_owned(), |shown| shown.join(" / "))
}

/// One figure, rounded as its unit deserves.
pub(crate) fn figure(metric: Metric, value: f64) -> String {
    match metric {
        Metric::P50 | Metric::P99 | Metric::Mean | Metric::MegabytesPerSecond if value < 100.0 => {
            format!("{value:.1}")
        }
        Metric::P50 | Metric::P99 | Metric::Mean | Metric::MegabytesPerSecond => {
            format!("{value:.0}")
        }
        Metric::PerSecond => grouped(significant(value)),
        Metric::RssStart | Metric::RssPeak | Metric::RssEnd => format!("{value:.1}"),
    }
}

/// `value` rounded to three significant digits.
fn significant(value: f64) -> u64 {
    if !value.is_finite() || value < 1.0 {
        return 0;
    }
    let digits = value.log10().floor() as i32;
    let unit = 10f64.powi((digits - 2).max(0));
    ((value / unit).round() * unit) as u64
}

/// `n` with a comma every three digits.
pub(crate) fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// Ours against raw libzmq: a multiple of its latency, or a share of its
/// throughput.
fn versus_raw(metric: Metric, ours: f64, raw: f64) -> String {
    if metric.lower_is_better() {
        format!("{:.2}x raw", ours / raw)
    } else {
        format!("{:.0}% of raw", 100.0 * ours / raw)
    }
}

/// Ours against zerorpc-python: how many times faster (or slower).
fn versus_python(metric: Metric, ours: f64, python: f64) -> String {
    let factor = if metric.lower_is_better() {
        python / ours
    } else {
        ours / python
    };
    if factor >= 1.0 {
        format!("{} faster", times(factor))
    } else {
        format!("{} slower", times(1.0 / factor))
    }
}

fn times(factor: f64) -> String {
    if factor < 10.0 {
        format!("{factor:.1}x")
    } else {
        format!("{factor:.0}x")
    }
}

fn note(row: &Row, results: &HashMap<Job, Figures>) -> String {
    let get = |job: Option<Job>, metric| {
        job.and_then(|job| results.get(&job))
            .and_then(|figures| figures.get(&metric))
            .copied()
    };
    let text = match row.note {
        None => None,
        Some(Note::HubAdds { direct }) => {
            match (
                get(Some(row.ours), Metric::P50),
                get(Some(direct), Metric::P50),
                get(row.raw, Metric::P50),
            ) {
                (Some(hub), Some(direct), Some(raw)) => {
                    let mut text = format!(
                        "the hub adds {:.1} raw round trips ({:+.0} µs) to a direct call",
                        (hub - direct) / raw,
                        hub - direct
                    );
                    if let Some(relayed) = get(Some(Job::RawRelayCalls), Metric::P50) {
                        let _ = write!(
                            text,
                            "; libzmq's own proxy adds {:.1} ({:+.0} µs) to a raw one",
                            (relayed - raw) / raw,
                            relayed - raw
                        );
                    }
                    Some(text)
                }
                _ => None,
            }
        }
        Some(Note::HubShare { direct }) => match (
            get(Some(row.ours), Metric::PerSecond),
            get(Some(direct), Metric::PerSecond),
        ) {
            (Some(hub), Some(direct)) => {
                Some(format!("{:.0}% of a direct call's", 100.0 * hub / direct))
            }
            _ => None,
        },
        Some(Note::TracedShare { untraced }) => match (
            get(Some(row.ours), Metric::PerSecond),
            get(Some(untraced), Metric::PerSecond),
        ) {
            (Some(traced), Some(untraced)) => Some(format!(
                "{:.0}% of untraced calls' (target: at least 85%)",
                100.0 * traced / untraced
            )),
            _ => None,
        },
        Some(Note::RssStart { peak }) => {
            let start = get(Some(row.ours), Metric::RssStart);
            let top = get(Some(row.ours), Metric::RssPeak).filter(|_| peak);
            start.map(|start| match top {
                Some(top) => format!(
                    "{} MiB when the calls started, {} MiB at the peak",
                    figure(Metric::RssStart, start),
                    figure(Metric::RssPeak, top)
                ),
                None => format!(
                    "{} MiB when the calls started",
                    figure(Metric::RssStart, start)
                ),
            })
        }
    };
    text.unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_are_rounded_for_reading() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(1_234_567), "1,234,567");
        assert_eq!(figure(Metric::PerSecond, 52_149.7), "52,100");
        assert_eq!(figure(Metric::PerSecond, 3_812_345.0), "3,810,000");
        assert_eq!(figure(Metric::PerSecond, 87.4), "87");
        assert_eq!(figure(Metric::P50, 53.43), "53.4");
        assert_eq!(figure(Metric::P99, 1242.3), "1242");
        assert_eq!(figure(Metric::RssPeak, 73.44), "73.4");
    }

    #[test]
    fn ratios_say_which_way() {
        assert_eq!(versus_raw(Metric::P50, 110.0, 50.0), "2.20x raw");
        assert_eq!(versus_raw(Metric::PerSecond, 50.0, 200.0), "25% of raw");
        assert_eq!(versus_python(Metric::P50, 100.0, 600.0), "6.0x faster");
        assert_eq!(
            versus_python(Metric::PerSecond, 50_000.0, 1_000.0),
            "50x faster"
        );
        assert_eq!(
            versus_python(Metric::PerSecond, 1_000.0, 2_000.0),
            "2.0x slower"
        );
    }

    #[test]
    fn rows_show_what_ran_and_dashes_for_the_rest() {
        let sections = sections(Scale::Quick);
        let inline = &sections[0].rows[0];
        let hub = &sections[0].rows[3];
        let mut results = HashMap::new();
        results.insert(
            inline.raw.unwrap(),
            Figures::from([(Metric::P50, 50.0), (Metric::P99, 90.0)]),
        );
        results.insert(
            inline.ours,
            Figures::from([(Metric::P50, 100.0), (Metric::P99, 200.0)]),
        );
        results.insert(
            hub.ours,
            Figures::from([(Metric::P50, 160.0), (Metric::P99, 300.0)]),
        );
        let table = render(&sections[..1], &results);
        assert!(
            table.contains(
                "| `#[zerorpc(inline)]` method | 50.0 / 90.0 | 100 / 200 | – | 2.00x raw | – |"
            ),
            "{table}"
        );
        assert!(
            table.contains("the hub adds 1.2 raw round trips (+60 µs) to a direct call"),
            "{table}"
        );
        // The async row's own job did not run.
        assert!(
            table.contains("| async method | 50.0 / 90.0 | – | – | – | – |"),
            "{table}"
        );
        assert!(hub.jobs().contains(&inline.ours));
    }
}
