//! Polling for a condition with a deadline.

use std::thread;
use std::time::{Duration, Instant};

const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// Calls `condition` until it returns `true` or `timeout` has passed.
///
/// Returns whether the condition became true. `condition` is always called at
/// least once, and at most `timeout / 10 ms + 2` times, so a condition that
/// itself blocks cannot make the loop unbounded in count.
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    let max_polls = timeout.as_millis() / POLL_INTERVAL.as_millis() + 2;
    for _ in 0..max_polls {
        if condition() {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        thread::sleep(POLL_INTERVAL.min(deadline - now));
    }
    false
}
