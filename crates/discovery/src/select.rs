//! Ordering SRV targets as RFC 2782 asks: by priority, then by weighted
//! random choice within a priority.
//!
//! The randomness is injected (`below(n)` returns a number uniform in
//! `0..n`) so that tests can replay a seeded generator and check the
//! weights statistically.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

/// One SRV record's say about a target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Weighted<T> {
    pub(crate) priority: u16,
    pub(crate) weight: u16,
    pub(crate) target: T,
}

/// Groups `records` by priority, lowest first, each group in the order of
/// RFC 2782's weighted choice, with its erratum applied: pick `r` uniform
/// in `[0, total)` and take the first record whose running sum of weights
/// *exceeds* `r` (the original text's "greater than or equal to", with
/// `r` in `[0, total]`, picks a weight-0 record at the head of the list
/// now and then and over-weights the first). Weight-0 records come after
/// every weighted one of their priority, in random order among themselves.
pub(crate) fn order<T>(
    mut records: Vec<Weighted<T>>,
    below: &mut impl FnMut(u64) -> u64,
) -> Vec<Vec<T>> {
    records.sort_by_key(|r| r.priority);
    let mut groups: Vec<Vec<T>> = Vec::new();
    let mut rest = records.into_iter().peekable();
    while let Some(first) = rest.next() {
        let priority = first.priority;
        let mut group = vec![first];
        while let Some(next) = rest.next_if(|r| r.priority == priority) {
            group.push(next);
        }
        groups.push(weighted_order(group, below));
    }
    groups
}

/// The order of one priority's records.
fn weighted_order<T>(mut group: Vec<Weighted<T>>, below: &mut impl FnMut(u64) -> u64) -> Vec<T> {
    let mut ordered = Vec::with_capacity(group.len());
    loop {
        let total: u64 = group.iter().map(|r| u64::from(r.weight)).sum();
        let index = if total > 0 {
            let r = below(total);
            let mut sum = 0;
            group
                .iter()
                .position(|record| {
                    sum += u64::from(record.weight);
                    sum > r
                })
                // `r < total`, so some running sum exceeds it.
                .unwrap_or(group.len() - 1)
        } else if group.is_empty() {
            return ordered;
        } else {
            // Only weight-0 records remain: any order will do, so a fair one.
            below(group.len() as u64) as usize
        };
        ordered.push(group.remove(index).target);
    }
}

/// Randomness for production: xorshift64*, seeded from the standard
/// library's per-process random hash keys, so no dependency is needed for
/// what only has to spread load, not resist an adversary.
#[derive(Debug)]
pub(crate) struct Random(u64);

impl Random {
    pub(crate) fn new() -> Random {
        let seed = RandomState::new().build_hasher().finish();
        Random(seed | 1)
    }

    /// A number uniform in `0..n` (`n > 0`), by multiplication rather than
    /// `%`, whose bias for small `n` is negligible too but costs a division.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        ((u128::from(x) * u128::from(n)) >> 64) as u64
    }
}

#[cfg(test)]
mod tests;
