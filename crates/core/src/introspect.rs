//! The `_zerorpc_*` introspection methods, with zerorpc-python's shapes.

use zerorpc_wire::Value;

use crate::RemoteError;
use crate::service::{MethodInfo, Methods};

/// Whether `method` is an introspection method, which [`answer`] answers
/// before any method of the service of the same name.
pub(crate) fn answers(method: &str) -> bool {
    matches!(
        method,
        "_zerorpc_ping"
            | "_zerorpc_name"
            | "_zerorpc_list"
            | "_zerorpc_help"
            | "_zerorpc_args"
            | "_zerorpc_inspect"
    )
}

/// Answers an introspection call, or `None` when `method` is not one.
pub(crate) fn answer(
    methods: &Methods,
    method: &str,
    args: &[Value],
) -> Option<Result<Value, RemoteError>> {
    let name = || Value::from(methods.name());
    let target = || -> Result<(&str, &MethodInfo), RemoteError> {
        let wanted = args.first().and_then(|v| match v {
            Value::String(s) => s.as_str(),
            Value::Binary(b) => std::str::from_utf8(b).ok(),
            _ => None,
        });
        let wanted = wanted.unwrap_or_default();
        match methods.info(wanted) {
            Some(info) => Ok((wanted, info)),
            None => Err(RemoteError::with_summary("KeyError", format!("'{wanted}'"))),
        }
    };
    let answer = match method {
        "_zerorpc_ping" => Ok(Value::Array(vec!["pong".into(), name()])),
        "_zerorpc_name" => Ok(name()),
        "_zerorpc_list" => Ok(Value::Array(methods.names().map(Value::from).collect())),
        "_zerorpc_help" => target().map(|(_, info)| doc(info)),
        "_zerorpc_args" => target().map(|(_, info)| argspec(info)),
        "_zerorpc_inspect" => Ok(inspect(methods)),
        _ => return None,
    };
    Some(answer)
}

fn doc(info: &MethodInfo) -> Value {
    info.doc.as_deref().map_or(Value::Nil, Value::from)
}

/// Python's `getargspec` 4-tuple: `[args, varargs, keywords, defaults]`.
fn argspec(info: &MethodInfo) -> Value {
    let Some(args) = &info.args else {
        return Value::Nil;
    };
    let names = args.iter().map(|a| Value::from(a.name.as_str())).collect();
    // Python lists defaults for the last k parameters only.
    let defaults: Vec<Value> = args
        .iter()
        .skip_while(|a| a.default.is_none())
        .map(|a| a.default.clone().unwrap_or(Value::Nil))
        .collect();
    let defaults = if defaults.is_empty() {
        Value::Nil
    } else {
        Value::Array(defaults)
    };
    Value::Array(vec![Value::Array(names), Value::Nil, Value::Nil, defaults])
}

fn inspect(methods: &Methods) -> Value {
    let entries = methods
        .names()
        .filter_map(|m| methods.info(m).map(|info| (m, info)))
        .map(|(m, info)| {
            let args = info.args.as_ref().map_or(Value::Nil, |args| {
                Value::Array(
                    args.iter()
                        .map(|a| {
                            let mut entry = vec![("name".into(), Value::from(a.name.as_str()))];
                            if let Some(default) = &a.default {
                                entry.push(("default".into(), default.clone()));
                            }
                            if let Some(ty) = &a.ty {
                                entry.push(("type".into(), Value::from(ty.as_str())));
                            }
                            Value::Map(entry)
                        })
                        .collect(),
                )
            });
            let description = Value::Map(vec![("args".into(), args), ("doc".into(), doc(info))]);
            (Value::from(m), description)
        })
        .collect();
    Value::Map(vec![
        ("name".into(), Value::from(methods.name())),
        ("methods".into(), Value::Map(entries)),
    ])
}
