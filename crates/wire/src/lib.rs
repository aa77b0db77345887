//! The ZeroRPC event codec: MessagePack events, headers and message ids.
//!
//! This crate does no I/O. It turns bytes into [`Event`]s and back, makes
//! message ids the way zerorpc-python does ([`IdGenerator`]), and converts
//! between `serde` types and the dynamic [`Value`] that carries arguments
//! and results ([`to_value`], [`from_value`]).
//!
//! An event is the msgpack array `[header, name, args]`. The header is a map
//! with `message_id`, `v` (always 3 when we send), `response_to` (on every
//! event of a channel but the first) and any other keys, which are kept.
//!
//! ```
//! use zerorpc_wire::{Event, Header, to_value, from_value};
//!
//! let request = Event::new(Header::new(), "add", to_value(&(1, 2))?);
//! let bytes = request.encode();
//! let back = Event::decode(&bytes)?;
//! assert_eq!(back.name, "add");
//! let (a, b): (i64, i64) = from_value(back.args)?;
//! assert_eq!(a + b, 3);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Re-encoding
//!
//! [`Event::encode`] writes what zerorpc-python writes, so an event received
//! from Python re-encodes to the very same bytes. Events from other peers
//! come out equivalent but not always identical:
//!
//! * header keys are written in Python's order (`message_id`, `v`,
//!   `response_to`, then the others as received), whereas node writes `v`
//!   first;
//! * header keys and the name received as bin are written as str;
//! * numbers and lengths are written in their shortest form;
//! * a `v` that is not an integer in `u32` range is dropped (read as no
//!   version at all).
//!
//! Ids always keep their msgpack type and bytes, as Python requires for
//! routing replies.
//!
//! Decoding is as strict as Python's `raw=False` unpacker: a str holding
//! invalid UTF-8 or the reserved marker `0xc1` anywhere in the event is an
//! error, and so is nesting deeper than 128 arrays and maps.
//!
//! # Type mapping
//!
//! See [`to_value`] for how Rust types map to msgpack, chosen so that a
//! Python peer sees what it would expect: text as str, bytes as bin, structs
//! as maps keyed by field name, tuples and sequences as arrays.
//!
//! This crate has no feature flags.

#![doc(test(attr(deny(warnings))))]

mod decode;
pub mod encode;
mod error;
mod event;
#[doc(hidden)]
pub mod fuzzing;
mod id;
mod value;

pub use decode::utf8;
pub use error::DecodeError;
pub use event::{
    Event, Header, PARENT_SPAN_ID_KEY, PROTOCOL_VERSION, SPAN_ID_KEY, TRACE_ID_KEY, TraceKeys,
    estimated_size, names,
};
pub use id::{IdGenerator, IdKind, MessageId};
pub use rmpv::{self, Value};
pub use value::{ValueError, from_value, to_value};
