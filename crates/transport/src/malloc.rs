//! glibc's malloc and large messages: [`tune_malloc`].
//!
//! glibc hands freed memory back to the system as soon as more than its
//! trim threshold (128 KiB by default) lies free at the top of a heap, and
//! freeing any chunk of 64 KiB or more checks that at once. Messages of
//! 64 KiB and more are exactly such chunks, and they are freed by a thread
//! other than the one that made them (ZeroMQ's thread frees what we
//! encoded; our I/O thread frees what ZeroMQ read), so a stream of them
//! gives the same pages back to the system and faults them in again,
//! zeroed, for every item. Measured on the development machine, one stream
//! of 64 KiB items between two processes ran at half the speed it reaches
//! with a higher threshold; raw libzmq PUSH/PULL of the same items lost a
//! fifth.

use std::sync::atomic::{AtomicBool, Ordering};

/// The trim threshold [`tune_malloc`] sets: freed memory a heap keeps
/// before handing it back to the system. Large enough for the churn of
/// many 64 KiB messages in flight (in measurements, 4 MiB was not; 8 MiB
/// was as fast as 16, 64 and 256 MiB), small next to what such traffic
/// holds anyway.
pub const TRIM_THRESHOLD: usize = 8 << 20;

/// The mmap threshold [`tune_malloc`] sets: allocations this large or
/// larger get pages of their own, mapped and unmapped each time. Setting
/// the trim threshold stops glibc from raising this one as it sees large
/// blocks freed (from 128 KiB up to 32 MiB), so it is set too: messages
/// up to 4 MiB come from the heaps and keep their pages.
pub const MMAP_THRESHOLD: usize = 4 << 20;

/// Raises glibc's malloc trim threshold to [`TRIM_THRESHOLD`] (and its
/// mmap threshold to [`MMAP_THRESHOLD`]), so that freeing large messages
/// no longer hands their pages back to the system only to fault them in
/// again for the next one (see the module's documentation above for the
/// measurements). Returns whether it did. It also has sockets give the
/// free memory of a burst back to the system once the burst is over
/// (after 64 MiB passed, at the first second that carries less than
/// 1 MiB), which the thresholds alone would keep: after a burst of large
/// streams, an idle server went from 340 MiB resident to 17 MiB.
///
/// The setting is process-wide, so this crate never makes it on its own:
/// the `zerorpc`, `zerorpc-hub` and load-test binaries call it first
/// thing, and a program of your own that sends or receives messages of
/// 64 KiB or more should too (or use an allocator that keeps freed memory,
/// such as jemalloc or mimalloc, for its own allocations; ZeroMQ's stay
/// with malloc). It does nothing when the environment already sets the
/// threshold (`MALLOC_TRIM_THRESHOLD_`, or `malloc.trim_threshold` in
/// `GLIBC_TUNABLES`): an explicit choice wins. It does nothing either
/// off glibc, whose allocators do not trim this way.
///
/// ```
/// let tuned = zerorpc_transport::tune_malloc();
/// # let _ = tuned;
/// ```
pub fn tune_malloc() -> bool {
    // Giving a burst's memory back is worth it whoever set the thresholds.
    TRIM_AFTER_BURSTS.store(
        cfg!(all(target_os = "linux", target_env = "gnu")),
        Ordering::Relaxed,
    );
    if threshold_set_by(|name| std::env::var_os(name).map(|v| v.to_string_lossy().into_owned())) {
        return false;
    }
    set_thresholds()
}

/// Set by [`tune_malloc`]: sockets' I/O threads give the free memory of
/// a burst back to the system once it is over (see `Trim` in `io.rs`).
static TRIM_AFTER_BURSTS: AtomicBool = AtomicBool::new(false);

/// Whether I/O threads trim after bursts.
pub(crate) fn trims_after_bursts() -> bool {
    TRIM_AFTER_BURSTS.load(Ordering::Relaxed)
}

/// Gives the free memory of every heap back to the system.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(crate) fn trim() {
    // SAFETY: malloc_trim takes a pad size and only releases free memory
    // under the allocator's own locks.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn trim() {}

/// Whether the environment (read through `var`) sets the trim threshold.
fn threshold_set_by(var: impl Fn(&str) -> Option<String>) -> bool {
    var("MALLOC_TRIM_THRESHOLD_").is_some()
        || var("GLIBC_TUNABLES").is_some_and(|tunables| tunables.contains("malloc.trim_threshold"))
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn set_thresholds() -> bool {
    let set = |parameter, bytes: usize| {
        let Ok(bytes) = libc::c_int::try_from(bytes) else {
            return false;
        };
        // SAFETY: mallopt takes two integers and changes a setting of the
        // allocator under its own lock; glibc checks the value.
        unsafe { libc::mallopt(parameter, bytes) == 1 }
    };
    set(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) && set(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD)
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set_thresholds() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_explicit_threshold_in_the_environment_is_left_alone() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(key, _)| *key == name)
                    .map(|(_, value)| (*value).to_owned())
            }
        };
        assert!(!threshold_set_by(env(&[])));
        assert!(!threshold_set_by(env(&[(
            "GLIBC_TUNABLES",
            "glibc.malloc.arena_max=2"
        )])));
        assert!(threshold_set_by(env(&[(
            "MALLOC_TRIM_THRESHOLD_",
            "1000000"
        )])));
        assert!(threshold_set_by(env(&[(
            "GLIBC_TUNABLES",
            "glibc.malloc.arena_max=2:glibc.malloc.trim_threshold=1000000"
        )])));
    }

    /// Page faults of the calling thread so far.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn minor_faults() -> i64 {
        // SAFETY: getrusage writes one rusage into the zeroed struct given.
        unsafe {
            let mut usage: libc::rusage = std::mem::zeroed();
            assert_eq!(libc::getrusage(libc::RUSAGE_THREAD, &mut usage), 0);
            usage.ru_minflt
        }
    }

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn large_buffers_freed_and_made_again_keep_their_pages() {
        const ROUNDS: usize = 50;
        const PAGE: usize = 4096;
        // What a round holds at once: like a stream's messages waiting in
        // ZeroMQ's pipe, then written and freed together.
        const HELD: usize = 2 << 20;
        assert!(set_thresholds());
        // Sizes on both sides of glibc's default mmap threshold (128 KiB).
        for bytes in [256 << 10, 64 << 10] {
            let before = minor_faults();
            let mut written = 0;
            for round in 0..ROUNDS {
                let mut buffers: Vec<Vec<u8>> = (0..HELD / bytes)
                    .map(|_| Vec::with_capacity(bytes))
                    .collect();
                for buffer in &mut buffers {
                    buffer.resize(bytes, 0);
                    for page in buffer.chunks_mut(PAGE) {
                        page[0] = round as u8;
                        written += 1;
                    }
                }
            }
            let faults = minor_faults() - before;
            assert_eq!(written, ROUNDS * HELD / PAGE);
            // Handed back each round, most pages would fault again each
            // round; kept, only the first round's (and a little
            // bookkeeping's) do.
            let first_round = (HELD / PAGE) as i64;
            assert!(
                faults < 2 * first_round,
                "{faults} page faults for {ROUNDS} rounds of {HELD} bytes in {bytes}-byte buffers"
            );
        }
    }
}
