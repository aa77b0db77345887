//! Assembling a trace from its entries, and each output format.

use super::*;
use crate::context::SpanContext;

/// Reports of one call as both ends make them.
struct CallBuilder {
    span: SpanContext,
    method: &'static str,
    reports: Vec<Report>,
}

fn report(span: &SpanContext, kind: Kind, side: Side, direction: Direction) -> Report {
    Report {
        trace_id: span.trace_id,
        span_id: span.span_id,
        parent_span_id: span.parent_span_id,
        kind,
        side,
        direction,
        name: String::new(),
        method: String::new(),
        error: None,
        process: String::new(),
        peer: String::new(),
        timestamp_us: 0,
        exec_us: None,
    }
}

impl CallBuilder {
    fn new(span: SpanContext, method: &'static str) -> Self {
        CallBuilder {
            span,
            method,
            reports: Vec::new(),
        }
    }

    fn push(
        &mut self,
        kind: Kind,
        side: Side,
        direction: Direction,
        name: &str,
        process: &str,
        at: u64,
    ) -> &mut Report {
        let mut r = report(&self.span, kind, side, direction);
        r.name = name.to_owned();
        r.method = self.method.to_owned();
        r.process = process.to_owned();
        r.peer = "tcp://127.0.0.1:9".to_owned();
        r.timestamp_us = at;
        self.reports.push(r);
        self.reports.last_mut().unwrap()
    }

    /// The caller sends at `at`, the callee receives 1 ms later, answers
    /// `reply` after `exec` µs, and the caller gets it 1 ms later.
    fn complete(
        mut self,
        caller: &str,
        callee: &str,
        at: u64,
        exec: u64,
        reply: &str,
        error: Option<&str>,
    ) -> Vec<Report> {
        let method = self.method;
        self.push(
            Kind::Call,
            Side::Client,
            Direction::Sent,
            method,
            caller,
            at,
        );
        self.push(
            Kind::Call,
            Side::Server,
            Direction::Received,
            method,
            callee,
            at + 1000,
        );
        let sent = self.push(
            Kind::Reply,
            Side::Server,
            Direction::Sent,
            reply,
            callee,
            at + 1000 + exec,
        );
        sent.exec_us = Some(exec);
        sent.error = error.map(str::to_owned);
        let got = self.push(
            Kind::Reply,
            Side::Client,
            Direction::Received,
            reply,
            caller,
            at + 2000 + exec,
        );
        got.error = error.map(str::to_owned);
        self.reports
    }
}

const T0: u64 = 1_331_164_577_759_738; // 2012-03-07 23:56:17.759738

fn chain() -> (TraceId, Vec<Report>, [SpanContext; 4]) {
    let a = SpanContext::root();
    let b1 = a.child();
    let b2 = a.child();
    let lost = a.child();
    let mut reports = Vec::new();
    reports.extend(CallBuilder::new(a, "run_command").complete(
        "uwsgi@api",
        "api_00@zeroworkers",
        T0,
        98_000,
        "OK",
        None,
    ));
    reports.extend(CallBuilder::new(b1, "lookup").complete(
        "api_00@zeroworkers",
        "db@store",
        T0 + 5_000,
        3_000,
        "OK",
        None,
    ));
    reports.extend(CallBuilder::new(b2, "fail").complete(
        "api_00@zeroworkers",
        "db@store",
        T0 + 20_000,
        2_000,
        "ERR",
        Some("NameError"),
    ));
    let mut never = CallBuilder::new(lost, "lost");
    never.push(
        Kind::Call,
        Side::Client,
        Direction::Sent,
        "lost",
        "api_00@zeroworkers",
        T0 + 40_000,
    );
    reports.extend(never.reports);
    // Entries arrive in any order.
    reports.reverse();
    (a.trace_id, reports, [a, b1, b2, lost])
}

