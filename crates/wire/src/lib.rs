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
//! # Type mapping
//!
//! See [`to_value`] for how Rust types map to msgpack, chosen so that a
//! Python peer sees what it would expect: text as str, bytes as bin, structs
//! as maps keyed by field name, tuples and sequences as arrays.
//!
//! This crate has no feature flags.

mod decode;
mod error;
mod event;
mod id;
mod value;

pub use error::DecodeError;
pub use event::{Event, Header, PROTOCOL_VERSION, names};
pub use id::{IdGenerator, IdKind, MessageId};
pub use rmpv::{self, Value};
pub use value::{ValueError, from_value, to_value};
