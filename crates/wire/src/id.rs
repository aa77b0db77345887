//! Message ids: the opaque per-event identifiers that also name channels.

use std::cell::RefCell;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;

/// How a [`MessageId`] travels on the wire.
///
/// zerorpc-python sends ids as msgpack **bin**; zerorpc-node sends them as
/// **str**. A reply must echo the id with the type it arrived with, because
/// Python routes replies by dictionary lookup on the decoded value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IdKind {
    /// msgpack bin (zerorpc-python, and what this crate generates).
    Bin,
    /// msgpack str (zerorpc-node).
    Str,
}

const INLINE: usize = 38;

/// The length of the ids ours and zerorpc-python's peers make.
pub(crate) const COMMON: usize = 32;

// Every header holds two ids, moved several times per event: with the
// kind in each variant (the enum's tag finds room in it) and 38 bytes
// inline (ours and zerorpc-python's take 32, zerorpc-node's 36), an id
// takes 40 bytes rather than 56.
#[derive(Clone)]
enum Repr {
    Inline {
        len: u8,
        kind: IdKind,
        buf: [u8; INLINE],
    },
    Heap(Box<[u8]>, IdKind),
}

/// The id of one event; the id of a channel's first event names the channel.
///
/// Ids are opaque bytes plus the msgpack type they travel as ([`IdKind`]).
/// Equality and hashing look at the bytes only, so a channel opened with a
/// bin id is found again by a str id with the same bytes; encoding keeps the
/// original type, so echoing an id reproduces it byte for byte.
#[derive(Clone)]
pub struct MessageId {
    repr: Repr,
}

impl MessageId {
    /// An id made of `bytes`, sent as `kind`.
    pub fn new(bytes: &[u8], kind: IdKind) -> Self {
        // A copy of a known size is a few moves, where one of any size is
        // a call: every event decoded makes two ids.
        if let Ok(common) = <&[u8; COMMON]>::try_from(bytes) {
            return MessageId::common(common, kind);
        }
        let repr = if bytes.len() <= INLINE {
            let mut buf = [0; INLINE];
            buf[..bytes.len()].copy_from_slice(bytes);
            // The guard above bounds the length by INLINE, which fits in a u8.
            Repr::Inline {
                len: bytes.len() as u8,
                kind,
                buf,
            }
        } else {
            Repr::Heap(bytes.into(), kind)
        };
        MessageId { repr }
    }

    /// An id of the common length: what the decoder makes of nearly every
    /// id it reads, with no length to look at.
    #[inline]
    pub(crate) fn common(bytes: &[u8; COMMON], kind: IdKind) -> Self {
        let mut buf = [0; INLINE];
        buf[..COMMON].copy_from_slice(bytes);
        MessageId {
            repr: Repr::Inline {
                // COMMON is below INLINE, which fits in a u8.
                len: COMMON as u8,
                kind,
                buf,
            },
        }
    }

    /// A fresh id from this thread's generator (see [`IdGenerator`]).
    ///
    /// Each thread draws a random base of its own, so ids stay unique
    /// across threads and processes, and making one takes no lock: the
    /// threads of a busy client or server all make ids, and a shared
    /// generator's lock passed between them at every request and reply.
    pub fn generate() -> Self {
        thread_local! {
            static LOCAL: RefCell<GeneratorState> = RefCell::new(GeneratorState::fresh());
        }
        let bytes = LOCAL.with(|state| state.borrow_mut().next_bytes());
        MessageId::new(&bytes, IdKind::Bin)
    }

    /// The raw bytes of the id.
    pub fn as_bytes(&self) -> &[u8] {
        self.parts().0
    }

    /// The bytes and the kind at once: one look at the variant.
    pub(crate) fn parts(&self) -> (&[u8], IdKind) {
        match &self.repr {
            Repr::Inline { len, kind, buf } => (&buf[..usize::from(*len)], *kind),
            Repr::Heap(bytes, kind) => (bytes, *kind),
        }
    }

    /// The msgpack type the id travels as.
    pub fn kind(&self) -> IdKind {
        self.parts().1
    }
}

impl PartialEq for MessageId {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for MessageId {}

impl Hash for MessageId {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageId({:?}, {})", self.kind(), self)
    }
}

/// Shows printable ids as text and others as hex.
impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.as_bytes();
        match std::str::from_utf8(bytes) {
            Ok(s) if s.chars().all(|c| c.is_ascii_graphic()) => f.write_str(s),
            _ => bytes.iter().try_for_each(|b| write!(f, "{b:02x}")),
        }
    }
}

/// Makes message ids the way zerorpc-python does.
///
/// Each id is 32 ASCII hex bytes sent as bin: 8 hex digits of a 32-bit
/// counter followed by a random 24-hex-digit base. The counter starts at a
/// random value; when it reaches a randomly chosen stop value a new base and
/// start are drawn, so ids from different processes do not collide.
///
/// ```
/// use zerorpc_wire::{IdGenerator, IdKind};
/// let ids = IdGenerator::new();
/// let (a, b) = (ids.next_id(), ids.next_id());
/// assert_eq!(a.as_bytes().len(), 32);
/// assert_eq!(a.kind(), IdKind::Bin);
/// assert_ne!(a, b);
/// ```
pub struct IdGenerator {
    state: Mutex<GeneratorState>,
}

struct GeneratorState {
    base: [u8; 24],
    counter: u32,
    stop: u32,
}

impl GeneratorState {
    fn fresh() -> Self {
        let seed = uuid::Uuid::new_v4();
        let hex = seed.simple().to_string();
        let mut base = [0; 24];
        base.copy_from_slice(&hex.as_bytes()[8..32]);
        let more = uuid::Uuid::new_v4().as_u128();
        // Starting in the lower half keeps `counter + span` clear of the
        // saturation point, so every base really serves 2^16 ids or more.
        let counter = more as u32 & 0x7fff_ffff;
        // At least 2^16 ids per base, like zerorpc-python's random window.
        let span = (more >> 32) as u32 | 0x1_0000;
        GeneratorState {
            base,
            counter,
            stop: counter.saturating_add(span),
        }
    }
}

impl GeneratorState {
    /// The bytes of the next id: the counter in hex, then the base.
    fn next_bytes(&mut self) -> [u8; 32] {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        if self.counter >= self.stop {
            *self = GeneratorState::fresh();
        }
        let counter = self.counter;
        self.counter += 1;
        let mut buf = [0u8; 32];
        for (i, slot) in buf[..8].iter_mut().enumerate() {
            *slot = HEX[((counter >> (28 - 4 * i)) & 0xf) as usize];
        }
        buf[8..].copy_from_slice(&self.base);
        buf
    }
}

impl IdGenerator {
    /// A generator with a fresh random base and counter.
    pub fn new() -> Self {
        IdGenerator {
            state: Mutex::new(GeneratorState::fresh()),
        }
    }

    /// The next id.
    pub fn next_id(&self) -> MessageId {
        let bytes = self
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .next_bytes();
        MessageId::new(&bytes, IdKind::Bin)
    }
}

impl Default for IdGenerator {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for IdGenerator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdGenerator").finish_non_exhaustive()
    }
}
