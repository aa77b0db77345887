//! A socket whose I/O the application drives ([`Socket::driven`]), on an
//! executor's reactor for instance, instead of an I/O thread of ours.
//!
//! The driver runs the same turns as the I/O thread; only the waiting is
//! left to its owner. Where the thread blocks in `poll` on the same
//! descriptors and its wake-up pipe, the owner waits for any of
//! [`SocketDriver::notify_fds`] to be readable, or for its waker
//! ([`SocketDriver::register`]). Code that uses the socket on
//! the driver's own thread then needs no thread hand-off: a call made by
//! a task of a runtime driving the socket is sent, and its reply is
//! delivered, on the same thread.
//!
//! libzmq's `ZMQ_FD` says that libzmq has news for a socket, not that a
//! message waits, and a send may consume the news that messages arrived.
//! So a turn that leaves the driver [`Idle`](Turn::Idle) has asked each
//! socket that may have news (told [`readable`](SocketDriver::readable),
//! or used since it was last read empty) whether it can read, or send
//! what waits, right now; and the owner must clear the readiness it saw,
//! and tell the driver of it, before the turn that follows.
//!
//! [`Socket::driven`]: crate::Socket::driven

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Waker;
use std::time::Instant;

use crate::Error;
use crate::io::{IoThread, Wait};
use crate::socket::Wake;

/// The I/O of a [driven](crate::Socket::driven) socket: turn it whenever
/// one of its [descriptors](SocketDriver::notify_fds) is readable or its
/// waker is woken, until [`Turn::Stopped`]. Or [`run`](SocketDriver::run)
/// it on a thread.
///
/// ```
/// use zerorpc_transport::{Socket, SocketConfig, SocketKind, Turn};
///
/// let (server, mut driver) =
///     Socket::driven(SocketKind::Server, SocketConfig::new(), |wait| wait())?;
/// // Handled at the driver's next turn.
/// drop(server);
/// let mut fds = Vec::new();
/// for _ in 0..10 {
///     match driver.turn() {
///         Turn::Stopped => break,
///         Turn::Idle => {
///             fds.clear();
///             driver.notify_fds(&mut fds);
///             let mut polled: Vec<libc::pollfd> = fds
///                 .iter()
///                 .map(|notify| libc::pollfd { fd: notify.fd, events: libc::POLLIN, revents: 0 })
///                 .collect();
///             // An executor would also wake for the waker given to
///             // `driver.register`.
///             unsafe { libc::poll(polled.as_mut_ptr(), polled.len() as libc::nfds_t, 100) };
///             for (notify, polled) in fds.iter().zip(&polled) {
///                 if polled.revents & libc::POLLIN != 0 {
///                     driver.readable(notify.key);
///                 }
///             }
///         }
///         _ => continue,
///     }
/// }
/// # Ok::<(), zerorpc_transport::Error>(())
/// ```
pub struct SocketDriver {
    io: Option<IoThread>,
    timer: Timer,
}

/// What a [`SocketDriver`] may do after a turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Turn {
    /// Turn again soon: a socket had more to deliver or to send. Yield to
    /// other work now and then.
    Busy,
    /// Wait until a descriptor is readable or the waker is woken.
    Idle,
    /// The socket is shut down, its channels failed: stop driving it.
    Stopped,
}

/// A descriptor a [`SocketDriver`] waits on, readable when the driver must
/// turn. `key` names what it belongs to: it stays the same while the
/// descriptor is the same one, and is never reused for another, so that
/// an owner can tell a new descriptor from an old number reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotifyFd {
    /// What the descriptor belongs to.
    pub key: u64,
    /// The descriptor, owned by the driver: register a duplicate of it
    /// with a reactor, so that the registration ends before it is closed.
    pub fd: RawFd,
}

impl SocketDriver {
    pub(crate) fn new(mut io: IoThread) -> Result<SocketDriver, Error> {
        io.set_hinted();
        let timer = Timer::new().map_err(|e| Error::io("cannot create the driver's timer", e))?;
        Ok(SocketDriver {
            io: Some(io),
            timer,
        })
    }

    /// Takes the commands of the socket's handles, sends, receives, runs
    /// the timers. Never blocks.
    pub fn turn(&mut self) -> Turn {
        let Some(io) = self.io.as_mut() else {
            return Turn::Stopped;
        };
        self.timer.expire();
        match io.turn() {
            None => {
                if let Some(io) = self.io.take() {
                    io.finish();
                }
                Turn::Stopped
            }
            Some(Wait::Busy) => Turn::Busy,
            Some(Wait::Until(until)) => {
                if io.ready_now() {
                    return Turn::Busy;
                }
                if let Some(until) = until {
                    self.timer.arm(until);
                }
                Turn::Idle
            }
        }
    }

