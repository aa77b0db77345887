//! A count of things in progress, each held by a guard that leaves the
//! count when dropped, whatever ends it (an answer, a panic, a task
//! dropped unrun).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// How many [`Held`] guards of it are alive.
#[derive(Clone, Debug, Default)]
pub(crate) struct Gauge(Arc<AtomicUsize>);

impl Gauge {
    /// Counts one more until the guard is dropped.
    pub(crate) fn enter(&self) -> Held {
        self.0.fetch_add(1, Ordering::Relaxed);
        Held(self.0.clone())
    }

    /// Counts one more if fewer than `limit` are counted.
    pub(crate) fn enter_below(&self, limit: usize) -> Option<Held> {
        if self.0.fetch_add(1, Ordering::Relaxed) >= limit {
            self.0.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        Some(Held(self.0.clone()))
    }

    /// Whether any guard is alive.
    pub(crate) fn any(&self) -> bool {
        self.0.load(Ordering::Relaxed) > 0
    }
}

/// One thing counted in a [`Gauge`] until dropped.
pub(crate) struct Held(Arc<AtomicUsize>);

impl Drop for Held {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gauge_counts_its_live_guards_and_refuses_past_a_limit() {
        let gauge = Gauge::default();
        assert!(!gauge.any());
        let first = gauge.enter_below(2).expect("below the limit");
        let second = gauge.enter();
        assert!(gauge.enter_below(2).is_none(), "two already counted");
        drop(first);
        let third = gauge.enter_below(2).expect("one left the count");
        drop((second, third));
        assert!(!gauge.any());
    }
}
