//! A trace's entries assembled into calls, and printed: the original
//! tracedump's text, JSON, Graphviz dot, OTLP/JSON and Zipkin v2 JSON.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde_json::{Value as Json, json};

use crate::context::{SpanId, TraceId};
use crate::report::{Direction, Kind, Report, Side};

/// A trace assembled from its entries: one [`Call`] per span.
#[derive(Clone, Debug)]
pub struct Trace {
    /// The trace.
    pub trace_id: TraceId,
    /// The calls, by time of their first entry.
    pub calls: Vec<Call>,
    /// The entries, as stored.
    pub entries: Vec<Report>,
}

/// One call (a span) of a trace, from what both ends reported.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Call {
    /// The call's span.
    pub span_id: SpanId,
    /// The span it was made from, if any.
    pub parent_span_id: Option<SpanId>,
    /// Its depth in the tree: 0 for a root, or when the parent is not in
    /// the trace.
    pub depth: usize,
    /// The method.
    pub method: String,
    /// A one-way event (push, publish) rather than a call.
    pub one_way: bool,
    /// The caller's process (`name@host`), if it reported.
    pub caller: Option<String>,
    /// The callee's process, if it reported.
    pub callee: Option<String>,
    /// The endpoint the caller sent to, if it reported.
    pub peer: Option<String>,
    /// The relays (queue hubs) that passed the request on: process and
    /// time.
    pub relays: Vec<(String, u64)>,
    /// When the caller sent the request (µs since the epoch).
    pub sent_us: Option<u64>,
    /// When the callee received it.
    pub received_us: Option<u64>,
    /// The replies, in order, each at the time its sender (else its
    /// receiver) reported it.
    pub replies: Vec<ReplyEntry>,
    /// The callee's execution time, from the request received to the last
    /// reply sent.
    pub exec_us: Option<u64>,
}

/// One reply of a call.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ReplyEntry {
    /// `OK`, `ERR`, `STREAM` or `STREAM_DONE`.
    pub name: String,
    /// The exception name of an `ERR`.
    pub error: Option<String>,
    /// When it was reported (µs since the epoch).
    pub timestamp_us: u64,
}

impl Call {
    /// When the call started, as far as anyone reported.
    pub fn start_us(&self) -> u64 {
        self.sent_us.or(self.received_us).unwrap_or(0)
    }

    /// When the last reply was seen, if any.
    pub fn end_us(&self) -> Option<u64> {
        self.replies.last().map(|r| r.timestamp_us)
    }

    /// From the caller's send to the callee's receipt (both clocks).
    pub fn lag_us(&self) -> Option<u64> {
        Some(self.received_us?.saturating_sub(self.sent_us?))
    }

    /// Whether the call is still waiting for its last reply.
    pub fn pending(&self) -> bool {
        !self.one_way
            && !self
                .replies
                .iter()
                .any(|r| matches!(r.name.as_str(), "OK" | "ERR" | "STREAM_DONE"))
    }

    /// The exception name, if the call failed.
    pub fn error(&self) -> Option<&str> {
        self.replies.iter().find_map(|r| r.error.as_deref())
    }

    fn status(&self) -> &'static str {
        if self.one_way {
            "event"
        } else if self.pending() {
            "pending"
        } else if self.error().is_some() {
            "error"
        } else {
            "ok"
        }
    }

    fn caller_name(&self) -> &str {
        self.caller.as_deref().unwrap_or("[unknown]")
    }
}

