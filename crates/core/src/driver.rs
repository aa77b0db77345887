//! Which threads drive the current-thread runtime of a server. A blocking
//! call made on one of them waits for a reply that the server, stalled
//! with the thread, can never send: such calls fail at once instead.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::ThreadId;

use tokio::runtime::{Handle, RuntimeFlavor};

use crate::{Error, Result};

/// Each live server's driving thread, by the server's token.
static DRIVERS: Mutex<Vec<(u64, ThreadId)>> = Mutex::new(Vec::new());

static NEXT_TOKEN: AtomicU64 = AtomicU64::new(0);

/// A server's entry in the table of driving threads, removed when the
/// server goes.
#[derive(Debug)]
pub(crate) struct Driver {
    token: u64,
}

impl Driver {
    /// The entry of a new server, which serves on no thread yet.
    pub(crate) fn new() -> Driver {
        Driver {
            token: NEXT_TOKEN.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// Records the thread the server is served on: the driving thread when
    /// the runtime is a current-thread one, else none (a multi-thread
    /// runtime has other workers to serve while one thread blocks).
    pub(crate) fn here(&self) {
        let current_thread = Handle::try_current()
            .is_ok_and(|handle| handle.runtime_flavor() == RuntimeFlavor::CurrentThread);
        let mut drivers = lock();
        drivers.retain(|(token, _)| *token != self.token);
        if current_thread {
            drivers.push((self.token, std::thread::current().id()));
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        lock().retain(|(token, _)| *token != self.token);
    }
}

fn lock() -> std::sync::MutexGuard<'static, Vec<(u64, ThreadId)>> {
    // The table stays consistent whatever panicked while it was held.
    DRIVERS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Fails when this thread drives a server's current-thread runtime, where
/// blocking until a reply would hang for ever.
pub(crate) fn check_blocking() -> Result<()> {
    let here = std::thread::current().id();
    if lock().iter().any(|(_, thread)| *thread == here) {
        return Err(Error::usage(
            "a blocking call on the thread that drives a server's current-thread tokio runtime would wait for ever: \
             the server cannot answer while this thread waits. Use the async client (`.await`), \
             or make the call from another thread (`tokio::task::spawn_blocking`), \
             or serve on a multi-thread runtime",
        ));
    }
    Ok(())
}

/// Fails when called inside a tokio runtime, where `Server::run` cannot
/// start one of its own.
pub(crate) fn check_no_runtime() -> Result<()> {
    if Handle::try_current().is_ok() {
        return Err(Error::usage(
            "Server::run starts a tokio runtime of its own and cannot be called inside one: \
             use `server.serve().await` (or `tokio::spawn(server.serve())`)",
        ));
    }
    Ok(())
}
