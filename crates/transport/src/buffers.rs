//! Encoded events handed to ZeroMQ without a copy, their buffers taken
//! back for the next events once ZeroMQ is done with them.
//!
//! ZeroMQ frees a message on its own thread once written. Copied into a
//! message of ZeroMQ's, every event's payload was allocated by the sending
//! thread and freed by ZeroMQ's: a free across threads, which takes the
//! lock of the sending thread's glibc arena while that thread allocates
//! the next one (57,000-72,000 futex calls per 300,000 streamed items).
//! Here the encoded buffer itself is the message's data, and ZeroMQ's
//! thread puts it back in a pool from which the next event is encoded:
//! no copy, and no free across threads while the pool has room.

use std::ffi::c_void;
use std::sync::{Mutex, PoisonError};

use zerorpc_wire::Event;

/// Messages up to this size are copied into ZeroMQ's own (it keeps them
/// inline, without an allocation): `ZMQ_MAX_VSM_SIZE` on 64-bit builds.
const INLINE: usize = 33;

/// Buffers of more capacity are not kept: what they would save is small
/// next to the copy of their contents, and they would hold memory.
const MAX_KEPT_CAPACITY: usize = 128 << 10;

/// Bytes of capacity the pool keeps at most.
const MAX_KEPT_BYTES: usize = 4 << 20;

/// Buffers ready for encoding, and their total capacity.
struct Pool {
    free: Vec<Vec<u8>>,
    bytes: usize,
}

impl Pool {
    const fn new() -> Pool {
        Pool {
            free: Vec::new(),
            bytes: 0,
        }
    }

    /// A kept buffer, if any.
    fn pop(&mut self) -> Option<Vec<u8>> {
        let buffer = self.free.pop()?;
        self.bytes -= buffer.capacity();
        Some(buffer)
    }

    /// Keeps `buffer`, emptied, unless it is too large or the pool full.
    fn push(&mut self, mut buffer: Vec<u8>) {
        let capacity = buffer.capacity();
        if capacity == 0 || capacity > MAX_KEPT_CAPACITY || self.bytes + capacity > MAX_KEPT_BYTES {
            return;
        }
        buffer.clear();
        self.bytes += capacity;
        self.free.push(buffer);
    }
}

/// The process's pool: ZeroMQ's threads give buffers back to it through
/// a C callback, which has no other way to find it.
static POOL: Mutex<Pool> = Mutex::new(Pool::new());

fn pool() -> std::sync::MutexGuard<'static, Pool> {
    // A pool left by a panic is still a list of empty buffers.
    POOL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What a new buffer starts with: most events fit.
const FRESH_CAPACITY: usize = 256;

/// An empty buffer: a kept one, or a new one of [`FRESH_CAPACITY`].
fn take() -> Vec<u8> {
    let reused = pool().pop();
    reused.unwrap_or_else(|| Vec::with_capacity(FRESH_CAPACITY))
}

/// Keeps `buffer` for a later event, or frees it (outside the lock).
fn give(buffer: Vec<u8>) {
    pool().push(buffer);
}

/// `event` encoded, in a buffer of the pool.
///
/// Not sized beforehand with [`Event::encoded_size_hint`]: its walk of the
/// arguments cost a fifth of encoding a call's reply, and a kept buffer
/// mostly has room already. One that has not grows as the event is
/// written, once for a large blob (its whole length is reserved at once).
pub(crate) fn encode(event: &Event) -> Vec<u8> {
    let mut buffer = take();
    event.encode_into(&mut buffer);
    buffer
}

/// Sends `head` (copied: an envelope and its delimiter, a few bytes), then
/// `payload` as the last frame, without a copy. A refused event is given
/// back whole, to be queued or failed.
pub(crate) fn send_event<'a>(
    socket: &mut zmq::Socket,
    head: impl Iterator<Item = &'a [u8]>,
    payload: Vec<u8>,
    flags: i32,
) -> Result<(), (zmq::Error, Vec<u8>)> {
    for frame in head {
        // ZeroMQ takes a message's later frames once it took its first.
        if let Err(e) = socket.send(frame, flags | zmq::SNDMORE) {
            return Err((e, payload));
        }
    }
    if payload.len() <= INLINE {
        let sent = socket.send(&payload[..], flags);
        return match sent {
            Ok(()) => {
                give(payload);
                Ok(())
            }
            Err(e) => Err((e, payload)),
        };
    }
    let mut message = match Lent::new(payload) {
        Ok(message) => message,
        Err(payload) => return socket.send(&payload[..], flags).map_err(|e| (e, payload)),
    };
    // SAFETY: both are live: the socket for this call, the message until
    // ZeroMQ takes it (on success) or it is dropped here.
    let rc = unsafe { zmq_sys::zmq_msg_send(&mut message.0, socket.as_mut_ptr(), flags) };
    if rc == -1 {
        // SAFETY: no arguments; reads this thread's errno as ZeroMQ set it.
        let error = zmq::Error::from_raw(unsafe { zmq_sys::zmq_errno() });
        return Err((error, message.copy_out()));
    }
    // ZeroMQ owns the data now; the message is empty.
    Ok(())
}

