//! Sockets driven by a task of the tokio runtime they are made on, instead
//! of an I/O thread of their own (see [`ClientBuilder::io_thread`]).
//!
//! A call made by a task of that runtime then costs no thread hand-off:
//! the caller wakes the driving task on its own worker, which sends; the
//! reply wakes the driving task through the reactor, and it wakes the
//! caller, again on one worker. On the benchmark machine that took a
//! sequential call from 133 to 114 µs, and a call to an async method from
//! 202 to 174 µs (docs/benchmarks.md).
//!
//! The task shares its driver, under a mutex it holds only while it turns,
//! with the rescuer: one thread per process that turns the sockets whose
//! task has been still for a while, so that heartbeats flow even when no
//! worker can run the task.
//!
//! [`ClientBuilder::io_thread`]: crate::ClientBuilder::io_thread

use std::future::poll_fn;
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd, RawFd};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Once, OnceLock, TryLockError, Weak};
use std::task::Poll;
use std::time::Duration;

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::runtime::{Handle, RuntimeFlavor};
use zerorpc_transport::{
    NotifyFd, Socket, SocketConfig, SocketDriver, SocketKind, Turn, WakerSlot,
};

use crate::Result;
use crate::gauge::Gauge;

/// Turns a busy driving task takes in a row before it lets the worker's
/// other tasks run (a yield costs a look at the reactor).
const EAGER_TURNS: u32 = 16;

/// The multi-thread runtime this thread is in, if any: the only kind a
/// task can drive a socket on, since a blocking wait on a current-thread
/// runtime's one thread would stop the socket with it.
pub(crate) fn multi_thread_runtime() -> Option<Handle> {
    Handle::try_current()
        .ok()
        .filter(|runtime| runtime.runtime_flavor() == RuntimeFlavor::MultiThread)
}

/// A socket with a thread of its own if `io_thread`, or outside a
/// multi-thread runtime; else driven by a task of the runtime (see
/// [`socket_on`]). A server gives the calls it serves in tasks (see
/// [`Driven::serving`]).
pub(crate) fn socket(
    kind: SocketKind,
    config: SocketConfig,
    io_thread: bool,
    serving: Option<Gauge>,
) -> Result<Socket> {
    let runtime = if io_thread {
        None
    } else {
        multi_thread_runtime()
    };
    match runtime {
        Some(runtime) => socket_on(&runtime, kind, config, serving),
        None => Ok(Socket::new(kind, config)?),
    }
}

/// A socket driven by a task on `runtime`; by a thread of its own if the
/// runtime cannot (its I/O is not enabled), or once the runtime is gone.
fn socket_on(
    runtime: &Handle,
    kind: SocketKind,
    config: SocketConfig,
    serving: Option<Gauge>,
) -> Result<Socket> {
    let (socket, driver) = Socket::driven(kind, config, block_in_worker_hook)?;
    let Some(slot) = driver.waker_slot() else {
        return Ok(socket);
    };
    let shared = Arc::new(Shared {
        driver: Mutex::new(Some(driver)),
        slot,
        turns: AtomicU64::new(0),
    });
    rescuer().watch(&shared);
    runtime.spawn(Driven { shared, serving }.drive());
    Ok(socket)
}

