//! What libzmq tells only a socket monitor about the connections of a
//! socket that serves: handshakes it fails before asking the ZAP handler (a
//! client with another mechanism, none or PLAIN instead of CURVE, or the
//! wrong server key), and frames over the socket's size limit, for which
//! it drops the connection. libzmq 4.3.4 reports the second as a mere
//! disconnection; the workspace's libzmq (vendor/zeromq-src) first sends a
//! `HANDSHAKE_FAILED_PROTOCOL` event with a value of its own
//! (`zmq_sys::ZERORPC_PROTOCOL_ERROR_MESSAGE_TOO_LARGE`). Version 2 events
//! carry the peer's address, so that each refusal is logged with it and
//! counted.

use std::ffi::{CString, c_int};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use super::{AuthShared, Authenticator};
use crate::socket::Counters;
use crate::{Error, context};

const FAILED_NO_DETAIL: u64 = zmq_sys::ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL as u64;
const FAILED_PROTOCOL: u64 = zmq_sys::ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL as u64;
const STOPPED: u64 = zmq_sys::ZMQ_EVENT_MONITOR_STOPPED as u64;

/// libzmq's `ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC`: a CURVE box that
/// does not open, as when the client expects another server key.
const CRYPTOGRAPHIC: u64 = 0x1100_0001;
/// libzmq's `ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH`.
const MECHANISM_MISMATCH: u64 = 0x1100_0002;
const MESSAGE_TOO_LARGE: u64 = zmq_sys::ZERORPC_PROTOCOL_ERROR_MESSAGE_TOO_LARGE;

/// The monitor of one socket that serves: its own thread, which ends when
/// the socket is closed. libzmq keeps one monitor per socket, so a socket
/// has at most one, told of every authenticator its endpoints use.
pub(crate) struct ServedWatch {
    shared: Arc<Served>,
}

struct Served {
    /// The authenticator of the socket's secured endpoints, whose refusals
    /// are counted there.
    auth: Mutex<Option<Weak<AuthShared>>>,
    counters: Arc<Counters>,
    /// The size limit to name in the log (`u64::MAX`: none).
    limit: AtomicU64,
    /// Whether a connection dropped for its size has been logged: the
    /// first is, later ones are counted only.
    logged: AtomicBool,
}

impl ServedWatch {
    /// Starts monitoring `socket`, before it binds (or connects as a
    /// server of a mechanism); counts into `counters`.
    pub(crate) fn start(
        socket: &mut zmq::Socket,
        counters: Arc<Counters>,
    ) -> Result<ServedWatch, Error> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let endpoint = format!(
            "inproc://zerorpc-served-{}",
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let reader = context()
            .socket(zmq::PAIR)
            .map_err(|e| Error::zmq("cannot create a socket monitor", e))?;
        let name = CString::new(endpoint.as_str()).expect("no NUL in a generated endpoint");
        // SAFETY: `as_mut_ptr` is the live libzmq handle owned by `socket`,
        // exclusively borrowed for the call; `name` is a NUL-terminated
        // string that outlives it, and libzmq copies it.
        let rc = unsafe {
            zmq_sys::zmq_socket_monitor_versioned(
                socket.as_mut_ptr(),
                name.as_ptr(),
                FAILED_NO_DETAIL | FAILED_PROTOCOL | STOPPED,
                2,
                zmq::PAIR as c_int,
            )
        };
        if rc != 0 {
            // SAFETY: zmq_errno only reads the calling thread's errno.
            let e = zmq::Error::from_raw(unsafe { zmq_sys::zmq_errno() });
            return Err(Error::zmq("cannot monitor the socket", e));
        }
        reader
            .connect(&endpoint)
            .map_err(|e| Error::zmq("cannot connect the socket monitor", e))?;
        let shared = Arc::new(Served {
            auth: Mutex::new(None),
            counters,
            limit: AtomicU64::new(u64::MAX),
            logged: AtomicBool::new(false),
        });
        let thread_shared = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("zerorpc-monitor".into())
            .spawn(move || read(&reader, &thread_shared))
            .map_err(|e| Error::io("cannot start the socket monitor's thread", e))?;
        Ok(ServedWatch { shared })
    }

    /// Counts the refused handshakes of the socket's endpoints with `auth`.
    pub(crate) fn authenticate_with(&self, auth: &Authenticator) {
        *self.shared.auth.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(Arc::downgrade(&auth.shared));
    }

    /// The size limit of the endpoint bound last, for the log.
    pub(crate) fn set_limit(&self, limit: Option<u64>) {
        self.shared
            .limit
            .store(limit.unwrap_or(u64::MAX), Ordering::Relaxed);
    }
}

/// Logs and counts each event until the monitor stops.
fn read(reader: &zmq::Socket, served: &Served) {
    loop {
        let Ok(frames) = reader.recv_multipart(0) else {
            return;
        };
        let number = |frame: Option<&Vec<u8>>| {
            frame
                .and_then(|f| <[u8; 8]>::try_from(f.as_slice()).ok())
                .map(u64::from_ne_bytes)
        };
        let event = number(frames.first());
        if event == Some(STOPPED) {
            return;
        }
        let value = number(frames.get(2));
        let peer = frames
            .last()
            .map(|f| String::from_utf8_lossy(f).into_owned())
            .unwrap_or_default();
        if (event, value) == (Some(FAILED_PROTOCOL), Some(MESSAGE_TOO_LARGE)) {
            Counters::bump(&served.counters.connections_closed);
            if !served.logged.swap(true, Ordering::Relaxed) {
                let limit = match served.limit.load(Ordering::Relaxed) {
                    u64::MAX => "none".to_owned(),
                    n => format!("{n} bytes"),
                };
                tracing::warn!(
                    peer = %peer,
                    "ZeroMQ dropped the connection of {peer}: it sent a message over the size limit ({limit}); its calls through that connection are lost (further such drops are counted in the socket's stats, not logged)"
                );
            }
            continue;
        }
        let why = match (event, value) {
            (Some(FAILED_PROTOCOL), Some(MECHANISM_MISMATCH)) => {
                "the peer speaks another security mechanism".to_owned()
            }
            (Some(FAILED_PROTOCOL), Some(CRYPTOGRAPHIC)) => {
                "the CURVE handshake failed (the peer expects another server key)".to_owned()
            }
            (Some(FAILED_PROTOCOL), Some(code)) => format!("protocol error {code:#x}"),
            (_, code) => format!("handshake failed (error {})", code.unwrap_or_default()),
        };
        let auth = served
            .auth
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let Some(auth) = auth.and_then(|auth| auth.upgrade()) else {
            tracing::debug!(peer = %peer, "connection refused: {why}");
            continue;
        };
        auth.refused.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(peer = %peer, "authentication refused: {why}");
    }
}
