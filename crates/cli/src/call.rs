//! The client side: listing, help, inspection and calls.

use std::io::Write;

use anstyle::Style;
use futures::StreamExt;
use zerorpc::{CallOptions, Client, Response, Value};

use zerorpc_tracing_collector::{Traced, in_trace};

use crate::args::{Action, CallArgs, OutputStyle};
use crate::exit::{Failure, output_error, stderr_line};
use crate::render;

const BOLD: Style = Style::new().bold();

/// Runs a client invocation.
pub(crate) async fn run(args: CallArgs) -> Result<(), Failure> {
    let mut builder = Client::builder()
        .timeout(args.timeout)
        .heartbeat(args.heartbeat.interval)
        .passive_heartbeat(!args.heartbeat.active)
        .max_message_size(args.max_message_size);
    // A one-shot call: access lists of a client that binds are not reloaded.
    let (security, _guard) = args.security.resolve(&args.endpoints)?;
    builder = builder.security(security);
    let printer = args.debug.then(crate::debug::Printer::start);
    if let Some(printer) = &printer {
        builder = builder.observer(printer.observer());
    }
    if let Some(resolver) = crate::dns::resolver(&args.endpoints)? {
        builder = builder.resolver(resolver);
    }
    let trace = crate::trace::CallTrace::new(&args.tracing)?;
    if let Some(trace) = &trace {
        builder = builder.traced(&trace.tracer);
    }
    for endpoint in &args.endpoints.binds {
        if args.debug {
            stderr_line(format_args!("binding to \"{endpoint}\""));
        }
        builder = builder.bind(endpoint);
    }
    for endpoint in &args.endpoints.connects {
        if args.debug {
            stderr_line(format_args!("connecting to \"{endpoint}\""));
        }
        builder = builder.connect(endpoint);
    }
    let result = match builder.build() {
        Ok(client) => {
            let session = Session {
                client,
                args: &args,
            };
            match &trace {
                Some(trace) => in_trace(trace.parent, session.run()).await,
                None => session.run().await,
            }
        }
        Err(e) => Err(Failure::from_setup(e)),
    };
    if let Some(trace) = &trace {
        trace.finish();
    }
    // The session and its client are gone: the printer has all there is.
    if let Some(printer) = printer {
        printer.finish();
    }
    result
}

struct Session<'a> {
    client: Client,
    args: &'a CallArgs,
}

/// What is known about one method, however it was learnt.
struct MethodDoc {
    name: String,
    /// `None`: the server did not say.
    args: Option<Vec<ArgDoc>>,
    doc: Option<String>,
}

struct ArgDoc {
    name: String,
    ty: Option<String>,
    default: Option<Value>,
}

struct ServiceDoc {
    name: String,
    methods: Vec<MethodDoc>,
    /// The `_zerorpc_inspect` answer, when the server gave one.
    raw: Option<Value>,
}

