//! ZeroMQ plumbing shared by the hub loops: socket options the `zmq` crate
//! lacks, and non-blocking multipart receive.

use std::ffi::{CString, c_int, c_void};
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// libzmq's `ZMQ_ROUTER_NOTIFY` (a DRAFT option, compiled in because the
/// workspace builds libzmq with `ZMQ_BUILD_DRAFT_API`).
const ZMQ_ROUTER_NOTIFY: c_int = 97;
/// Deliver `[peer_id, ""]` when a peer connects.
const ZMQ_NOTIFY_CONNECT: c_int = 1;
/// Deliver `[peer_id, ""]` when a peer disconnects.
const ZMQ_NOTIFY_DISCONNECT: c_int = 2;

/// Asks a ROUTER socket to report its peers' connections and disconnections
/// as two-frame messages `[peer_id, ""]`.
///
/// This is how the queue learns its workers: they are ROUTERs that connect
/// to it and never speak first, and it is how it notices a dead worker
/// without waiting for heartbeats.
pub(crate) fn set_router_notify(socket: &mut zmq::Socket) -> Result<(), zmq::Error> {
    set_int_option(
        socket,
        ZMQ_ROUTER_NOTIFY,
        ZMQ_NOTIFY_CONNECT | ZMQ_NOTIFY_DISCONNECT,
    )
}

/// Asks a ROUTER socket which peers it is connected with.
///
/// A ROUTER_NOTIFY notification is `[peer_id, ""]`, which a peer can also
/// send itself; this tells a peer that really left (no connection any
/// more, once libzmq has finished closing it) from one that only said so.
pub(crate) struct Peers<'a> {
    raw: *mut c_void,
    _socket: PhantomData<&'a zmq::Socket>,
}

impl<'a> Peers<'a> {
    /// Returns the prober and the socket, which stays usable alongside.
    pub(crate) fn of(socket: &'a mut zmq::Socket) -> (Peers<'a>, &'a zmq::Socket) {
        let raw = socket.as_mut_ptr();
        (
            Peers {
                raw,
                _socket: PhantomData,
            },
            socket,
        )
    }

    /// Whether the socket has a connection with `peer` now.
    pub(crate) fn is_connected(&self, peer: &[u8]) -> bool {
        // SAFETY: `raw` is the libzmq handle of the socket borrowed for 'a,
        // so it is open; the hub uses it from this thread only. The routing
        // id pointer and length describe `peer`, which libzmq only reads
        // during the call.
        let rc = unsafe {
            zmq_sys::zmq_socket_get_peer_state(self.raw, peer.as_ptr().cast(), peer.len())
        };
        rc >= 0
    }
}

const FAILED_PROTOCOL: u64 = zmq_sys::ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL as u64;
const MONITOR_STOPPED: u64 = zmq_sys::ZMQ_EVENT_MONITOR_STOPPED as u64;
const MESSAGE_TOO_LARGE: u64 = zmq_sys::ZERORPC_PROTOCOL_ERROR_MESSAGE_TOO_LARGE;

