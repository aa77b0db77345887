//! The TXT record of a service: one JSON object describing it.
//!
//! ```text
//! users.svc.example.test. 300 IN TXT "{\"endpoints\":[\"tcp://10.0.0.7:4242\"],\"socket_type\":\"ROUTER\",\"protocol\":3}"
//! ```
//!
//! | key | type | meaning |
//! | --- | --- | --- |
//! | `endpoints` | array of strings | ZeroMQ endpoints of the service's instances (`tcp://`, `ipc://`...) |
//! | `socket_type` | string | the ZeroMQ socket the instances bind: `ROUTER` (RPC servers), `PULL`, `PUB`... |
//! | `protocol` | integer | the ZeroRPC protocol version the instances speak (3 today) |
//! | `metadata` | object | anything else the announcer wants known (owner, version...) |
//!
//! Every key is optional; unknown keys are ignored, so that announcers can
//! add keys without breaking older resolvers. When SRV records exist for
//! the name, they give the endpoints (with priorities and weights) and the
//! TXT record's `endpoints` are not used; without SRV records, the TXT
//! record's `endpoints` are the service.
//!
//! DNS carries a TXT record as a list of strings of at most 255 bytes each;
//! [`TxtRecord::to_strings`] splits the JSON that way, and
//! [`TxtRecord::from_strings`] joins the strings before parsing.

use serde::{Deserialize, Serialize};

/// The most bytes in one string of a TXT record (RFC 1035: a length byte).
pub const MAX_TXT_STRING: usize = 255;

/// What a service's TXT record says about it. See the [module docs](self).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TxtRecord {
    /// ZeroMQ endpoints of the service's instances.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<String>,
    /// The ZeroMQ socket type the instances bind (`ROUTER`, `PULL`...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket_type: Option<String>,
    /// The ZeroRPC protocol version the instances speak.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<u32>,
    /// Anything else the announcer wants known.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

/// A TXT record whose text is not the JSON object described in the
/// [module docs](self).
#[derive(Debug, thiserror::Error)]
#[error("the TXT record is not a service description: {source} (at line {line}, column {column})")]
pub struct TxtError {
    line: usize,
    column: usize,
    #[source]
    source: serde_json::Error,
}

impl TxtError {
    /// Where in the joined text the parser stopped: (line, column), from 1.
    pub fn position(&self) -> (usize, usize) {
        (self.line, self.column)
    }
}

impl TxtRecord {
    /// Parses the strings of a TXT record, joined in order.
    pub fn from_strings<S: AsRef<[u8]>>(strings: &[S]) -> Result<TxtRecord, TxtError> {
        let joined: Vec<u8> = strings
            .iter()
            .flat_map(|s| s.as_ref().iter().copied())
            .collect();
        serde_json::from_slice(&joined).map_err(|source| TxtError {
            line: source.line(),
            column: source.column(),
            source,
        })
    }

    /// The record's JSON, compact.
    pub fn to_json(&self) -> String {
        // A struct of strings, numbers and JSON values always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The record's JSON split into strings of at most [`MAX_TXT_STRING`]
    /// bytes, never inside a UTF-8 character.
    pub fn to_strings(&self) -> Vec<String> {
        split_txt(&self.to_json())
    }
}

/// Splits `text` into pieces of at most [`MAX_TXT_STRING`] bytes, on UTF-8
/// character boundaries.
pub fn split_txt(text: &str) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let mut end = rest.len().min(MAX_TXT_STRING);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        let (piece, tail) = rest.split_at(end);
        pieces.push(piece.to_owned());
        rest = tail;
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_survives_splitting_and_joining() {
        let mut record = TxtRecord {
            endpoints: (0..40).map(|i| format!("tcp://10.0.0.{i}:4242")).collect(),
            socket_type: Some("ROUTER".into()),
            protocol: Some(3),
            ..TxtRecord::default()
        };
        record
            .metadata
            .insert("owner".into(), "payments é team".into());
        let strings = record.to_strings();
        assert!(strings.len() > 1, "{} bytes", record.to_json().len());
        assert!(strings.iter().all(|s| s.len() <= MAX_TXT_STRING));
        assert_eq!(TxtRecord::from_strings(&strings).unwrap(), record);
    }

    #[test]
    fn unknown_keys_are_ignored_and_every_key_is_optional() {
        let record = TxtRecord::from_strings(&[r#"{"future":1,"protocol":3}"#]).unwrap();
        assert_eq!(record.protocol, Some(3));
        assert!(record.endpoints.is_empty());
        assert_eq!(
            TxtRecord::from_strings(&["{}"]).unwrap(),
            TxtRecord::default()
        );
    }

    #[test]
    fn malformed_json_says_where() {
        let error = TxtRecord::from_strings(&["{\"endpoints\": [1,"]).unwrap_err();
        assert_eq!(error.position().0, 1);
        assert!(error.to_string().contains("column"), "{error}");
        let error = TxtRecord::from_strings(&["v=spf1 -all"]).unwrap_err();
        assert!(
            error.to_string().contains("not a service description"),
            "{error}"
        );
    }

    #[test]
    fn splitting_respects_character_boundaries() {
        let text = "é".repeat(300);
        let pieces = split_txt(&text);
        assert!(pieces.iter().all(|p| p.len() <= MAX_TXT_STRING));
        assert_eq!(pieces.concat(), text);
    }
}