impl Session<'_> {
    async fn run(self) -> Result<(), Failure> {
        match &self.args.action {
            Action::List => self.list().await,
            Action::Inspect => self.inspect().await,
            Action::HelpMethod(method) => self.help(method).await,
            Action::Call {
                method,
                args: call_args,
            } => self.call(method, call_args.clone()).await,
        }
    }

    async fn invoke(&self, method: &str, args: Vec<Value>) -> Result<Response, Failure> {
        self.client
            .invoke(method, args, CallOptions::new())
            .await
            .map_err(|e| Failure::from_call(e, &self.args.endpoints, method, self.args.timeout))
    }

    async fn value(&self, method: &str, args: Vec<Value>) -> Result<Value, Failure> {
        match self.invoke(method, args).await? {
            Response::Value(v) => Ok(v),
            Response::Stream(_) => Err(Failure::protocol(format!(
                "{method} answered with a stream, expected one value"
            ))),
        }
    }

    /// The service description: `_zerorpc_inspect`, or when that fails (it
    /// does on every zerorpc-python server under Python 3.11+) the legacy
    /// `_zerorpc_name`, `_zerorpc_list` and `_zerorpc_help` calls.
    async fn describe(&self, only: Option<&str>, with_args: bool) -> Result<ServiceDoc, Failure> {
        match self.value("_zerorpc_inspect", Vec::new()).await {
            Ok(answer) => {
                if let Some(doc) = parse_inspect(&answer) {
                    return Ok(doc);
                }
            }
            Err(Failure::Remote(_)) => {}
            Err(other) => return Err(other),
        }
        let name = match self.value("_zerorpc_name", Vec::new()).await {
            Ok(v) => text(&v).unwrap_or_else(|| "N/A".to_owned()),
            Err(Failure::Remote(_)) => "N/A".to_owned(),
            Err(other) => return Err(other),
        };
        let names: Vec<String> = match only {
            Some(method) => vec![method.to_owned()],
            None => match self.value("_zerorpc_list", Vec::new()).await? {
                Value::Array(items) => items.iter().filter_map(text).collect(),
                other => {
                    return Err(Failure::protocol(format!(
                        "_zerorpc_list answered {other}, expected a list of names"
                    )));
                }
            },
        };
        let mut methods = Vec::with_capacity(names.len());
        for method in names {
            let doc = match self
                .value("_zerorpc_help", vec![Value::from(method.as_str())])
                .await
            {
                Ok(v) => text(&v),
                // A KeyError: the method does not exist.
                Err(Failure::Remote(_)) if only.is_some() => {
                    return Ok(ServiceDoc {
                        name,
                        methods: Vec::new(),
                        raw: None,
                    });
                }
                Err(Failure::Remote(_)) => None,
                Err(other) => return Err(other),
            };
            if !with_args {
                methods.push(MethodDoc {
                    name: method,
                    args: None,
                    doc,
                });
                continue;
            }
            let args = match self
                .value("_zerorpc_args", vec![Value::from(method.as_str())])
                .await
            {
                Ok(spec) => parse_argspec(&spec),
                Err(Failure::Remote(_)) => None,
                Err(other) => return Err(other),
            };
            methods.push(MethodDoc {
                name: method,
                args,
                doc,
            });
        }
        Ok(ServiceDoc {
            name,
            methods,
            raw: None,
        })
    }

    async fn list(&self) -> Result<(), Failure> {
        let service = self.describe(None, false).await?;
        if self.args.output == OutputStyle::Json {
            let listing = Value::Map(
                service
                    .methods
                    .iter()
                    .map(|m| {
                        (
                            Value::from(m.name.as_str()),
                            m.doc
                                .as_deref()
                                .map_or(Value::Nil, |d| Value::from(first_line(d))),
                        )
                    })
                    .collect(),
            );
            return print_line(&render::json(&Value::Map(vec![
                (Value::from("name"), Value::from(service.name)),
                (Value::from("methods"), listing),
            ])));
        }
        let width = service
            .methods
            .iter()
            .map(|m| m.name.chars().count())
            .max()
            .unwrap_or(0);
        let mut out = String::new();
        out.push_str(&format!("{BOLD}[{}]{BOLD:#}\n", service.name));
        for method in &service.methods {
            let doc = method
                .doc
                .as_deref()
                .map(first_line)
                .filter(|d| !d.is_empty())
                .unwrap_or("<undocumented>");
            let pad = width - method.name.chars().count();
            out.push_str(&format!(
                "{BOLD}{}{BOLD:#}{} {doc}\n",
                method.name,
                " ".repeat(pad)
            ));
        }
        print(&out)
    }

    async fn inspect(&self) -> Result<(), Failure> {
        let service = self.describe(None, true).await?;
        if self.args.output == OutputStyle::Json {
            let raw = service
                .raw
                .clone()
                .unwrap_or_else(|| rebuild_inspect(&service));
            return print_line(&render::json(&raw));
        }
        let mut out = format!("{BOLD}[{}]{BOLD:#}\n", service.name);
        for (i, method) in service.methods.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            out.push_str(&format!("{BOLD}{}{BOLD:#}\n", signature(method)));
            match method.doc.as_deref().filter(|d| !d.is_empty()) {
                Some(doc) => {
                    for line in doc.lines() {
                        out.push_str(&format!("    {line}\n").replace("    \n", "\n"));
                    }
                }
                None => out.push_str("    <undocumented>\n"),
            }
        }
        print(&out)
    }

    async fn help(&self, method: &str) -> Result<(), Failure> {
        let service = self.describe(Some(method), true).await?;
        let Some(found) = service.methods.iter().find(|m| m.name == method) else {
            print(&format!("{BOLD}[{}]{BOLD:#}\n", service.name))?;
            return Err(Failure::Remote(zerorpc::RemoteError::new(
                "NameError",
                format!("No documentation for \"{method}\"."),
                "",
            )));
        };
        let doc = found
            .doc
            .as_deref()
            .filter(|d| !d.is_empty())
            .unwrap_or("<undocumented>");
        print(&format!(
            "{BOLD}[{}]{BOLD:#}\n{}\n\n{doc}\n",
            service.name,
            signature(found)
        ))
    }

    async fn call(&self, method: &str, args: Vec<Value>) -> Result<(), Failure> {
        let style = self.args.output;
        let hint = json_hint(&args);
        let response =
            self.invoke(method, args)
                .await
                .map_err(|failure| match (&failure, hint) {
                    (Failure::Remote(e), Some(hint)) if is_string_for_structure(e) => {
                        failure.with_hint(hint)
                    }
                    _ => failure,
                })?;
        match response {
            Response::Value(value) => print_value(&value, style),
            Response::Stream(mut stream) => {
                let mut first = true;
                if style == OutputStyle::Json {
                    print("[")?;
                }
                // Each item is written and flushed as it arrives; the stream
                // asks the server for more only as items are consumed.
                while let Some(item) = stream.next().await {
                    let item = match item {
                        Ok(item) => item,
                        Err(e) => {
                            if style == OutputStyle::Json {
                                print("]\n")?;
                            }
                            return Err(Failure::from_call(
                                e,
                                &self.args.endpoints,
                                method,
                                self.args.timeout,
                            ));
                        }
                    };
                    if style == OutputStyle::Json {
                        let sep = if first { "" } else { "," };
                        print(&format!("{sep}{}", render::json(&item)))?;
                    } else {
                        print_value(&item, style)?;
                    }
                    first = false;
                }
                if style == OutputStyle::Json {
                    print("]\n")?;
                }
                Ok(())
            }
        }
    }
}