impl Trace {
    /// Assembles entries (in any order) into calls.
    pub fn assemble(trace_id: TraceId, mut entries: Vec<Report>) -> Trace {
        entries.sort_by_key(|r| r.timestamp_us);
        let mut order: Vec<SpanId> = Vec::new();
        let mut calls: HashMap<SpanId, Call> = HashMap::new();
        let mut server_replies: HashMap<SpanId, Vec<ReplyEntry>> = HashMap::new();
        let mut client_replies: HashMap<SpanId, Vec<ReplyEntry>> = HashMap::new();
        for report in &entries {
            let call = calls.entry(report.span_id).or_insert_with(|| {
                order.push(report.span_id);
                Call {
                    span_id: report.span_id,
                    parent_span_id: report.parent_span_id,
                    depth: 0,
                    method: report.method.clone(),
                    one_way: report.kind == Kind::Event,
                    caller: None,
                    callee: None,
                    peer: None,
                    relays: Vec::new(),
                    sent_us: None,
                    received_us: None,
                    replies: Vec::new(),
                    exec_us: None,
                }
            });
            call.parent_span_id = call.parent_span_id.or(report.parent_span_id);
            match (report.kind, report.side) {
                (Kind::Call | Kind::Event, Side::Client) => {
                    call.caller = Some(report.process.clone());
                    call.peer = Some(report.peer.clone());
                    call.sent_us = Some(report.timestamp_us);
                }
                (Kind::Call | Kind::Event, Side::Server) => {
                    call.callee = Some(report.process.clone());
                    call.received_us = Some(report.timestamp_us);
                }
                (Kind::Call | Kind::Event, Side::Relay) => {
                    call.relays
                        .push((report.process.clone(), report.timestamp_us));
                }
                (Kind::Reply, side) => {
                    let reply = ReplyEntry {
                        name: report.name.clone(),
                        error: report.error.clone(),
                        timestamp_us: report.timestamp_us,
                    };
                    match (side, report.direction) {
                        // Relays report requests only.
                        (Side::Relay, _) => {}
                        (Side::Server, _) => {
                            call.callee = Some(report.process.clone());
                            call.exec_us = call.exec_us.or(report.exec_us);
                            server_replies
                                .entry(report.span_id)
                                .or_default()
                                .push(reply);
                        }
                        (Side::Client, Direction::Received | Direction::Sent) => {
                            call.caller = Some(report.process.clone());
                            client_replies
                                .entry(report.span_id)
                                .or_default()
                                .push(reply);
                        }
                    }
                }
            }
        }
        // The callee's own account of its replies is the better one; the
        // caller's stands in for a callee that does not report.
        for (span, replies) in client_replies {
            server_replies.entry(span).or_insert(replies);
        }
        for (span, replies) in server_replies {
            if let Some(call) = calls.get_mut(&span) {
                call.replies = replies;
            }
        }
        let parents: HashMap<SpanId, Option<SpanId>> = calls
            .iter()
            .map(|(span, call)| (*span, call.parent_span_id))
            .collect();
        for call in calls.values_mut() {
            call.depth = depth(&parents, call.parent_span_id);
        }
        let mut calls: Vec<Call> = order
            .into_iter()
            .filter_map(|span| calls.remove(&span))
            .collect();
        calls.sort_by_key(Call::start_us);
        Trace {
            trace_id,
            calls,
            entries,
        }
    }

    /// The original tracedump's format: one line per message in time
    /// order, indented by depth.
    ///
    /// ```text
    /// [2012-03-07 23:56:17.759738] uwsgi@api --- run_command ---> api_00@zeroworkers (lag: 1ms | exec: 98ms)
    /// ```
    pub fn to_text(&self) -> String {
        let mut lines: Vec<(u64, usize, String)> = Vec::new();
        for (index, call) in self.calls.iter().enumerate() {
            let indent = "    ".repeat(call.depth);
            let callee = call.callee.as_deref();
            let target = match (callee, &call.peer) {
                (Some(callee), _) => callee.to_owned(),
                (None, Some(peer)) => format!("[Not Received] {peer}"),
                (None, None) => "[Not Received]".to_owned(),
            };
            let mut details = Vec::new();
            if let Some(lag) = call.lag_us() {
                details.push(format!("lag: {}", millis(lag)));
            }
            if let Some(exec) = call.exec_us {
                details.push(format!("exec: {}", millis(exec)));
            }
            let via: String = call
                .relays
                .iter()
                .map(|(relay, _)| format!(" via {relay}"))
                .collect();
            let details = if details.is_empty() {
                String::new()
            } else {
                format!(" ({})", details.join(" | "))
            };
            let what = if call.one_way {
                format!("{} (event)", call.method)
            } else {
                call.method.clone()
            };
            let start = call.start_us();
            lines.push((
                start,
                index,
                format!(
                    "[{}] {indent}{} --- {what} ---> {target}{via}{details}",
                    timestamp(start),
                    call.caller_name()
                ),
            ));
            let replier = callee.or(call.peer.as_deref()).unwrap_or("[unknown]");
            for reply in &call.replies {
                let name = match &reply.error {
                    Some(error) => format!("{} {error}", reply.name),
                    None => reply.name.clone(),
                };
                lines.push((
                    reply.timestamp_us,
                    index,
                    format!(
                        "[{}] {indent}{replier} --- {name} ---> {}",
                        timestamp(reply.timestamp_us),
                        call.caller_name()
                    ),
                ));
            }
            if call.pending() {
                lines.push((
                    start,
                    index,
                    format!(
                        "[{}] {indent}{replier} --- info (pending) ---> {}",
                        timestamp(start),
                        call.caller_name()
                    ),
                ));
            }
        }
        lines.sort_by_key(|(at, index, _)| (*at, *index));
        let mut text = String::new();
        for (_, _, line) in lines {
            text.push_str(&line);
            text.push('\n');
        }
        text
    }