    /// A number that changes whenever [`notify_fds`](Self::notify_fds)
    /// may give another list: an owner that kept the list need not ask
    /// for it again (each descriptor is a question to libzmq) while this
    /// stays the same.
    pub fn notify_fds_version(&self) -> u64 {
        self.io
            .as_ref()
            .map_or(u64::MAX, IoThread::notify_fds_version)
    }

    /// Appends the descriptors to wait on to `fds`: the driver's timer
    /// (key 0) and libzmq's for each of its ZeroMQ sockets. They change
    /// as endpoints are connected and disconnected (see
    /// [`notify_fds_version`](Self::notify_fds_version)).
    pub fn notify_fds(&self, fds: &mut Vec<NotifyFd>) {
        fds.push(NotifyFd {
            key: 0,
            fd: self.timer.fd.as_raw_fd(),
        });
        if let Some(io) = &self.io {
            io.notify_fds(fds);
        }
    }

    /// Tells the driver that the descriptor of `key` (see
    /// [`notify_fds`](Self::notify_fds)) was readable. Before each turn,
    /// the owner must tell it of every descriptor it saw readable: a turn
    /// reads only the ZeroMQ sockets that may have news, since reading one
    /// that has none costs libzmq a system call.
    pub fn readable(&mut self, key: u64) {
        if let Some(io) = &mut self.io {
            io.mark_readable(key);
        }
    }

    /// Makes `waker` the one woken when a handle gives the socket a
    /// command. True if a command already waits: turn without waiting.
    pub fn register(&self, waker: &Waker) -> bool {
        self.io.as_ref().is_none_or(|io| io.wake().register(waker))
    }

    /// Where the waker of [`register`](Self::register) goes, usable
    /// without the driver: by an owner that shares the driver under a
    /// lock it does not hold while it waits. `None` once stopped.
    pub fn waker_slot(&self) -> Option<WakerSlot> {
        self.io.as_ref().map(|io| WakerSlot(io.wake().clone()))
    }

    /// Drives the socket on this thread until it shuts down, as
    /// [`Socket::new`](crate::Socket::new)'s I/O thread does; for an owner
    /// that can no longer drive it (its runtime is shutting down).
    pub fn run(mut self) {
        if let Some(io) = self.io.take() {
            io.run();
        }
    }

    /// Whether the socket is shut down and its driver has nothing left to
    /// do.
    pub fn is_stopped(&self) -> bool {
        self.io.is_none()
    }
}

/// See [`SocketDriver::waker_slot`].
#[derive(Clone)]
pub struct WakerSlot(Arc<Wake>);

impl WakerSlot {
    /// As [`SocketDriver::register`].
    pub fn register(&self, waker: &Waker) -> bool {
        self.0.register(waker)
    }

    /// Whether commands wait for the driver: its task was woken for them
    /// and has not turned since.
    pub fn commands_waiting(&self) -> bool {
        self.0.pending.load(Ordering::Acquire)
    }
}

impl std::fmt::Debug for WakerSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WakerSlot").finish_non_exhaustive()
    }
}

/// A timerfd: readable at the machine's next deadline.
struct Timer {
    fd: OwnedFd,
    /// When it is set to fire, if it has not fired since.
    armed: Option<Instant>,
}

impl Timer {
    fn new() -> io::Result<Timer> {
        // SAFETY: a plain system call; the result is checked.
        let fd = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Timer {
            // SAFETY: a descriptor just created, owned by nothing else.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            armed: None,
        })
    }

    /// Makes sure the timer fires by `until`. A later deadline leaves an
    /// earlier setting alone: firing early costs one spare turn, and saves
    /// a system call per wait while calls come and go.
    fn arm(&mut self, until: Instant) {
        if self.armed.is_some_and(|armed| armed <= until) {
            return;
        }
        let wait = until.saturating_duration_since(Instant::now());
        // A zero it_value would disarm it: a nanosecond instead.
        let nanos = wait.subsec_nanos().max(u32::from(wait.as_secs() == 0));
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: libc::time_t::try_from(wait.as_secs()).unwrap_or(libc::time_t::MAX),
                tv_nsec: libc::c_long::from(nanos),
            },
        };
        // SAFETY: a live timerfd and a valid itimerspec; the old setting is
        // not asked for.
        let set =
            unsafe { libc::timerfd_settime(self.fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
        if set == 0 {
            self.armed = Some(until);
        }
    }

    /// Once its time has passed, reads the expiry, so that the descriptor
    /// is quiet until set again (an edge-triggered reactor would not tell
    /// of it twice).
    fn expire(&mut self) {
        if self.armed.is_some_and(|armed| armed <= Instant::now()) {
            let mut expirations = [0u8; 8];
            // SAFETY: reads at most 8 bytes into a buffer of 8; a timer not
            // expired yet (a coarser clock) just says EAGAIN.
            let read = unsafe {
                libc::read(
                    self.fd.as_raw_fd(),
                    expirations.as_mut_ptr().cast(),
                    expirations.len(),
                )
            };
            if read == 8 {
                self.armed = None;
            }
        }
    }
}
