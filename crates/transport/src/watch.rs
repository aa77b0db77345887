//! Noticing a client connection that libzmq closed for good.
//!
//! libzmq closes a connection on a protocol error: a frame over the
//! socket's [`max_message_size`](crate::SocketConfig::max_message_size), a
//! malformed frame. On the connecting side it then never reconnects
//! (libzmq 4.3.4 ends the session), so every later call through that
//! connection would time out. Its socket monitor tells of the disconnection
//! but not of its reason; a disconnection libzmq will retry is followed at
//! once by `CONNECT_RETRIED`, from the same libzmq thread, while one it
//! ended for good is followed by nothing. A [`Watch`] tells them apart by
//! that, so that the I/O thread reconnects, counts and logs the second.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::socket::context;

/// How long a disconnection may wait for its retry before it counts as
/// final. libzmq announces the retry within microseconds; the margin is
/// for a loaded machine, and a wrong guess costs one early reconnection.
pub(crate) const GRACE: Duration = Duration::from_millis(500);

/// The monitor of one client DEALER.
pub(crate) struct Watch {
    monitor: zmq::Socket,
    /// Whether an event may wait: as `ZmqSocket::input_hint` for the
    /// socket, for a driven socket's turns.
    may_have_events: bool,
    /// When a disconnection not followed by a retry (yet) happened.
    since: Option<Instant>,
}

impl Watch {
    /// Starts monitoring `socket`'s disconnections and retries. Call it
    /// before the socket connects, and [`Watch::stop`] before it closes.
    pub(crate) fn new(socket: &zmq::Socket) -> Result<Watch, zmq::Error> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let address = format!(
            "inproc://zerorpc-watch-{}",
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let events =
            zmq::SocketEvent::DISCONNECTED as i32 | zmq::SocketEvent::CONNECT_RETRIED as i32;
        socket.monitor(&address, events)?;
        let monitor = context().socket(zmq::PAIR)?;
        monitor.set_linger(0)?;
        monitor.connect(&address)?;
        Ok(Watch {
            monitor,
            may_have_events: true,
            since: None,
        })
    }

    /// Stops the monitoring of `socket`. libzmq sends monitor events with
    /// a blocking send from its own threads: an event of the socket's
    /// closing, sent once this end is gone, would block them, and with
    /// them every socket of the context.
    pub(crate) fn stop(socket: &mut zmq::Socket) {
        // SAFETY: `as_mut_ptr` is the live libzmq handle owned by `socket`,
        // which the exclusive borrow keeps alive for the call; a null
        // endpoint is libzmq's documented way to stop monitoring.
        unsafe {
            zmq_sys::zmq_socket_monitor(socket.as_mut_ptr(), std::ptr::null(), 0);
        }
    }

    /// The monitor's `ZMQ_FD`, for a driver that waits through its own
    /// poller (see [`IoThread::notify_fds`](crate::io::IoThread::notify_fds)).
    pub(crate) fn notify_fd(&self) -> Result<std::os::fd::RawFd, zmq::Error> {
        self.monitor.get_fd()
    }

    /// Whether an event of the monitor waits to be read. If `hinted`,
    /// only asked of libzmq when the monitor may have news (see `hint`).
    pub(crate) fn readable(&self, hinted: bool) -> bool {
        (!hinted || self.may_have_events)
            && self
                .monitor
                .get_events()
                .is_ok_and(|events| events.contains(zmq::POLLIN))
    }

    /// The monitor's `ZMQ_FD` was readable, or libzmq may have processed
    /// its commands: read it at the next turn.
    pub(crate) fn hint(&mut self) {
        self.may_have_events = true;
    }

    /// Reads the events that arrived, and says whether a disconnection is
    /// now final: `GRACE` passed without a retry. Then forgets it.
    /// If `hinted`, reads only when the monitor may have news.
    pub(crate) fn closed_for_good(&mut self, now: Instant, hinted: bool) -> bool {
        // Bounded: libzmq sends one event per connection change.
        for _ in 0..64 {
            if hinted && !self.may_have_events {
                break;
            }
            let Ok(frames) = self.monitor.recv_multipart(zmq::DONTWAIT) else {
                self.may_have_events = false;
                break;
            };
            // Frame 1: the event (u16) and its value (u32), little-endian.
            let event = frames
                .first()
                .and_then(|f| f.get(..2))
                .map(|b| u16::from_le_bytes([b[0], b[1]]));
            match event {
                Some(e) if e == zmq::SocketEvent::DISCONNECTED as u16 => self.since = Some(now),
                Some(e) if e == zmq::SocketEvent::CONNECT_RETRIED as u16 => self.since = None,
                _ => {}
            }
        }
        match self.since {
            Some(at) if now.duration_since(at) >= GRACE => {
                self.since = None;
                true
            }
            _ => false,
        }
    }

    /// When [`closed_for_good`](Self::closed_for_good) must look again.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.since.map(|at| at + GRACE)
    }
}