/// A driver shared by its task and the rescuer.
struct Shared {
    /// `None` once the socket stopped, or a thread took it over.
    driver: Mutex<Option<SocketDriver>>,
    slot: WakerSlot,
    /// How many times the task has turned the socket.
    turns: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Option<SocketDriver>> {
        // A turn that panicked left the driver as consistent as a thread
        // would have: carry on.
        self.driver.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// How often the rescuer looks at the driven sockets. A task woken for
/// commands that has not turned by the next look, one to two periods
/// later, is stuck: far longer than a worker takes to get to a woken task
/// (microseconds), yet a short stall for the calls behind it.
const LOOK_EVERY: Duration = Duration::from_millis(50);

/// How many looks a task must have been still for before the rescuer
/// turns its socket (an idle socket's task is still too: its turn then
/// finds nothing to do): 200 ms, far below the heartbeat interval (5 s by
/// default; a peer is lost after two), and rare enough to cost nothing.
const RESCUE_AFTER_LOOKS: u32 = 4;

/// Keeps the sockets whose driving task cannot run going: every worker
/// of its runtime blocked, or the task queued in the LIFO slot of a worker
/// that a task blocks (no other worker takes a task from there; a task
/// that wakes the driving task, by making a call or answering one, puts
/// it there). Heartbeats and calls must flow whatever the application's
/// code does (PROTOCOL.md §5.6).
///
/// A task woken for commands and still not turned at the next look is
/// stuck, and its socket gets a thread of its own for good: a runtime
/// whose tasks block its workers has shown that it cannot drive it. A
/// task still for a while with nothing waiting may just be idle, and the
/// rescuer turns its socket itself (reading what came, heartbeating)
/// until the task turns again. One thread for the process, started with
/// the first driven socket.
struct Rescuer {
    /// Sockets made since the rescuer's last look, which it moves to the
    /// list it keeps (with what it saw of each) on its own thread.
    new_sockets: Mutex<Vec<Weak<Shared>>>,
}

fn rescuer() -> &'static Rescuer {
    static RESCUER: OnceLock<Rescuer> = OnceLock::new();
    static STARTED: Once = Once::new();
    let rescuer = RESCUER.get_or_init(|| Rescuer {
        new_sockets: Mutex::new(Vec::new()),
    });
    STARTED.call_once(|| {
        let started = std::thread::Builder::new()
            .name("zerorpc-rescue".into())
            .spawn(|| rescue_loop(rescuer));
        if let Err(e) = started {
            tracing::warn!("cannot start the thread that keeps stalled sockets' heartbeats: {e}");
        }
    });
    rescuer
}

impl Rescuer {
    fn watch(&self, shared: &Arc<Shared>) {
        let mut new_sockets = self.new_sockets.lock().unwrap_or_else(|e| e.into_inner());
        // Bounded without a rescuer thread too (one that could not start
        // never takes them), at a cost amortized over the pushes.
        if new_sockets.len() == new_sockets.capacity() {
            new_sockets.retain(|socket| socket.strong_count() > 0);
        }
        new_sockets.push(Arc::downgrade(shared));
    }

