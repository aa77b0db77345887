//! Tests of the configuration parser: accepted shapes and error messages.

use std::time::Duration;

use crate::{ConfigError, HubKind, parse_config};

fn error(text: &str) -> String {
    match parse_config(text) {
        Ok(hubs) => panic!("expected an error, got {hubs:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn single_mapping_is_one_hub_with_defaults() {
    let hubs =
        parse_config("in: \"tcp://*:1111\"\nout: \"tcp://*:2222\"\ntype: queue\n").expect("valid");
    assert_eq!(hubs.len(), 1);
    let hub = &hubs[0];
    assert_eq!(hub.name, "hub");
    assert_eq!(hub.kind, HubKind::Queue);
    assert_eq!(hub.in_endpoint, "tcp://*:1111");
    assert_eq!(hub.out_endpoint, "tcp://*:2222");
    assert_eq!(hub.idle_timeout, Duration::from_secs(30));
    assert_eq!(hub.queue_limit, 1000);
    assert_eq!(hub.peer_queue_limit, 100_000);
    assert_eq!(hub.stats_interval, None);
}

#[test]
fn list_gives_several_hubs_with_numbered_names() {
    let text = "
- in: tcp://*:1111
  out: tcp://*:2222
- name: events
  type: forwarder
  in: tcp://*:3333
  out: tcp://*:4444
  stats_interval: 2.5
- type: streamer
  in: ipc:///tmp/a
  out: ipc:///tmp/b
  idle_timeout: 5
  queue_limit: 3
  queue_timeout: 0.5
  peer_queue_limit: 50
  peer_queue_bytes: 1048576
";
    let hubs = parse_config(text).expect("valid");
    let names: Vec<_> = hubs.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["hub-1", "events", "hub-3"]);
    assert_eq!(hubs[0].kind, HubKind::Queue);
    assert_eq!(hubs[1].kind, HubKind::Forwarder);
    assert_eq!(hubs[1].stats_interval, Some(Duration::from_millis(2500)));
    assert_eq!(hubs[2].kind, HubKind::Streamer);
    assert_eq!(hubs[2].idle_timeout, Duration::from_secs(5));
    assert_eq!(hubs[2].queue_limit, 3);
    assert_eq!(hubs[2].queue_timeout, Duration::from_millis(500));
    assert_eq!(hubs[2].peer_queue_limit, 50);
    assert_eq!(hubs[2].peer_queue_bytes, 1 << 20);
    assert_eq!(hubs[0].peer_queue_bytes, crate::DEFAULT_PEER_QUEUE_BYTES);
    assert_eq!(hubs[0].peer_queue_limit, crate::DEFAULT_PEER_QUEUE_LIMIT);
}

#[test]
fn unknown_type_names_line_and_key() {
    let e = error("in: tcp://*:1\nout: tcp://*:2\ntype: quue\n");
    assert!(
        e.starts_with("line 3, column 7, key type: unknown variant `quue`"),
        "{e}"
    );
}

#[test]
fn unknown_key_in_second_hub_names_the_hub() {
    let e = error(
        "- in: tcp://*:1\n  out: tcp://*:2\n- in: tcp://*:3\n  out: tcp://*:4\n  ot: tcp://*:5\n",
    );
    assert!(e.starts_with("line 5"), "{e}");
    assert!(e.contains("key hub 2"), "{e}");
    assert!(e.contains("unknown field `ot`"), "{e}");
}

#[test]
fn missing_key_is_named() {
    let e = error("- in: tcp://*:1\n");
    assert!(e.contains("missing field `out`"), "{e}");
    assert!(e.contains("hub 1"), "{e}");
}

#[test]
fn bad_endpoint_and_bad_duration_are_located() {
    let e = error("in: localhost:1\nout: tcp://*:2\n");
    assert!(e.starts_with("line 1"), "{e}");
    assert!(e.contains("key in"), "{e}");
    assert!(e.contains("did you mean tcp://localhost:1?"), "{e}");

    let e = error("in: tcp://*:1\nout: tcp://*:2\nidle_timeout: -3\n");
    assert!(e.starts_with("line 3"), "{e}");
    assert!(e.contains("key idle_timeout"), "{e}");
    assert!(e.contains("positive number of seconds"), "{e}");

    let e = error("in: tcp://*:1\nout: tcp://*:2\nqueue_limit: many\n");
    assert!(e.contains("key queue_limit"), "{e}");
}

#[test]
fn broken_yaml_gives_a_line() {
    let e = error("in: [tcp://*:1\nout: tcp://*:2\n");
    assert!(e.starts_with("line "), "{e}");
}

#[test]
fn empty_and_conflicting_files_are_rejected() {
    assert!(matches!(parse_config(""), Err(ConfigError::Empty)));
    assert!(matches!(parse_config("[]"), Err(ConfigError::Empty)));
    let e = error("- in: tcp://*:1\n  out: tcp://*:2\n- in: tcp://*:2\n  out: tcp://*:3\n");
    assert_eq!(
        e,
        "key hub 2 › in: `tcp://*:2` is already bound by hub `hub-1`"
    );
    let e = error(
        "- {name: a, in: tcp://*:1, out: tcp://*:2}\n- {name: a, in: tcp://*:3, out: tcp://*:4}\n",
    );
    assert!(e.contains("key hub 2 › name"), "{e}");
}

#[test]
fn an_error_without_place_has_no_leading_colon() {
    let e = error("in: tcp://*:1\nout: tcp://*:2\n---\nin: tcp://*:3\nout: tcp://*:4\n");
    assert!(!e.starts_with(':'), "{e}");
    assert!(e.contains("more than one document"), "{e}");
}

#[test]
fn a_hub_that_is_not_a_mapping_is_described_in_the_file_s_terms() {
    let e = error("- in: tcp://*:1\n  out: tcp://*:2\n- 5\n");
    assert!(e.starts_with("line 3, column 3, key hub 2: "), "{e}");
    assert!(e.contains("a mapping with at least `in` and `out`"), "{e}");
    assert!(!e.contains("RawHub"), "{e}");
}

#[test]
fn durations_that_round_to_zero_are_rejected() {
    let e = error("in: tcp://*:1\nout: tcp://*:2\nidle_timeout: 1e-12\n");
    assert!(e.contains("key idle_timeout"), "{e}");
    assert!(e.contains("positive number of seconds"), "{e}");
    let hubs = parse_config("in: tcp://*:1\nout: tcp://*:2\nqueue_timeout: 0.001\n").expect("1 ms");
    assert_eq!(hubs[0].queue_timeout, Duration::from_millis(1));
}
