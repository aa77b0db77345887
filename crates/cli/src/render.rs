//! Printing values: Python-like `repr` (what zerorpc-python's CLI shows),
//! raw text, or JSON; and turning JSON arguments into values.
//!
//! Colours are written as ANSI sequences and stripped by `anstream` when
//! the output is not a terminal or `NO_COLOR` is set.

use std::fmt::Write as _;

use anstyle::{AnsiColor, Style};
use zerorpc::Value;

use crate::args::OutputStyle;

const STRING: Style = Style::new().fg_color(Some(anstyle::Color::Ansi(AnsiColor::Green)));
const NUMBER: Style = Style::new().fg_color(Some(anstyle::Color::Ansi(AnsiColor::Cyan)));
const CONSTANT: Style = Style::new().fg_color(Some(anstyle::Color::Ansi(AnsiColor::Magenta)));

/// The text printed for one result (or one stream item), without the final
/// newline. A JSON stream's brackets and commas are the caller's.
pub(crate) fn value(value: &Value, style: OutputStyle) -> String {
    match style {
        OutputStyle::Json => json(value),
        OutputStyle::Raw => match raw_bytes(value) {
            Some(bytes) => String::from_utf8_lossy(bytes).into_owned(),
            None => repr(value),
        },
        OutputStyle::Readable => repr(value),
    }
}

/// What `-r/--raw` prints for a string or binary value, byte for byte (not
/// necessarily UTF-8), without one trailing newline; `None` for other values,
/// which print as `repr`.
pub(crate) fn raw_bytes(value: &Value) -> Option<&[u8]> {
    let bytes = match value {
        Value::String(s) => s.as_bytes(),
        Value::Binary(b) => b,
        _ => return None,
    };
    Some(bytes.strip_suffix(b"\n").unwrap_or(bytes))
}

/// Python's `repr` of the value zerorpc-python would decode.
pub(crate) fn repr(value: &Value) -> String {
    let mut out = String::new();
    write_repr(&mut out, value, 0);
    out
}

/// Past this depth containers print as `[...]`, so a hostile reply cannot
/// exhaust the stack.
const MAX_DEPTH: usize = 64;

fn write_repr(out: &mut String, value: &Value, depth: usize) {
    if depth > MAX_DEPTH {
        out.push_str("...");
        return;
    }
    match value {
        Value::Nil => styled(out, CONSTANT, "None"),
        Value::Boolean(b) => styled(out, CONSTANT, if *b { "True" } else { "False" }),
        Value::Integer(i) => styled(out, NUMBER, &i.to_string()),
        Value::F32(f) => styled(out, NUMBER, &python_float(f64::from(*f))),
        Value::F64(f) => styled(out, NUMBER, &python_float(*f)),
        Value::String(s) => match s.as_str() {
            Some(text) => styled(out, STRING, &python_str(text)),
            // Python would fail to decode it; show the bytes instead.
            None => styled(out, STRING, &python_bytes(s.as_bytes())),
        },
        Value::Binary(b) => styled(out, STRING, &python_bytes(b)),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_repr(out, item, depth + 1);
            }
            out.push(']');
        }
        Value::Map(entries) => {
            out.push('{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_repr(out, k, depth + 1);
                out.push_str(": ");
                write_repr(out, v, depth + 1);
            }
            out.push('}');
        }
        Value::Ext(code, data) => {
            let _ = write!(out, "ExtType(code={code}, data={})", python_bytes(data));
        }
    }
}

fn styled(out: &mut String, style: Style, text: &str) {
    let _ = write!(out, "{style}{text}{style:#}");
}