    /// Takes the sockets made since the last call.
    fn take_new(&self, into: &mut Vec<Seen>) {
        let mut new_sockets = self.new_sockets.lock().unwrap_or_else(|e| e.into_inner());
        into.extend(new_sockets.drain(..).map(|socket| Seen {
            socket,
            turns: u64::MAX,
            still: 0,
            waiting: false,
        }));
    }
}

/// What the rescuer saw of a socket at its last look.
struct Seen {
    socket: Weak<Shared>,
    turns: u64,
    /// Looks since the task last turned.
    still: u32,
    waiting: bool,
}

fn rescue_loop(rescuer: &'static Rescuer) {
    let mut fds = Vec::new();
    let mut seen: Vec<Seen> = Vec::new();
    loop {
        std::thread::sleep(LOOK_EVERY);
        rescuer.take_new(&mut seen);
        seen.retain_mut(|seen| match seen.socket.upgrade() {
            Some(shared) => {
                look(seen, &shared, &mut fds);
                true
            }
            None => false,
        });
    }
}

/// Looks at one driven socket; takes it over or turns it if its task is
/// stuck or still.
fn look(seen: &mut Seen, shared: &Shared, fds: &mut Vec<NotifyFd>) {
    // Read before the turns: a wake-up the task has not turned for since.
    let waiting = shared.slot.commands_waiting();
    let turns = shared.turns.load(Ordering::Acquire);
    if turns != seen.turns {
        seen.turns = turns;
        seen.still = 0;
        seen.waiting = waiting;
        return;
    }
    seen.still += 1;
    let stuck = waiting && seen.waiting;
    seen.waiting = waiting;
    if !stuck && seen.still < RESCUE_AFTER_LOOKS {
        return;
    }
    // A task about to turn holds the lock: it is not stuck.
    let mut guard = match shared.driver.try_lock() {
        Ok(guard) => guard,
        Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
        Err(TryLockError::WouldBlock) => return,
    };
    if stuck {
        let Some(driver) = guard.take() else { return };
        tracing::warn!(
            "a socket's driving task was woken and could not run for {} ms or more (a task \
             blocking a worker of its runtime?): a thread drives the socket from now on",
            LOOK_EVERY.as_millis()
        );
        run_on_thread(driver);
        return;
    }
    if let Some(driver) = guard.as_mut() {
        seen.still = 0;
        rescue(driver, fds);
    }
}

/// Turns `driver` as its task would, reading every socket: a turn of a
/// socket with nothing to do costs a few system calls, and reading only
/// what the reactor said was readable is the task's privilege.
fn rescue(driver: &mut SocketDriver, fds: &mut Vec<NotifyFd>) {
    fds.clear();
    driver.notify_fds(fds);
    for fd in fds.iter() {
        driver.readable(fd.key);
    }
    // Bounded: a socket busy for longer is left to the next round.
    for _ in 0..64 {
        if driver.turn() != Turn::Busy {
            break;
        }
    }
}

/// Runs `wait`, which blocks the thread until a socket's driver answers.
/// On a worker of a multi-thread runtime it goes through
/// [`tokio::task::block_in_place`], so that what the worker has queued, a
/// socket's driving task among it, runs on another thread meanwhile.
pub(crate) fn block_in_worker<T>(wait: impl FnOnce() -> T) -> T {
    if multi_thread_runtime().is_none() {
        return wait();
    }
    // tokio refuses (by panicking, before it runs `wait`) where blocking
    // is not its to arrange, in a `LocalSet` for instance: then just wait.
    let mut slot = Some(wait);
    let waited = std::panic::catch_unwind(AssertUnwindSafe(|| {
        tokio::task::block_in_place(|| slot.take().map(|wait| wait()))
    }));
    match (waited, slot) {
        (Ok(Some(value)), _) => value,
        (_, Some(wait)) => wait(),
        (Err(panic), None) => std::panic::resume_unwind(panic),
        (Ok(None), None) => unreachable!("`block_in_place` ran the wait it was given"),
    }
}

fn block_in_worker_hook(wait: &mut dyn FnMut()) {
    block_in_worker(wait);
}

/// A duplicate of `fd`, owned here, so that its registration with the
/// reactor ends before it is closed, whenever the driver closes its own.
fn duplicate(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: `fd` is a live descriptor of the driver, open during this
    // call; the duplicate is a new descriptor of our own.
    unsafe { BorrowedFd::borrow_raw(fd) }.try_clone_to_owned()
}

/// Registers a descriptor owned by `fd` with the current runtime's reactor.
fn watch(fd: OwnedFd) -> io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: `fd` owns its descriptor, which therefore stays open and the
    // same until the registration, which owns `fd`, is dropped.
    unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }.map_err(|e| e.into_parts().1)
}

fn run_on_thread(driver: SocketDriver) {
    let started = std::thread::Builder::new()
        .name("zerorpc-io".into())
        .spawn(move || driver.run());
    if let Err(e) = started {
        tracing::error!("no thread could take over a socket's I/O, its calls will time out: {e}");
    }
}

/// The driving task's state. If the task is dropped while the socket is
/// open (its runtime shuts down, or it panicked), a thread takes over.
struct Driven {
    shared: Arc<Shared>,
    /// A server's calls served in tasks of the runtime now. A task's reply
    /// wakes the driving task on the task's own worker, which runs it next
    /// (tokio's LIFO slot): one turn per reply, each with its system
    /// calls, while other calls' tasks wait behind it. So the driving task,
    /// woken by a reply while other calls are being served, lets them run
    /// first and sends their replies in one turn (100 async calls in
    /// flight: 131,000 -> 149,000 calls/s); woken with none left, it turns
    /// at once, which keeps a lone call's latency.
    serving: Option<Gauge>,
}

impl Drop for Driven {
    fn drop(&mut self) {
        if let Some(driver) = self.shared.lock().take() {
            if !driver.is_stopped() {
                run_on_thread(driver);
            }
        }
    }
}