/// Counts, in `closed`, the connections of `socket` that libzmq drops for
/// a frame over its size limit, and logs the first with the peer's
/// address, from a thread that ends when the socket is closed. Call it
/// before the socket binds.
pub(crate) fn watch_oversized(
    socket: &mut zmq::Socket,
    context: &zmq::Context,
    what: String,
    closed: Arc<AtomicU64>,
    logged: Arc<AtomicBool>,
) -> Result<(), zmq::Error> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let endpoint = format!(
        "inproc://zerorpc-hub-monitor-{}",
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let reader = context.socket(zmq::PAIR)?;
    let name = CString::new(endpoint.as_str()).expect("no NUL in a generated endpoint");
    // SAFETY: `as_mut_ptr` is the live libzmq handle owned by `socket`,
    // exclusively borrowed for the call; `name` is a NUL-terminated string
    // that outlives it, and libzmq copies it.
    let rc = unsafe {
        zmq_sys::zmq_socket_monitor_versioned(
            socket.as_mut_ptr(),
            name.as_ptr(),
            FAILED_PROTOCOL | MONITOR_STOPPED,
            2,
            zmq::PAIR as c_int,
        )
    };
    if rc != 0 {
        // SAFETY: zmq_errno only reads the calling thread's errno.
        return Err(zmq::Error::from_raw(unsafe { zmq_sys::zmq_errno() }));
    }
    reader.connect(&endpoint)?;
    std::thread::Builder::new()
        .name("zerorpc-hub-monitor".into())
        .spawn(move || {
            // Bounded by the socket's life: libzmq ends with MONITOR_STOPPED.
            while let Ok(frames) = reader.recv_multipart(0) {
                let number = |i: usize| {
                    frames
                        .get(i)
                        .and_then(|f| <[u8; 8]>::try_from(f.as_slice()).ok())
                        .map(u64::from_ne_bytes)
                };
                match (number(0), number(2)) {
                    (Some(MONITOR_STOPPED), _) => return,
                    (Some(FAILED_PROTOCOL), Some(MESSAGE_TOO_LARGE)) => {
                        closed.fetch_add(1, Ordering::Relaxed);
                        if !logged.swap(true, Ordering::Relaxed) {
                            let peer = frames
                                .last()
                                .map(|f| String::from_utf8_lossy(f).into_owned())
                                .unwrap_or_default();
                            tracing::warn!(
                                "{what}: ZeroMQ dropped the connection of {peer}: it sent a message over max_message_size (further such drops are counted in the stats' connections_closed, not logged)"
                            );
                        }
                    }
                    _ => {}
                }
            }
        })
        .map_err(|_| zmq::Error::EMFILE)?;
    Ok(())
}

/// Makes an XPUB socket refuse a send with `EAGAIN` when a subscriber's
/// pipe is full, instead of dropping the message for that subscriber.
///
/// This is what lets the forwarder hold an event and apply back-pressure
/// rather than lose events silently.
pub(crate) fn set_xpub_nodrop(socket: &mut zmq::Socket) -> Result<(), zmq::Error> {
    // The constant is in zmq-sys, but the `zmq` crate has no setter.
    set_int_option(socket, zmq_sys::ZMQ_XPUB_NODROP as c_int, 1)
}

/// Sets an integer socket option the `zmq` crate has no setter for.
pub(crate) fn set_int_option(
    socket: &mut zmq::Socket,
    option: c_int,
    value: c_int,
) -> Result<(), zmq::Error> {
    // SAFETY: `as_mut_ptr` is the live libzmq handle owned by `socket`, which
    // the exclusive borrow keeps alive and unshared for the whole call. The
    // value pointer and length describe `value`, a c_int on this stack frame;
    // libzmq copies it before returning and keeps no pointer to it.
    let rc = unsafe {
        zmq_sys::zmq_setsockopt(
            socket.as_mut_ptr(),
            option,
            (&raw const value).cast::<c_void>(),
            size_of::<c_int>(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        // SAFETY: zmq_errno only reads the calling thread's errno.
        Err(zmq::Error::from_raw(unsafe { zmq_sys::zmq_errno() }))
    }
}

/// Frames kept per message; more is no ZeroRPC message, and keeping them
/// all would let a peer make the hub allocate without bound.
pub(crate) const MAX_FRAMES: usize = 32;

/// Receives one whole multipart message without blocking.
///
/// Returns `Ok(None)` when nothing is waiting, `Ok(Some(too_many))` when a
/// message is in `frames`; `too_many` says that frames beyond
/// [`MAX_FRAMES`] were read and discarded.
pub(crate) fn recv_frames(
    socket: &zmq::Socket,
    frames: &mut Vec<zmq::Message>,
) -> Result<Option<bool>, zmq::Error> {
    frames.clear();
    let mut more = match socket.recv_msg(zmq::DONTWAIT) {
        Ok(first) => {
            // The frame's own flag: no getsockopt call per frame.
            let more = first.get_more();
            frames.push(first);
            more
        }
        Err(zmq::Error::EAGAIN) => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut too_many = false;
    // libzmq delivers multipart messages atomically: once the first frame is
    // here, the rest are too, so these reads never wait.
    while more {
        let frame = socket.recv_msg(0)?;
        more = frame.get_more();
        if frames.len() < MAX_FRAMES {
            frames.push(frame);
        } else {
            too_many = true;
        }
    }
    Ok(Some(too_many))
}

/// Whether an error from a poll or a receive only means "try again".
pub(crate) fn is_transient(error: zmq::Error) -> bool {
    matches!(error, zmq::Error::EINTR | zmq::Error::EAGAIN)
}
