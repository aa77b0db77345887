//! YAML files read the way every zerorpc tool reads them: into a serde
//! type, with errors that say where, as a person looks for it (`line 3,
//! column 7, key hub 2 › type: unknown variant ...`).
//!
//! The hub's configuration and the services files of `zerorpc announce`
//! use it, so that both report mistakes the same way.
//!
//! ```
//! #[derive(serde::Deserialize, Debug)]
//! #[serde(deny_unknown_fields)]
//! #[allow(dead_code)]
//! struct Settings {
//!     ttl: u32,
//! }
//!
//! let error = zerorpc_yaml::from_str::<Settings>("ttl: soon\n", None).unwrap_err();
//! assert_eq!(error.line, Some(1));
//! assert_eq!(error.key.as_deref(), Some("ttl"));
//! assert!(error.to_string().starts_with("line 1, column 6, key ttl: invalid type"));
//! ```
//!
//! The YAML parser is `serde_norway`, the maintained fork of the deprecated
//! `serde_yaml`; `serde_path_to_error` gives the key.

#![doc(test(attr(deny(warnings))))]

use serde::de::DeserializeOwned;

/// A YAML document of any shape, to look at before choosing a type.
pub use serde_norway::Value;

/// A YAML document that is malformed, or does not fit the type asked for.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", locate(self.line, self.column, self.key.as_deref(), &self.message))]
#[non_exhaustive]
pub struct YamlError {
    /// 1-based line, when the parser knows it.
    pub line: Option<usize>,
    /// 1-based column, when the parser knows it.
    pub column: Option<usize>,
    /// The key at fault, e.g. `services › [0] › ttl`.
    pub key: Option<String>,
    /// What is wrong, without the place.
    pub message: String,
}

/// Reads `text` as a `T`. With `items` set (e.g. `"hub"`), the elements of
/// a top-level list are named `hub 1`, `hub 2`... in keys, as a person
/// counts them, rather than `[0]`, `[1]`.
pub fn from_str<T: DeserializeOwned>(text: &str, items: Option<&str>) -> Result<T, YamlError> {
    let deserializer = serde_norway::Deserializer::from_str(text);
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let key = describe_path(e.path(), items);
        located(e.into_inner(), key)
    })
}

/// `line L, column C, key K: message`, leaving out what is unknown (and
/// the colon when nothing is known).
pub fn locate(
    line: Option<usize>,
    column: Option<usize>,
    key: Option<&str>,
    message: &str,
) -> String {
    let mut place = Vec::new();
    if let Some(line) = line {
        place.push(format!("line {line}"));
    }
    if let (Some(_), Some(column)) = (line, column) {
        place.push(format!("column {column}"));
    }
    if let Some(key) = key {
        place.push(format!("key {key}"));
    }
    if place.is_empty() {
        message.to_owned()
    } else {
        format!("{}: {message}", place.join(", "))
    }
}

/// Turns serde's path (`[1].type`) into the words used in messages
/// (`[1] › type`, or `hub 2 › type` with `items`).
fn describe_path(path: &serde_path_to_error::Path, items: Option<&str>) -> Option<String> {
    use serde_path_to_error::Segment;
    let parts: Vec<String> = path
        .iter()
        .enumerate()
        .filter_map(|(i, segment)| match (segment, items) {
            (Segment::Seq { index }, Some(item)) if i == 0 => Some(format!("{item} {}", index + 1)),
            (Segment::Seq { index }, _) => Some(format!("[{index}]")),
            (Segment::Map { key }, _) => Some(key.clone()),
            (Segment::Enum { variant }, _) => Some(variant.clone()),
            (Segment::Unknown, _) => None,
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join(" › "))
}

fn located(error: serde_norway::Error, key: Option<String>) -> YamlError {
    let location = error.location();
    let mut message = error.to_string();
    // The YAML error repeats its position at the end of the text; it is
    // shown once, in front.
    if let Some(at) = message.find(" at line ") {
        message.truncate(at);
    }
    // It may also start with its own spelling of the path (`type: ...`),
    // which the key already gives.
    if let Some((prefix, rest)) = message.split_once(": ") {
        if key.is_some()
            && !prefix.is_empty()
            && prefix
                .chars()
                .all(|c| c.is_alphanumeric() || "_.[]".contains(c))
        {
            message = rest.to_owned();
        }
    }
    YamlError {
        line: location.as_ref().map(|l| l.line()),
        column: location.as_ref().map(|l| l.column()),
        key,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Hub {
        name: String,
    }

    #[test]
    fn list_items_are_counted_from_one_when_named() {
        let error = from_str::<Vec<Hub>>("- name: a\n- nmae: b\n", Some("hub")).unwrap_err();
        assert_eq!(error.key.as_deref(), Some("hub 2 › nmae"));
        assert_eq!(error.line, Some(2));
        let error = from_str::<Vec<Hub>>("- name: a\n- nmae: b\n", None).unwrap_err();
        assert_eq!(error.key.as_deref(), Some("[1] › nmae"));
    }

    #[test]
    fn malformed_yaml_has_a_place_but_no_key() {
        let error = from_str::<Vec<Hub>>("[name: a\n", None).unwrap_err();
        assert!(error.line.is_some());
        assert_eq!(error.key, None);
        assert!(!error.message.contains(" at line "), "{error}");
    }

    #[test]
    fn the_place_leaves_out_what_is_unknown() {
        assert_eq!(locate(None, Some(3), None, "bad"), "bad");
        assert_eq!(
            locate(Some(2), None, Some("k"), "bad"),
            "line 2, key k: bad"
        );
    }
}