fn print(text: &str) -> Result<(), Failure> {
    let mut out = anstream::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(output_error)
}

fn print_line(text: &str) -> Result<(), Failure> {
    print(&format!("{text}\n"))
}

/// One result or stream item, and a newline.
fn print_value(value: &Value, style: OutputStyle) -> Result<(), Failure> {
    let raw = match style {
        OutputStyle::Raw => render::raw_bytes(value),
        _ => None,
    };
    if let Some(bytes) = raw {
        // Straight to stdout, not through anstream: raw output is the
        // program's data, whose bytes must survive as they are. anstream
        // would strip escape sequences (colours in a command's output) when
        // piped, and text would have to be valid UTF-8.
        let mut out = std::io::stdout().lock();
        return out
            .write_all(bytes)
            .and_then(|()| out.write_all(b"\n"))
            .and_then(|()| out.flush())
            .map_err(output_error);
    }
    print_line(&render::value(value, style))
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        Value::Binary(b) => Some(String::from_utf8_lossy(b).into_owned()),
        _ => None,
    }
}

fn first_line(doc: &str) -> &str {
    doc.lines().next().unwrap_or("").trim_end()
}

fn get<'v>(map: &'v Value, key: &str) -> Option<&'v Value> {
    map.as_map()?
        .iter()
        .find(|(k, _)| text(k).as_deref() == Some(key))
        .map(|(_, v)| v)
}

/// Reads a `_zerorpc_inspect` answer; `None` if it has an unknown shape.
fn parse_inspect(answer: &Value) -> Option<ServiceDoc> {
    let name = get(answer, "name")
        .and_then(text)
        .unwrap_or_else(|| "N/A".to_owned());
    let methods = get(answer, "methods")?.as_map()?;
    let methods = methods
        .iter()
        .filter_map(|(name, details)| {
            let name = text(name)?;
            let doc = get(details, "doc").and_then(text);
            let args = get(details, "args").and_then(Value::as_array).map(|args| {
                args.iter()
                    .filter_map(|arg| {
                        Some(ArgDoc {
                            name: get(arg, "name").and_then(text)?,
                            ty: get(arg, "type").and_then(text),
                            default: get(arg, "default").cloned(),
                        })
                    })
                    .collect()
            });
            Some(MethodDoc { name, args, doc })
        })
        .collect();
    Some(ServiceDoc {
        name,
        methods,
        raw: Some(answer.clone()),
    })
}

/// Reads `_zerorpc_args`'s `[args, varargs, keywords, defaults]`.
fn parse_argspec(spec: &Value) -> Option<Vec<ArgDoc>> {
    let parts = spec.as_array()?;
    let names: Vec<String> = parts.first()?.as_array()?.iter().filter_map(text).collect();
    let defaults = parts
        .get(3)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let first_default = names.len().saturating_sub(defaults.len());
    let mut args: Vec<ArgDoc> = names
        .into_iter()
        .enumerate()
        .map(|(i, name)| ArgDoc {
            name,
            ty: None,
            default: i
                .checked_sub(first_default)
                .and_then(|d| defaults.get(d).cloned()),
        })
        .collect();
    for (index, prefix) in [(1, "*"), (2, "**")] {
        if let Some(name) = parts.get(index).and_then(text) {
            args.push(ArgDoc {
                name: format!("{prefix}{name}"),
                ty: None,
                default: None,
            });
        }
    }
    Some(args)
}

