//! A thread of our own running a small tokio runtime, on which the DNS
//! work of a resolver or a registration runs, whatever runtime (if any)
//! its caller is on.

use std::future::Future;

/// A one-worker tokio runtime, shut down without waiting when dropped:
/// that may happen inside another runtime, where waiting is not allowed.
pub(crate) struct DnsThread(Option<tokio::runtime::Runtime>);

impl DnsThread {
    /// Starts the thread, named `name`.
    pub(crate) fn start(name: &str) -> std::io::Result<DnsThread> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(name)
            .enable_all()
            .build()?;
        // Wrapped at once: if what the caller does next fails inside its
        // own runtime, a plain `Runtime` dropped there would panic.
        Ok(DnsThread(Some(runtime)))
    }

    pub(crate) fn runtime(&self) -> &tokio::runtime::Runtime {
        // Taken only in `Drop`.
        self.0
            .as_ref()
            .expect("the runtime lives as long as its thread's owner")
    }

    /// Runs `work` on the thread and blocks until it is done; `None` if the
    /// thread stopped first.
    ///
    /// Spawned and awaited through a channel rather than `block_on`, so
    /// that it works from inside another runtime too.
    pub(crate) fn run<T: Send + 'static>(
        &self,
        work: impl Future<Output = T> + Send + 'static,
    ) -> Option<T> {
        let (sender, receiver) = std::sync::mpsc::sync_channel(1);
        self.runtime().spawn(async move {
            let _ = sender.send(work.await);
        });
        receiver.recv().ok()
    }
}

impl Drop for DnsThread {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}
