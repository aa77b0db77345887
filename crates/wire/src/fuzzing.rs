//! What the fuzz drivers of the upper layers share: reading operations out
//! of arbitrary bytes, and events built from a few parts that the code
//! under test tells apart. Not part of the API: it may change with any
//! release.

use crate::{Event, Header, MessageId, Value, names};

/// The bytes still to read; zeros once they run out, so that every input
/// means something.
pub struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    /// Reads `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Input(data)
    }

    /// Whether every byte was read.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The next byte, or 0.
    pub fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&first, rest)) => {
                self.0 = rest;
                first
            }
            None => 0,
        }
    }

    /// Up to `len` next bytes.
    pub fn take(&mut self, len: usize) -> Vec<u8> {
        let len = len.min(self.0.len());
        let (taken, rest) = self.0.split_at(len);
        self.0 = rest;
        taken.to_vec()
    }
}

/// An event with id `id`, replying to `response_to`, its name chosen by
/// `choice` among those a channel tells apart (replies, stream items,
/// heartbeats, credit, a call, an empty name), and its protocol version
/// and arguments read from `input`.
pub fn event(
    input: &mut Input<'_>,
    choice: u8,
    id: MessageId,
    response_to: Option<MessageId>,
) -> Event {
    let name = match usize::from(choice) % (names::ALL.len() + 2) {
        i if i < names::ALL.len() => names::ALL[i],
        i if i == names::ALL.len() => "add",
        _ => "",
    };
    let mut header = Header::with_id(id);
    header.response_to = response_to;
    header.version = match input.byte() % 3 {
        0 => None,
        1 => Some(2),
        _ => Some(3),
    };
    let args = match input.byte() % 4 {
        0 => Value::Nil,
        1 => Value::Array(vec![Value::from(i64::from(input.byte() as i8))]),
        2 => Value::Array(Vec::new()),
        _ => Value::from("x"),
    };
    Event::new(header, name, args)
}
