//! Handshakes ZeroMQ fails before asking the ZAP handler: a client with
//! another mechanism (none, PLAIN instead of CURVE) or the wrong server
//! key. libzmq reports them only to a socket monitor, with the peer's
//! address in its version 2 events; we watch secured server sockets so
//! that these refusals are logged and counted like the handler's.

use std::ffi::{CString, c_char, c_int, c_void};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use super::{AuthShared, Authenticator};
use crate::{Error, context};

unsafe extern "C" {
    // A DRAFT function of libzmq 4.3 (the workspace builds libzmq with the
    // DRAFT API: ARCHITECTURE.md, "libzmq build"); zmq-sys does not bind it.
    fn zmq_socket_monitor_versioned(
        socket: *mut c_void,
        endpoint: *const c_char,
        events: u64,
        event_version: c_int,
        kind: c_int,
    ) -> c_int;
}

const FAILED_NO_DETAIL: u64 = zmq_sys::ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL as u64;
const FAILED_PROTOCOL: u64 = zmq_sys::ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL as u64;
const STOPPED: u64 = zmq_sys::ZMQ_EVENT_MONITOR_STOPPED as u64;

/// libzmq's `ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC`: a CURVE box that
/// does not open, as when the client expects another server key.
const CRYPTOGRAPHIC: u64 = 0x1100_0001;
/// libzmq's `ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH`.
const MECHANISM_MISMATCH: u64 = 0x1100_0002;

/// Watches `socket`'s failed handshakes from a thread of its own, which
/// ends when the socket is closed; replaces an earlier watch of the same
/// socket (libzmq keeps one monitor per socket).
pub(crate) fn watch(socket: &mut zmq::Socket, auth: &Authenticator) -> Result<(), Error> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let endpoint = format!(
        "inproc://zerorpc-handshakes-{}",
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let reader = context()
        .socket(zmq::PAIR)
        .map_err(|e| Error::zmq("cannot create a handshake monitor", e))?;
    let name = CString::new(endpoint.as_str()).expect("no NUL in a generated endpoint");
    // SAFETY: `as_mut_ptr` is the live libzmq handle owned by `socket`,
    // exclusively borrowed for the call; `name` is a NUL-terminated string
    // that outlives it, and libzmq copies it.
    let rc = unsafe {
        zmq_socket_monitor_versioned(
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
        return Err(Error::zmq("cannot monitor handshakes", e));
    }
    reader
        .connect(&endpoint)
        .map_err(|e| Error::zmq("cannot connect the handshake monitor", e))?;
    let shared = Arc::downgrade(&auth.shared);
    std::thread::Builder::new()
        .name("zerorpc-handshakes".into())
        .spawn(move || read(&reader, &shared))
        .map_err(|e| Error::io("cannot start the handshake monitor's thread", e))?;
    Ok(())
}

/// Logs and counts each failed handshake until the monitor stops.
fn read(reader: &zmq::Socket, auth: &Weak<AuthShared>) {
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
        let Some(auth) = auth.upgrade() else { continue };
        auth.refused.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(peer = %peer, "authentication refused: {why}");
    }
}