/// A ZeroMQ message whose data is a buffer of the pool: ZeroMQ calls
/// [`release`] when done with it, on whichever thread.
struct Lent(zmq_sys::zmq_msg_t);

impl Lent {
    /// A message lending `buffer`, or the buffer back if ZeroMQ cannot
    /// make one (out of memory).
    fn new(buffer: Vec<u8>) -> Result<Lent, Vec<u8>> {
        let mut buffer = std::mem::ManuallyDrop::new(buffer);
        let (data, len, capacity) = (buffer.as_mut_ptr(), buffer.len(), buffer.capacity());
        let mut message = zmq_sys::zmq_msg_t::default();
        // SAFETY: `data` is valid for `len` bytes until `release` gets it
        // back (with `capacity` as the hint) and rebuilds the vector.
        let rc = unsafe {
            zmq_sys::zmq_msg_init_data(
                &mut message,
                data.cast(),
                len,
                Some(release),
                capacity as *mut c_void,
            )
        };
        if rc == -1 {
            return Err(std::mem::ManuallyDrop::into_inner(buffer));
        }
        Ok(Lent(message))
    }

    /// A copy of the message's data, for an event ZeroMQ refused; the
    /// message goes back to the pool.
    fn copy_out(mut self) -> Vec<u8> {
        // SAFETY: the message is initialised and holds its data until it
        // is closed, when `self` is dropped.
        unsafe {
            let data = zmq_sys::zmq_msg_data(&mut self.0).cast::<u8>();
            let len = zmq_sys::zmq_msg_size(&self.0);
            std::slice::from_raw_parts(data, len).to_vec()
        }
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        // SAFETY: the message is initialised; closing a message that ZeroMQ
        // took (an empty one) is allowed, and releases nothing.
        unsafe {
            zmq_sys::zmq_msg_close(&mut self.0);
        }
    }
}

/// ZeroMQ is done with a lent buffer: back to the pool.
unsafe extern "C" fn release(data: *mut c_void, hint: *mut c_void) {
    // SAFETY: `data` and the capacity in `hint` are those of the vector
    // `Lent::new` lent, whose ownership ZeroMQ hands back exactly once.
    let buffer = unsafe { Vec::from_raw_parts(data.cast::<u8>(), 0, hint as usize) };
    give(buffer);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_keeps_buffers_up_to_its_bounds_and_hands_them_back_empty() {
        let mut pool = Pool::new();
        pool.push(vec![1; 100]);
        pool.push(Vec::with_capacity(MAX_KEPT_CAPACITY + 1));
        pool.push(Vec::new());
        assert_eq!(pool.free.len(), 1, "too large and empty ones are freed");
        let buffer = pool.pop().expect("the kept buffer");
        assert!(buffer.is_empty() && buffer.capacity() >= 100);
        assert_eq!(pool.bytes, 0);
        for _ in 0..MAX_KEPT_BYTES / MAX_KEPT_CAPACITY + 2 {
            pool.push(Vec::with_capacity(MAX_KEPT_CAPACITY));
        }
        assert!(pool.bytes <= MAX_KEPT_BYTES, "{} bytes kept", pool.bytes);
        assert_eq!(pool.free.len(), MAX_KEPT_BYTES / MAX_KEPT_CAPACITY);
    }

    #[test]
    fn a_lent_buffer_is_read_back_whole_when_zeromq_refuses_it() {
        let mut buffer = Vec::with_capacity(1000);
        buffer.extend((0..200).map(|i| i as u8));
        let message = Lent::new(buffer.clone()).expect("a message");
        assert_eq!(message.copy_out(), buffer);
    }

    #[test]
    fn an_event_sent_without_a_copy_arrives_whole_small_or_large() {
        let context = zmq::Context::new();
        let mut push = context.socket(zmq::PUSH).unwrap();
        let pull = context.socket(zmq::PULL).unwrap();
        pull.bind("inproc://lent").unwrap();
        push.connect("inproc://lent").unwrap();
        for size in [0, INLINE, INLINE + 1, 70_000] {
            let payload: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            let head: [&[u8]; 1] = [b"head"];
            send_event(&mut push, head.into_iter(), payload.clone(), 0)
                .map_err(|(e, _)| e)
                .expect("sent");
            let frames = pull.recv_multipart(0).unwrap();
            assert_eq!(frames, vec![b"head".to_vec(), payload], "{size} bytes");
        }
    }
}
