//! Message ids made the way zerorpc-python makes them.

use zerorpc_wire::{IdGenerator, IdKind, MessageId};

#[test]
fn ids_are_32_lowercase_hex_bytes_sent_as_bin() {
    let ids = IdGenerator::new();
    for _ in 0..100 {
        let id = ids.next_id();
        assert_eq!(id.kind(), IdKind::Bin);
        assert_eq!(id.as_bytes().len(), 32);
        assert!(
            id.as_bytes()
                .iter()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b)),
            "{id}"
        );
    }
}

#[test]
fn consecutive_ids_count_up_on_a_shared_base() {
    // A generator draws a new base only after at least 2^16 ids, so 1000
    // consecutive ids share one.
    let ids = IdGenerator::new();
    let all: Vec<MessageId> = (0..1000).map(|_| ids.next_id()).collect();
    for pair in all.windows(2) {
        let (a, b) = (pair[0].as_bytes(), pair[1].as_bytes());
        assert_eq!(a[8..], b[8..], "{} then {}", pair[0], pair[1]);
        let counter = |id: &[u8]| {
            u32::from_str_radix(std::str::from_utf8(&id[..8]).expect("ascii"), 16).expect("hex")
        };
        assert_eq!(counter(b), counter(a) + 1, "{} then {}", pair[0], pair[1]);
    }
}

#[test]
fn generators_use_different_bases() {
    let (a, b) = (IdGenerator::new().next_id(), IdGenerator::new().next_id());
    assert_ne!(a.as_bytes()[8..], b.as_bytes()[8..]);
}

#[test]
fn generated_ids_are_unique_within_a_thread() {
    let ids: std::collections::HashSet<MessageId> =
        (0..1000).map(|_| MessageId::generate()).collect();
    assert_eq!(ids.len(), 1000);
}

#[test]
fn threads_generate_ids_on_bases_of_their_own() {
    let made: Vec<Vec<MessageId>> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| (0..1000).map(|_| MessageId::generate()).collect()))
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("thread"))
            .collect()
    });
    let bases: std::collections::HashSet<&[u8]> =
        made.iter().map(|ids| &ids[0].as_bytes()[8..]).collect();
    assert_eq!(bases.len(), 4, "one base per thread");
    let all: std::collections::HashSet<&MessageId> = made.iter().flatten().collect();
    assert_eq!(all.len(), 4000);
}

#[test]
fn long_ids_keep_their_bytes() {
    // Ids are opaque: anything a peer sends, however long, comes back intact.
    let long = vec![7u8; 300];
    let id = MessageId::new(&long, IdKind::Str);
    assert_eq!(id.as_bytes(), long.as_slice());
    assert_eq!(id.kind(), IdKind::Str);
    assert_eq!(id, MessageId::new(&long, IdKind::Bin));
}