/// Python's float repr: shortest round-trip digits, `.0` on integers,
/// exponent notation outside [1e-4, 1e16).
pub(crate) fn python_float(f: f64) -> String {
    if f.is_nan() {
        return "nan".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    let magnitude = f.abs();
    if magnitude != 0.0 && !(1e-4..1e16).contains(&magnitude) {
        let text = format!("{f:e}");
        let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
        let (sign, digits) = match exponent.strip_prefix('-') {
            Some(d) => ('-', d),
            None => ('+', exponent),
        };
        return format!("{mantissa}e{sign}{digits:0>2}");
    }
    let text = format!("{f}");
    if text.contains('.') {
        text
    } else {
        format!("{text}.0")
    }
}

/// Python's `repr` of a `str`.
pub(crate) fn python_str(text: &str) -> String {
    let quote = if text.contains('\'') && !text.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(text.len() + 2);
    out.push(quote);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Python's `repr` of `bytes`.
pub(crate) fn python_bytes(bytes: &[u8]) -> String {
    let quote = if bytes.contains(&b'\'') && !bytes.contains(&b'"') {
        b'"'
    } else {
        b'\''
    };
    let mut out = String::with_capacity(bytes.len() + 3);
    out.push('b');
    out.push(quote as char);
    for &b in bytes {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            b if b == quote => {
                out.push('\\');
                out.push(b as char);
            }
            0x20..0x7f => out.push(b as char),
            b => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out.push(quote as char);
    out
}

/// Compact JSON, as zerorpc-python's `json.dump`.
///
/// What JSON cannot express is mapped, not refused: binary data is a string
/// when it is UTF-8 and an array of byte values otherwise, NaN and the
/// infinities are `null`, non-string map keys are their JSON text, and
/// extension values are `{"ext": code, "data": [bytes]}`.
pub(crate) fn json(value: &Value) -> String {
    value_to_json(value, 0).to_string()
}

fn value_to_json(value: &Value, depth: usize) -> serde_json::Value {
    use serde_json::Value as J;
    if depth > MAX_DEPTH {
        return J::Null;
    }
    let bytes = |b: &[u8]| match std::str::from_utf8(b) {
        Ok(text) => J::String(text.to_owned()),
        Err(_) => J::Array(b.iter().map(|&x| J::from(x)).collect()),
    };
    match value {
        Value::Nil => J::Null,
        Value::Boolean(b) => J::Bool(*b),
        Value::Integer(i) => match (i.as_i64(), i.as_u64()) {
            (Some(n), _) => J::from(n),
            (None, Some(n)) => J::from(n),
            (None, None) => J::Null,
        },
        Value::F32(f) => serde_json::Number::from_f64(f64::from(*f)).map_or(J::Null, J::Number),
        Value::F64(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        Value::String(s) => bytes(s.as_bytes()),
        Value::Binary(b) => bytes(b),
        Value::Array(items) => {
            J::Array(items.iter().map(|v| value_to_json(v, depth + 1)).collect())
        }
        Value::Map(entries) => J::Object(
            entries
                .iter()
                .map(|(k, v)| {
                    let key = match value_to_json(k, depth + 1) {
                        J::String(s) => s,
                        other => other.to_string(),
                    };
                    (key, value_to_json(v, depth + 1))
                })
                .collect(),
        ),
        Value::Ext(code, data) => {
            let mut map = serde_json::Map::new();
            map.insert("ext".to_owned(), J::from(*code));
            map.insert(
                "data".to_owned(),
                J::Array(data.iter().map(|&x| J::from(x)).collect()),
            );
            J::Object(map)
        }
    }
}

/// A JSON argument (`-j`) as the value sent.
pub(crate) fn json_to_value(json: serde_json::Value) -> Value {
    use serde_json::Value as J;
    match json {
        J::Null => Value::Nil,
        J::Bool(b) => Value::Boolean(b),
        J::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                Value::F64(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        J::String(s) => Value::from(s),
        J::Array(items) => Value::Array(items.into_iter().map(json_to_value).collect()),
        J::Object(map) => Value::Map(
            map.into_iter()
                .map(|(k, v)| (Value::from(k), json_to_value(v)))
                .collect(),
        ),
    }
}

/// Python's `str` of a default value in a signature: strings unquoted.
pub(crate) fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.as_str().map_or_else(
            || String::from_utf8_lossy(s.as_bytes()).into_owned(),
            str::to_owned,
        ),
        other => strip_styles(&repr(other)),
    }
}

/// Text without the ANSI sequences `repr` adds.
pub(crate) fn strip_styles(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // An SGR sequence: ESC [ params m.
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(value: Value, expected: &str) {
        assert_eq!(strip_styles(&repr(&value)), expected);
    }

    #[test]
    fn repr_like_python() {
        check(Value::Nil, "None");
        check(Value::from("12"), "'12'");
        check(Value::from("it's"), "\"it's\"");
        check(Value::from("a\nb\\"), "'a\\nb\\\\'");
        check(Value::Binary(vec![0, 1, 0xff, b'a']), "b'\\x00\\x01\\xffa'");
        check(
            Value::Array(vec![Value::from(1), Value::from("two"), Value::F64(3.0)]),
            "[1, 'two', 3.0]",
        );
        check(
            Value::Map(vec![(Value::from("k"), Value::Boolean(true))]),
            "{'k': True}",
        );
        check(Value::F64(1e21), "1e+21");
        check(Value::F64(0.1), "0.1");
        check(Value::F64(1.5e-7), "1.5e-07");
    }

    #[test]
    fn json_like_python() {
        assert_eq!(
            json(&Value::Array(vec![
                Value::from(1),
                Value::from("two"),
                Value::F64(3.0)
            ])),
            "[1,\"two\",3.0]"
        );
        assert_eq!(json(&Value::Binary(vec![0xff, 1])), "[255,1]");
        assert_eq!(json(&Value::Binary(b"hi".to_vec())), "\"hi\"");
        assert_eq!(
            json(&Value::Map(vec![(Value::from(1), Value::Nil)])),
            "{\"1\":null}"
        );
    }

    #[test]
    fn raw_text() {
        assert_eq!(
            value(&Value::from("up 3 days\n"), OutputStyle::Raw),
            "up 3 days"
        );
        assert_eq!(strip_styles(&value(&Value::from(3), OutputStyle::Raw)), "3");
    }
}