#[test]
fn calls_are_assembled_with_parents_and_timings() {
    let (trace_id, reports, [a, b1, b2, lost]) = chain();
    let trace = Trace::assemble(trace_id, reports);
    let spans: Vec<SpanId> = trace.calls.iter().map(|c| c.span_id).collect();
    assert_eq!(spans, [a.span_id, b1.span_id, b2.span_id, lost.span_id]);
    let root = &trace.calls[0];
    assert_eq!(root.depth, 0);
    assert_eq!(root.lag_us(), Some(1000));
    assert_eq!(root.exec_us, Some(98_000));
    assert_eq!(trace.calls[2].error(), Some("NameError"));
    assert_eq!(trace.calls[2].depth, 1);
    assert!(trace.calls[3].pending());
    assert_eq!(trace.calls[3].callee, None);
}

#[test]
fn text_is_the_original_format_in_time_order_indented_by_depth() {
    let (trace_id, reports, _) = chain();
    let text = Trace::assemble(trace_id, reports).to_text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "[2012-03-07 23:56:17.759738] uwsgi@api --- run_command ---> api_00@zeroworkers (lag: 1.0ms | exec: 98ms)"
    );
    assert_eq!(
        lines[1],
        "[2012-03-07 23:56:17.764738]     api_00@zeroworkers --- lookup ---> db@store (lag: 1.0ms | exec: 3.0ms)"
    );
    assert_eq!(
        lines[2],
        "[2012-03-07 23:56:17.768738]     db@store --- OK ---> api_00@zeroworkers"
    );
    assert!(
        lines.contains(
            &"[2012-03-07 23:56:17.782738]     db@store --- ERR NameError ---> api_00@zeroworkers"
        ),
        "{text}"
    );
    assert!(lines.contains(&"[2012-03-07 23:56:17.799738]     api_00@zeroworkers --- lost ---> [Not Received] tcp://127.0.0.1:9"), "{text}");
    assert!(lines.contains(&"[2012-03-07 23:56:17.799738]     tcp://127.0.0.1:9 --- info (pending) ---> api_00@zeroworkers"), "{text}");
    assert_eq!(
        *lines.last().unwrap(),
        "[2012-03-07 23:56:17.858738] api_00@zeroworkers --- OK ---> uwsgi@api"
    );
    assert_eq!(lines.len(), 8, "{text}");
}

#[test]
fn json_dot_otlp_and_zipkin_describe_the_same_tree() {
    let (trace_id, reports, [a, b1, b2, lost]) = chain();
    let trace = Trace::assemble(trace_id, reports);
    let json = trace.to_json();
    let calls = json["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 4);
    assert_eq!(calls[2]["status"], "error");
    assert_eq!(calls[2]["error"], "NameError");
    assert_eq!(calls[3]["status"], "pending");
    assert_eq!(calls[1]["parent_span_id"], a.span_id.to_string());
    assert_eq!(json["entries"].as_array().unwrap().len(), 13);

    let dot = trace.to_dot();
    for child in [b1, b2, lost] {
        assert!(
            dot.contains(&format!("\"{}\" -> \"{}\";", a.span_id, child.span_id)),
            "{dot}"
        );
    }
    assert_eq!(dot.matches(" -> \"").count(), 3, "{dot}");

    let otlp = trace.to_otlp();
    let spans: Vec<&Json> = otlp["resourceSpans"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["scopeSpans"][0]["spans"].as_array().unwrap())
        .collect();
    assert_eq!(spans.len(), 4);
    assert!(spans.iter().all(|s| s["traceId"] == trace_id.to_hex()));
    assert_eq!(
        spans
            .iter()
            .filter(|s| s.get("parentSpanId").is_some())
            .count(),
        3
    );

    let zipkin = trace.to_zipkin();
    // Three complete calls have a client and a server span; the lost one
    // only its client's.
    assert_eq!(zipkin.as_array().unwrap().len(), 7);
}

#[test]
fn timestamps_are_utc_calendar_dates() {
    assert_eq!(timestamp(0), "1970-01-01 00:00:00.000000");
    assert_eq!(timestamp(951_782_400_000_001), "2000-02-29 00:00:00.000001");
    assert_eq!(timestamp(T0), "2012-03-07 23:56:17.759738");
}
