//! The ordering of SRV targets, with a seeded generator.

use zerorpc_test_support::Rng;

use super::*;

fn record(priority: u16, weight: u16, target: &'static str) -> Weighted<&'static str> {
    Weighted {
        priority,
        weight,
        target,
    }
}

/// How often each target comes first over `picks` orderings, as fractions.
fn first_place(records: &[Weighted<&'static str>], picks: usize) -> Vec<(&'static str, f64)> {
    let mut rng = Rng::new(0x5eed);
    let mut counts: Vec<(&'static str, usize)> = records.iter().map(|r| (r.target, 0)).collect();
    for _ in 0..picks {
        let groups = order(records.to_vec(), &mut |n| rng.below(n));
        let first = groups[0][0];
        counts.iter_mut().find(|(t, _)| *t == first).unwrap().1 += 1;
    }
    counts
        .into_iter()
        .map(|(t, c)| (t, c as f64 / picks as f64))
        .collect()
}

#[test]
fn priorities_come_lowest_first_and_every_record_once() {
    let records = vec![
        record(20, 5, "c"),
        record(10, 1, "a"),
        record(30, 0, "d"),
        record(10, 9, "b"),
    ];
    let mut rng = Rng::new(7);
    for _ in 0..100 {
        let mut groups = order(records.clone(), &mut |n| rng.below(n));
        assert_eq!(groups.len(), 3);
        groups[0].sort();
        assert_eq!(groups, [vec!["a", "b"], vec!["c"], vec!["d"]]);
    }
}

#[test]
fn weights_share_the_first_place_in_proportion() {
    let records = vec![record(1, 1, "a"), record(1, 2, "b"), record(1, 7, "c")];
    let shares = first_place(&records, 100_000);
    // The standard deviation of each share is below 0.0015 at this count:
    // 0.01 is far outside chance, and close enough to catch an off-by-one
    // in the running sum (which would move a share by 0.1).
    for ((target, share), expected) in shares.iter().zip([0.1, 0.2, 0.7]) {
        assert!(
            (share - expected).abs() < 0.01,
            "{target}: {share} vs {expected}"
        );
    }
}

#[test]
fn equal_weights_share_equally_even_among_many() {
    let records: Vec<_> = ["a", "b", "c", "d", "e"]
        .into_iter()
        .map(|t| record(0, 10, t))
        .collect();
    for (target, share) in first_place(&records, 50_000) {
        assert!((share - 0.2).abs() < 0.01, "{target}: {share}");
    }
}

#[test]
fn weight_zero_comes_only_when_nothing_else_is_left() {
    let records = vec![
        record(1, 0, "zero"),
        record(1, 1, "one"),
        record(1, 0, "nil"),
    ];
    let mut rng = Rng::new(99);
    let mut last_two = std::collections::HashMap::new();
    for _ in 0..10_000 {
        let groups = order(records.clone(), &mut |n| rng.below(n));
        assert_eq!(groups[0][0], "one");
        *last_two.entry(groups[0][1]).or_insert(0) += 1;
    }
    // Among weight-0 records the order is fair.
    let zero_second = f64::from(last_two["zero"]) / 10_000.0;
    assert!((zero_second - 0.5).abs() < 0.03, "{zero_second}");
}

#[test]
fn the_production_generator_stays_in_range_and_spreads() {
    let mut random = Random::new();
    let mut seen = [0usize; 3];
    for _ in 0..3_000 {
        seen[random.below(3) as usize] += 1;
    }
    assert!(seen.iter().all(|&n| n > 800), "{seen:?}");
    assert_eq!(Random::new().below(1), 0);
}