impl Driven {
    async fn drive(self) {
        let mut fds: Vec<NotifyFd> = Vec::new();
        let mut fds_version = None;
        let mut watched: Vec<(u64, AsyncFd<OwnedFd>)> = Vec::new();
        let mut readable: Vec<u64> = Vec::new();
        let mut eager = 0;
        // Only this task counts its turns: a store, not a locked add.
        let mut turns: u64 = 0;
        loop {
            let turned = {
                let mut guard = self.shared.lock();
                let Some(driver) = guard.as_mut() else { return };
                for key in readable.drain(..) {
                    driver.readable(key);
                }
                let turned = driver.turn();
                let version = driver.notify_fds_version();
                if turned == Turn::Idle && fds_version != Some(version) {
                    fds.clear();
                    driver.notify_fds(&mut fds);
                    fds_version = Some(version);
                }
                turned
            };
            turns += 1;
            self.shared.turns.store(turns, Ordering::Release);
            match turned {
                Turn::Busy => {
                    eager += 1;
                    if eager % EAGER_TURNS == 0 {
                        tokio::task::yield_now().await;
                    }
                    continue;
                }
                Turn::Idle => eager = 0,
                _ => return,
            }
            // tokio says that a runtime has no I/O driver only by panicking.
            match std::panic::catch_unwind(AssertUnwindSafe(|| rewatch(&fds, &mut watched))) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::warn!(
                        "cannot watch a socket from the runtime, a thread drives it: {e}"
                    );
                    return;
                }
                Err(_) => {
                    tracing::warn!("the runtime has no I/O driver: a thread drives the socket");
                    return;
                }
            }
            let (watched, woken_by, slot) = (&watched, &mut readable, &self.shared.slot);
            let waited = poll_fn(move |cx| {
                let readable = &mut *woken_by;
                let mut ready = slot.register(cx.waker());
                for (key, fd) in watched {
                    match fd.poll_read_ready(cx) {
                        Poll::Ready(Ok(mut guard)) => {
                            guard.clear_ready();
                            readable.push(*key);
                            ready = true;
                        }
                        Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                        Poll::Pending => {}
                    }
                }
                if ready {
                    Poll::Ready(Ok(()))
                } else {
                    Poll::Pending
                }
            })
            .await;
            if let Err(e) = waited {
                // The reactor is going: the runtime shuts down.
                tracing::debug!("the runtime's reactor failed, a thread drives the socket: {e}");
                return;
            }
            // Woken by a command, not by the network: see `serving`.
            if readable.is_empty() && self.serving.as_ref().is_some_and(Gauge::any) {
                tokio::task::yield_now().await;
            }
        }
    }
}

/// Watches exactly `fds`, in their order: keeps the registrations of
/// those already watched (same key), registers the new ones, drops the
/// rest.
fn rewatch(fds: &[NotifyFd], watched: &mut Vec<(u64, AsyncFd<OwnedFd>)>) -> io::Result<()> {
    let same = fds.len() == watched.len()
        && fds
            .iter()
            .zip(watched.iter())
            .all(|(fd, (key, _))| fd.key == *key);
    if same {
        return Ok(());
    }
    let mut previous = std::mem::take(watched);
    for fd in fds {
        let registration = match previous.iter().position(|(key, _)| *key == fd.key) {
            Some(at) => previous.swap_remove(at).1,
            None => watch(duplicate(fd.fd)?)?,
        };
        watched.push((fd.key, registration));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rescuers_hand_over_list_stays_bounded_while_sockets_come_and_go() {
        let (_socket, driver) =
            Socket::driven(SocketKind::Client, SocketConfig::new(), |wait| wait()).unwrap();
        let slot = driver
            .waker_slot()
            .expect("a driven socket has a waker slot");
        // No rescuer thread takes from this one: only `watch` bounds it.
        let rescuer = Rescuer {
            new_sockets: Mutex::new(Vec::new()),
        };
        let live = Arc::new(Shared {
            driver: Mutex::new(None),
            slot: slot.clone(),
            turns: AtomicU64::new(0),
        });
        rescuer.watch(&live);
        for _ in 0..10_000 {
            let gone = Arc::new(Shared {
                driver: Mutex::new(None),
                slot: slot.clone(),
                turns: AtomicU64::new(0),
            });
            rescuer.watch(&gone);
        }
        let kept = rescuer.new_sockets.lock().unwrap().len();
        assert!(kept <= 64, "{kept} sockets waiting to be looked at");
        let mut seen = Vec::new();
        rescuer.take_new(&mut seen);
        assert!(
            seen.iter().any(|s| s.socket.ptr_eq(&Arc::downgrade(&live))),
            "the live socket is still handed over"
        );
        assert!(rescuer.new_sockets.lock().unwrap().is_empty());
    }
}
