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

/// `zmq::poll` for a hub's two sockets, each with the events wanted of it:
/// which of them each has, waiting up to `timeout_ms` (-1: for ever) for
/// any. An empty answer before the timeout is possible (news that was
/// not an event wanted); the loop then simply turns again.
///
/// `zmq_poll` asks each socket for its events (each question a `poll` of
/// the socket's mailbox while it is idle), `poll`s their descriptors
/// without waiting, then waits, then asks each socket again. Here the
/// sockets are asked once before waiting, and after it only those whose
/// descriptor woke the wait: a socket whose `ZMQ_FD` stayed quiet got no
/// news, so its answer from before holds. Up to two system calls fewer per
/// wait: four per sequential call relayed, measured with strace.
pub(crate) fn poll_two(
    items: [(&zmq::Socket, zmq::PollEvents); 2],
    timeout_ms: i64,
) -> Result<[zmq::PollEvents; 2], zmq::Error> {
    let mut ready = [zmq::PollEvents::empty(); 2];
    for (ready, (socket, wanted)) in ready.iter_mut().zip(&items) {
        *ready = socket.get_events()? & *wanted;
    }
    if timeout_ms == 0 || ready.iter().any(|events| !events.is_empty()) {
        return Ok(ready);
    }
    let mut fds = [0, 1].map(|_| libc::pollfd {
        fd: -1,
        events: libc::POLLIN,
        revents: 0,
    });
    for (fd, (socket, _)) in fds.iter_mut().zip(&items) {
        fd.fd = socket.get_fd()?;
    }
    let timeout = if timeout_ms < 0 {
        -1
    } else {
        i32::try_from(timeout_ms).unwrap_or(i32::MAX)
    };
    // SAFETY: `fds` is a valid array of two pollfd structures, alive for
    // the call.
    if unsafe { libc::poll(fds.as_mut_ptr(), 2, timeout) } < 0 {
        let errno = std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EINTR);
        return Err(zmq::Error::from_raw(errno));
    }
    for ((ready, (socket, wanted)), fd) in ready.iter_mut().zip(&items).zip(&fds) {
        if fd.revents != 0 {
            *ready = socket.get_events()? & *wanted;
        }
    }
    Ok(ready)
}

/// Whether an error from a poll or a receive only means "try again".
pub(crate) fn is_transient(error: zmq::Error) -> bool {
    matches!(error, zmq::Error::EINTR | zmq::Error::EAGAIN)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    /// Two connected PAIR sockets over inproc, and a name for the pair.
    fn pair(context: &zmq::Context, name: &str) -> (zmq::Socket, zmq::Socket) {
        let endpoint = format!("inproc://{name}");
        let near = context.socket(zmq::PAIR).unwrap();
        near.bind(&endpoint).unwrap();
        let far = context.socket(zmq::PAIR).unwrap();
        far.connect(&endpoint).unwrap();
        (near, far)
    }

    #[test]
    fn poll_two_waits_out_its_timeout_when_nothing_comes_and_says_which_socket_has_a_message() {
        let context = zmq::Context::new();
        let (a, a_peer) = pair(&context, "poll-two-a");
        let (b, b_peer) = pair(&context, "poll-two-b");
        let started = Instant::now();
        let ready = poll_two([(&a, zmq::POLLIN), (&b, zmq::POLLIN)], 50).unwrap();
        assert_eq!(ready, [zmq::PollEvents::empty(); 2]);
        assert!(started.elapsed() >= Duration::from_millis(40));

        b_peer.send("hello", 0).unwrap();
        assert_eq!(first_news(&a, &b), [zmq::PollEvents::empty(), zmq::POLLIN]);
        assert_eq!(b.recv_bytes(0).unwrap(), b"hello");

        a_peer.send("again", 0).unwrap();
        assert_eq!(first_news(&a, &b), [zmq::POLLIN, zmq::PollEvents::empty()]);
    }

    /// What `poll_two` first reports of `a` and `b` readable. Bounded: a
    /// message is on its way through libzmq's pipes, and a wake-up on news
    /// that is no message answers empty.
    fn first_news(a: &zmq::Socket, b: &zmq::Socket) -> [zmq::PollEvents; 2] {
        for _ in 0..100 {
            let ready = poll_two([(a, zmq::POLLIN), (b, zmq::POLLIN)], 100).unwrap();
            if ready != [zmq::PollEvents::empty(); 2] {
                return ready;
            }
        }
        panic!("no message in 10 s");
    }

    #[test]
    fn poll_two_reports_only_the_events_asked_for_and_does_not_wait_for_a_zero_timeout() {
        let context = zmq::Context::new();
        let (a, _a_peer) = pair(&context, "poll-two-c");
        let (b, _b_peer) = pair(&context, "poll-two-d");
        // A connected PAIR can take a message: POLLOUT, when asked for.
        let ready = poll_two([(&a, zmq::POLLOUT), (&b, zmq::POLLIN)], 0).unwrap();
        assert_eq!(ready, [zmq::POLLOUT, zmq::PollEvents::empty()]);
        let started = Instant::now();
        let ready = poll_two([(&a, zmq::POLLIN), (&b, zmq::POLLIN)], 0).unwrap();
        assert_eq!(ready, [zmq::PollEvents::empty(); 2]);
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