/// The inspect answer, rebuilt from the legacy calls.
fn rebuild_inspect(service: &ServiceDoc) -> Value {
    let methods = service
        .methods
        .iter()
        .map(|m| {
            let args = m.args.as_ref().map_or(Value::Nil, |args| {
                Value::Array(
                    args.iter()
                        .map(|a| {
                            let mut entry =
                                vec![(Value::from("name"), Value::from(a.name.as_str()))];
                            if let Some(default) = &a.default {
                                entry.push((Value::from("default"), default.clone()));
                            }
                            Value::Map(entry)
                        })
                        .collect(),
                )
            });
            let doc = m.doc.as_deref().map_or(Value::Nil, Value::from);
            (
                Value::from(m.name.as_str()),
                Value::Map(vec![(Value::from("args"), args), (Value::from("doc"), doc)]),
            )
        })
        .collect();
    Value::Map(vec![
        (Value::from("name"), Value::from(service.name.as_str())),
        (Value::from("methods"), Value::Map(methods)),
    ])
}

/// `name(a, b=1)`, as zerorpc-python's CLI shows it (without `self`);
/// `name(...)` when the server does not describe the arguments.
fn signature(method: &MethodDoc) -> String {
    let Some(args) = &method.args else {
        return format!("{}(...)", method.name);
    };
    let args: Vec<String> = args
        .iter()
        .filter(|a| a.name != "self")
        .map(|a| {
            let mut text = a.name.clone();
            if let Some(ty) = &a.ty {
                text.push_str(": ");
                text.push_str(ty);
            }
            // zerorpc-python's CLI leaves out a nil default, and so do we.
            if let Some(default) = a.default.as_ref().filter(|d| !d.is_nil()) {
                text.push('=');
                text.push_str(&render::plain(default));
            }
            text
        })
        .collect();
    format!("{}({})", method.name, args.join(", "))
}

/// For the first argument that is a string holding a JSON object or
/// array: the hint that `-j` sends it as one.
fn json_hint(args: &[Value]) -> Option<String> {
    args.iter().enumerate().find_map(|(i, arg)| {
        let text = arg.as_str()?.trim();
        let structured = (text.starts_with('{') || text.starts_with('['))
            && serde_json::from_str::<serde_json::Value>(text).is_ok();
        structured.then(|| {
            format!(
                "argument {} looks like JSON but was sent as a string: use -j to send arguments as JSON",
                i + 1
            )
        })
    })
}

/// Whether a remote error says a string came where a structure (a map, a
/// list, a struct) was expected, as a Rust service words it.
fn is_string_for_structure(error: &zerorpc::RemoteError) -> bool {
    error.name() == "TypeError" && error.message().contains("invalid type: string")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures() {
        let answer = Value::Map(vec![
            (Value::from("name"), Value::from("Tiny")),
            (
                Value::from("methods"),
                Value::Map(vec![(
                    Value::from("add"),
                    Value::Map(vec![
                        (
                            Value::from("args"),
                            Value::Array(vec![
                                Value::Map(vec![(Value::from("name"), Value::from("self"))]),
                                Value::Map(vec![(Value::from("name"), Value::from("a"))]),
                                Value::Map(vec![
                                    (Value::from("name"), Value::from("b")),
                                    (Value::from("default"), Value::from("x")),
                                ]),
                            ]),
                        ),
                        (Value::from("doc"), Value::from("Add.")),
                    ]),
                )]),
            ),
        ]);
        let service = parse_inspect(&answer).expect("a valid answer");
        assert_eq!(service.name, "Tiny");
        assert_eq!(signature(&service.methods[0]), "add(a, b=x)");
        let spec = Value::Array(vec![
            Value::Array(vec![
                Value::from("self"),
                Value::from("a"),
                Value::from("b"),
            ]),
            Value::Nil,
            Value::from("kw"),
            Value::Array(vec![Value::from(1)]),
        ]);
        let method = MethodDoc {
            name: "add".into(),
            args: parse_argspec(&spec),
            doc: None,
        };
        assert_eq!(signature(&method), "add(a, b=1, **kw)");
    }
}