    /// The trace for machines: its calls with their timings, and the raw
    /// entries.
    pub fn to_json(&self) -> Json {
        let calls: Vec<Json> = self
            .calls
            .iter()
            .map(|call| {
                json!({
                    "span_id": call.span_id.to_string(),
                    "parent_span_id": call.parent_span_id.map(|s| s.to_string()),
                    "depth": call.depth,
                    "method": call.method,
                    "one_way": call.one_way,
                    "caller": call.caller,
                    "callee": call.callee,
                    "peer": call.peer,
                    "relays": call.relays.iter().map(|(process, at)| json!({
                        "process": process,
                        "timestamp_us": at,
                    })).collect::<Vec<_>>(),
                    "sent_us": call.sent_us,
                    "received_us": call.received_us,
                    "lag_us": call.lag_us(),
                    "exec_us": call.exec_us,
                    "status": call.status(),
                    "error": call.error(),
                    "replies": call.replies.iter().map(|r| json!({
                        "name": r.name,
                        "error": r.error,
                        "timestamp_us": r.timestamp_us,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        let entries: Vec<Json> = self
            .entries
            .iter()
            .map(|r| serde_json::to_value(r).unwrap_or(Json::Null))
            .collect();
        json!({
            "trace_id": self.trace_id.to_string(),
            "calls": calls,
            "entries": entries,
        })
    }

    /// The call tree as a Graphviz digraph: a node per call, an edge from
    /// each call to the calls made while serving it.
    pub fn to_dot(&self) -> String {
        let mut dot = format!(
            "digraph \"trace {}\" {{\n  rankdir=LR;\n  node [shape=box, fontname=\"monospace\"];\n",
            self.trace_id
        );
        let known: std::collections::HashSet<SpanId> =
            self.calls.iter().map(|c| c.span_id).collect();
        for call in &self.calls {
            let mut label = format!(
                "{}\\n{} -> {}",
                escape(&call.method),
                escape(call.caller_name()),
                escape(call.callee.as_deref().unwrap_or("[Not Received]"))
            );
            for (relay, _) in &call.relays {
                let _ = write!(label, "\\nvia {}", escape(relay));
            }
            if let Some(exec) = call.exec_us {
                let _ = write!(label, "\\nexec {}", millis(exec));
            }
            let style = match call.status() {
                "error" => format!(
                    ", color=red, xlabel=\"ERR {}\"",
                    escape(call.error().unwrap_or(""))
                ),
                "pending" => ", style=dashed".to_owned(),
                _ => String::new(),
            };
            let _ = writeln!(dot, "  \"{}\" [label=\"{label}\"{style}];", call.span_id);
        }
        for call in &self.calls {
            if let Some(parent) = call.parent_span_id.filter(|p| known.contains(p)) {
                let _ = writeln!(dot, "  \"{parent}\" -> \"{}\";", call.span_id);
            }
        }
        dot.push_str("}\n");
        dot
    }

    /// The trace as OTLP/JSON (`ExportTraceServiceRequest`), one span per
    /// call, grouped by the service that served it (else called it).
    pub fn to_otlp(&self) -> Json {
        let mut by_service: Vec<(String, Vec<Json>)> = Vec::new();
        for call in &self.calls {
            let process = call.callee.as_deref().unwrap_or(call.caller_name());
            let service = process.split('@').next().unwrap_or(process).to_owned();
            let end = call.end_us().unwrap_or(call.start_us());
            let (code, message) = match call.error() {
                Some(error) => (2, error.to_owned()),
                None if call.pending() => (0, String::new()),
                None => (1, String::new()),
            };
            let mut span = json!({
                "traceId": self.trace_id.to_hex(),
                "spanId": call.span_id.to_string(),
                "name": call.method,
                // SERVER when the callee reported, else CLIENT; PRODUCER
                // for one-way events.
                "kind": if call.one_way { 4 } else if call.callee.is_some() { 2 } else { 3 },
                "startTimeUnixNano": (call.start_us() * 1000).to_string(),
                "endTimeUnixNano": (end * 1000).to_string(),
                "attributes": [
                    {"key": "rpc.system", "value": {"stringValue": "zerorpc"}},
                    {"key": "rpc.method", "value": {"stringValue": call.method}},
                    {"key": "zerorpc.caller", "value": {"stringValue": call.caller_name()}},
                ],
                "events": call.replies.iter().map(|r| json!({
                    "timeUnixNano": (r.timestamp_us * 1000).to_string(),
                    "name": r.name,
                })).collect::<Vec<_>>(),
                "status": {"code": code, "message": message},
            });
            if let Some(parent) = call.parent_span_id {
                span["parentSpanId"] = Json::from(parent.to_string());
            }
            match by_service.iter_mut().find(|(name, _)| *name == service) {
                Some((_, spans)) => spans.push(span),
                None => by_service.push((service, vec![span])),
            }
        }
        let resource_spans: Vec<Json> = by_service
            .into_iter()
            .map(|(service, spans)| {
                json!({
                    "resource": {"attributes": [
                        {"key": "service.name", "value": {"stringValue": service}}
                    ]},
                    "scopeSpans": [{"scope": {"name": "zerorpc"}, "spans": spans}],
                })
            })
            .collect();
        json!({ "resourceSpans": resource_spans })
    }

    /// The trace as Zipkin v2 JSON: for each call a CLIENT span from the
    /// caller and a SERVER span from the callee sharing its id, as Zipkin
    /// models RPCs.
    pub fn to_zipkin(&self) -> Json {
        let mut spans = Vec::new();
        for call in &self.calls {
            let end = call.end_us().unwrap_or(call.start_us());
            let mut tags = serde_json::Map::new();
            if let Some(error) = call.error() {
                tags.insert("error".into(), Json::from(error));
            }
            let annotations: Vec<Json> = call
                .replies
                .iter()
                .map(|r| json!({"timestamp": r.timestamp_us, "value": r.name}))
                .collect();
            let base = |kind: &str, process: &str, start: u64, stop: u64| {
                let mut span = json!({
                    "traceId": self.trace_id.to_hex(),
                    "id": call.span_id.to_string(),
                    "name": call.method,
                    "kind": kind,
                    "timestamp": start,
                    "duration": stop.saturating_sub(start).max(1),
                    "localEndpoint": {"serviceName": process.split('@').next().unwrap_or(process)},
                    "tags": tags.clone(),
                    "annotations": annotations.clone(),
                });
                if let Some(parent) = call.parent_span_id {
                    span["parentId"] = Json::from(parent.to_string());
                }
                span
            };
            let kind = if call.one_way { "PRODUCER" } else { "CLIENT" };
            if let (Some(caller), Some(sent)) = (&call.caller, call.sent_us) {
                spans.push(base(kind, caller, sent, end));
            }
            if let (Some(callee), Some(received)) = (&call.callee, call.received_us) {
                let kind = if call.one_way { "CONSUMER" } else { "SERVER" };
                let stop = call.exec_us.map_or(end, |exec| received + exec);
                let mut span = base(kind, callee, received, stop);
                span["shared"] = Json::from(true);
                spans.push(span);
            }
        }
        Json::Array(spans)
    }
}

fn depth(parents: &HashMap<SpanId, Option<SpanId>>, mut parent: Option<SpanId>) -> usize {
    let mut depth = 0;
    // Bounded: a cycle (which well-formed traces cannot have) ends here.
    while let Some(span) = parent {
        if depth > parents.len() {
            break;
        }
        match parents.get(&span) {
            Some(next) => {
                depth += 1;
                parent = *next;
            }
            None => break,
        }
    }
    depth
}

fn escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Milliseconds, whole above 10 ms, with a decimal below.
fn millis(us: u64) -> String {
    if us >= 10_000 {
        format!("{}ms", (us + 500) / 1000)
    } else {
        format!("{:.1}ms", us as f64 / 1000.0)
    }
}

/// `YYYY-MM-DD HH:MM:SS.ffffff` in UTC.
pub(crate) fn timestamp(us: u64) -> String {
    let secs = us / 1_000_000;
    let micros = us % 1_000_000;
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX);
    let rest = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{micros:06}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Howard Hinnant's `civil_from_days`: the proleptic Gregorian date of a
/// day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests;
