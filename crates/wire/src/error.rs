//! Decoding errors.

/// Why a byte string is not a ZeroRPC event.
///
/// Decoding never panics: every malformed input maps to one of these.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The bytes are not valid MessagePack (truncated, bad marker, invalid
    /// UTF-8 in a str, or nested deeper than the decoder allows).
    #[error("invalid msgpack")]
    Msgpack(#[source] rmpv::decode::Error),
    /// The top-level value is not an array.
    #[error("event is not an array")]
    NotAnArray,
    /// The top-level array does not have exactly three elements.
    #[error("event has {0} elements instead of 3")]
    WrongLength(usize),
    /// The header (first element) is not a map.
    #[error("event header is not a map")]
    HeaderNotAMap,
    /// A header key is neither str nor UTF-8 bin.
    #[error("event header has a key that is not text")]
    HeaderKeyNotText,
    /// The header has no `message_id`.
    #[error("event header has no message_id")]
    MissingMessageId,
    /// `message_id` or `response_to` is neither str nor bin.
    #[error("event header field {0} is neither str nor bin")]
    InvalidId(&'static str),
    /// The event name is neither str nor UTF-8 bin.
    #[error("event name is not text")]
    NameNotText,
    /// Bytes remain after the event.
    #[error("{0} trailing bytes after the event")]
    TrailingBytes(usize),
}
