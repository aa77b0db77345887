//! The channel core against a fake clock: every test runs in microseconds.
//!
//! Each test drives a [`Machine`] and compares what it asks its driver to
//! do, in order, with a list of one-line descriptions.

use std::time::{Duration, Instant};

use zerorpc_wire::{Event, Header, IdKind, MessageId, Value, names};

use super::{Accepted, Action, Closed, Machine, MachineConfig, Route, SocketId};
use crate::Error;

const HB: Duration = Duration::from_millis(100);

struct Fixture {
    machine: Machine,
    /// The socket every fixture starts with.
    socket: SocketId,
    t0: Instant,
}

impl Fixture {
    fn new(heartbeat: Option<Duration>, passive_heartbeat: bool, accepts: bool) -> Self {
        let mut machine = Machine::new(MachineConfig {
            heartbeat,
            passive_heartbeat,
            accepts,
        });
        let socket = machine.add_socket();
        Fixture {
            machine,
            socket,
            t0: Instant::now(),
        }
    }

    fn client() -> Self {
        Fixture::new(Some(HB), false, false)
    }

    fn server() -> Self {
        Fixture::new(Some(HB), false, true)
    }

    fn at(&self, ms: u64) -> Instant {
        self.t0 + Duration::from_millis(ms)
    }

    /// Opens channel `n` at time `ms` on whatever socket the machine picks.
    fn open(&mut self, n: u8, ms: u64, timeout: Option<Duration>) -> SocketId {
        let socket = self.machine.open(id(n), (), timeout, self.at(ms));
        socket.expect("a socket")
    }

    /// An event arrives at time `ms` on the first socket after `envelope`.
    fn hear(&mut self, ms: u64, envelope: &[&[u8]], event: Event) -> Vec<String> {
        let mut envelope = envelope.iter().map(|f| f.to_vec()).collect();
        self.machine
            .on_event(self.socket, &mut envelope, event, self.at(ms));
        self.actions()
    }

    /// The time is `ms`: fires what is due.
    fn tick(&mut self, ms: u64) -> Vec<String> {
        self.machine.handle_timeout(self.at(ms));
        self.actions()
    }

    fn actions(&mut self) -> Vec<String> {
        std::iter::from_fn(|| self.machine.poll_action())
            .map(describe)
            .collect()
    }

    fn open_counts(&self) -> Vec<usize> {
        self.machine
            .sockets
            .values()
            .map(|load| load.open)
            .collect()
    }

    fn deadline_ms(&self) -> Option<u128> {
        let at = self.machine.next_deadline()?;
        Some(at.duration_since(self.t0).as_millis())
    }
}

fn id(n: u8) -> MessageId {
    MessageId::new(&[n], IdKind::Bin)
}

fn short(id: &MessageId) -> u8 {
    id.as_bytes()[0]
}

fn describe(action: Action<()>) -> String {
    match action {
        Action::Transmit(t) => {
            let arg = t.event.args.as_array().and_then(|a| a.first()).cloned();
            let to = t.event.header.response_to.as_ref().map(short);
            format!(
                "send {} {:?} on {} to {:?}{}{}",
                t.event.name,
                arg.and_then(|v| v.as_i64()),
                t.socket,
                t.envelope,
                if t.heartbeat { " heartbeat" } else { "" },
                if to == Some(short(&t.channel)) {
                    ""
                } else {
                    " (wrong response_to)"
                },
            )
        }
        Action::Accepted(Accepted {
            id, first: None, ..
        }) => format!("accept {}", short(&id)),
        Action::Accepted(Accepted {
            id,
            first: Some(event),
            ..
        }) => format!("accept {} with {}", short(&id), event.name),
        Action::Deliver(id, (), event) => format!("deliver {} to {}", event.name, short(&id)),
        Action::Credit(id, (), n) => format!("credit {n} to {}", short(&id)),
        Action::Close(Closed { id, error, .. }) => format!("close {}: {error}", short(&id)),
        Action::Dropped(reason) => format!("dropped {reason:?}"),
        Action::Released(socket) => format!("release socket {socket}"),
    }
}

/// An event of channel `to`, from a peer speaking `version`.
fn on(to: u8, name: &str, args: Vec<Value>, version: Option<u32>) -> Event {
    let mut header = Header::new();
    header.response_to = Some(id(to));
    header.version = version;
    Event::new(header, name.to_owned(), Value::Array(args))
}

fn heartbeat(to: u8) -> Event {
    on(to, names::HEARTBEAT, vec![Value::from(0)], Some(3))
}

fn more(to: u8, n: i64) -> Event {
    on(to, names::MORE, vec![Value::from(n)], Some(3))
}

fn reply(to: u8) -> Event {
    on(to, names::OK, vec![Value::from(1)], Some(3))
}

/// An item of the stream answering channel `to`: not its last event.
fn item(to: u8, version: Option<u32>) -> Event {
    on(to, names::STREAM, vec![Value::from(1)], version)
}

/// A request opening channel `n`, from a peer speaking `version`.
fn request(n: u8, version: Option<u32>) -> Event {
    let mut header = Header::with_id(id(n));
    header.version = version;
    Event::new(header, "add", Value::Array(vec![]))
}

const HB_SEND: &str = "send _zpc_hb Some(0) on 0 to [] heartbeat";
const LOST: &str = "close 1: lost remote after 0.2s heartbeat";

/// The ROUTER frames of a DEALER peer: routing id, delimiter.
const PEER: &[&[u8]] = &[b"peer", b""];

fn served_hb(envelope: &str) -> String {
    format!("send _zpc_hb Some(0) on 0 to {envelope} heartbeat")
}

#[test]
fn active_heartbeat_is_sent_every_interval() {
    let mut f = Fixture::client();
    f.open(1, 0, None);
    assert_eq!(f.deadline_ms(), Some(100));
    assert_eq!(f.tick(99), Vec::<String>::new());
    assert_eq!(f.tick(100), [HB_SEND]);
    assert_eq!(f.deadline_ms(), Some(200));
    assert_eq!(f.tick(200), [HB_SEND]);
}

#[test]
fn loss_when_nothing_ever_came_is_at_the_first_tick_past_two_intervals_after_the_first() {
    let mut f = Fixture::client();
    f.open(1, 0, None);
    for ms in [100, 200, 300] {
        assert_eq!(f.tick(ms), [HB_SEND], "lost early at {ms}");
    }
    assert_eq!(f.tick(400), [LOST]);
    assert_eq!(
        f.deadline_ms(),
        None,
        "the released channel's timers are gone"
    );
}

#[test]
fn loss_is_at_the_first_tick_more_than_two_intervals_after_the_last_heartbeat() {
    let mut f = Fixture::client();
    f.open(1, 0, None);
    f.tick(100);
    f.tick(200);
    assert_eq!(f.hear(250, &[], heartbeat(1)), Vec::<String>::new());
    // 450 is the threshold: ticks at 300 and 400 are within it.
    assert_eq!(f.tick(300), [HB_SEND]);
    assert_eq!(f.tick(400), [HB_SEND]);
    assert_eq!(f.tick(500), [LOST]);
}

#[test]
fn a_tick_exactly_two_intervals_after_the_last_heartbeat_is_not_a_loss() {
    let mut f = Fixture::client();
    f.open(1, 0, None);
    f.tick(100);
    f.hear(100, &[], heartbeat(1));
    assert_eq!(f.tick(200), [HB_SEND]);
    assert_eq!(f.tick(300), [HB_SEND], "exactly 2 intervals: not yet");
    assert_eq!(f.tick(400), [LOST]);
}

#[test]
fn steady_heartbeats_keep_the_channel_open() {
    let mut f = Fixture::client();
    f.open(1, 0, None);
    for tick in 1..50 {
        let ms = tick * 100;
        assert_eq!(f.tick(ms), [HB_SEND]);
        f.hear(ms + 50, &[], heartbeat(1));
    }
}

#[test]
fn passive_heartbeat_sends_and_checks_nothing_until_the_peer_heartbeats() {
    let mut f = Fixture::new(Some(HB), true, false);
    f.open(1, 0, None);
    assert_eq!(f.deadline_ms(), None);
    assert_eq!(f.tick(10_000), Vec::<String>::new());
    f.hear(10_050, &[], heartbeat(1));
    assert_eq!(f.deadline_ms(), Some(10_150));
    assert_eq!(f.tick(10_150), [HB_SEND]);
    assert_eq!(f.tick(10_250), [HB_SEND]);
    assert_eq!(f.tick(10_350), [LOST]);
}

#[test]
fn a_second_peer_heartbeat_does_not_start_a_second_ticker() {
    let mut f = Fixture::new(Some(HB), true, false);
    f.open(1, 0, None);
    f.hear(50, &[], heartbeat(1));
    f.hear(60, &[], heartbeat(1));
    assert_eq!(f.tick(150), [HB_SEND]);
    assert_eq!(f.tick(249), Vec::<String>::new());
}

#[test]
fn heartbeats_disabled_send_nothing_and_never_lose_the_peer() {
    let mut f = Fixture::new(None, false, true);
    f.hear(0, PEER, request(1, Some(3)));
    assert_eq!(f.deadline_ms(), None);
    assert_eq!(f.tick(1_000_000), Vec::<String>::new());
    assert_eq!(f.hear(5, PEER, heartbeat(1)), Vec::<String>::new());
}

#[test]
fn servers_heartbeat_v1_peers_passively() {
    let mut f = Fixture::server();
    f.hear(0, PEER, request(1, None));
    assert_eq!(f.deadline_ms(), None);
    f.hear(30, PEER, heartbeat(1));
    assert_eq!(f.tick(130), [served_hb("[[112, 101, 101, 114]]")]);
}

#[test]
fn servers_heartbeat_v2_and_v3_peers_actively() {
    for version in [2, 3] {
        let mut f = Fixture::server();
        f.hear(0, PEER, request(1, Some(version)));
        assert_eq!(f.deadline_ms(), Some(100), "v{version}");
    }
}

#[test]
fn first_reply_timeout_fails_the_channel_when_nothing_arrives() {
    let mut f = Fixture::new(None, false, false);
    f.open(1, 0, Some(Duration::from_millis(300)));
    assert_eq!(f.tick(299), Vec::<String>::new());
    assert_eq!(f.tick(300), ["close 1: timeout after 0.3s"]);
}

#[test]
fn a_first_stream_item_cancels_the_first_reply_timeout() {
    let mut f = Fixture::new(None, false, false);
    f.open(1, 0, Some(Duration::from_millis(300)));
    assert_eq!(f.hear(100, &[], item(1, Some(3))), ["deliver STREAM to 1"]);
    assert_eq!(f.tick(10_000), Vec::<String>::new());
}

#[test]
fn the_peers_reply_ends_a_channel_we_opened() {
    for last in [names::OK, names::ERR] {
        let mut f = Fixture::new(None, false, false);
        f.open(1, 0, Some(Duration::from_millis(300)));
        let event = on(1, last, vec![], Some(3));
        assert_eq!(
            f.hear(100, &[], event),
            [
                format!("deliver {last} to 1").as_str(),
                "close 1: channel closed"
            ]
        );
        assert_eq!(
            f.tick(10_000),
            Vec::<String>::new(),
            "{last}: no timer left"
        );
        // What comes after it is for no call.
        assert_eq!(f.hear(200, &[], heartbeat(1)), ["dropped LateControl"]);
        assert_eq!(f.open_counts(), [0], "{last}");
    }
}

#[test]
fn the_end_of_a_stream_waits_for_its_reader() {
    let mut f = Fixture::new(None, false, false);
    f.open(1, 0, None);
    let done = on(1, names::STREAM_DONE, vec![], Some(3));
    assert_eq!(f.hear(10, &[], done), ["deliver STREAM_DONE to 1"]);
    // Credit the reader grants as it reads the last items still goes out.
    f.machine.grant(&id(1), 6);
    assert_eq!(f.actions(), ["send _zpc_more Some(6) on 0 to []"]);
    f.machine.close(&id(1));
    assert_eq!(f.actions(), ["close 1: channel closed"]);
}

#[test]
fn events_named_like_a_last_one_do_not_end_a_channel_a_peer_opened() {
    let mut f = Fixture::server();
    f.hear(0, PEER, request(1, Some(3)));
    f.actions();
    assert_eq!(
        f.hear(10, PEER, on(1, names::OK, vec![], Some(3))),
        ["deliver OK to 1"]
    );
    assert_eq!(f.open_counts(), [1]);
}

#[test]
fn a_timeout_after_the_first_heartbeat_falls_due_on_time() {
    let mut f = Fixture::client();
    f.open(1, 0, Some(Duration::from_millis(250)));
    assert_eq!(f.tick(100), [HB_SEND]);
    assert_eq!(f.tick(200), [HB_SEND]);
    assert_eq!(f.tick(249), Vec::<String>::new());
    assert_eq!(f.tick(250), ["close 1: timeout after 0.25s"]);
}

#[test]
fn a_timeout_at_the_first_heartbeat_falls_due_with_it() {
    let mut f = Fixture::client();
    f.open(1, 0, Some(HB));
    assert_eq!(f.tick(100), [HB_SEND, "close 1: timeout after 0.1s"]);
}

#[test]
fn a_call_answered_before_its_first_heartbeat_never_times_out() {
    let mut f = Fixture::client();
    f.open(1, 0, Some(Duration::from_millis(250)));
    f.hear(50, &[], item(1, Some(3)));
    f.hear(60, &[], heartbeat(1));
    assert_eq!(f.tick(100), [HB_SEND]);
    assert_eq!(f.tick(200), [HB_SEND]);
    assert_eq!(f.tick(250), Vec::<String>::new(), "no timeout");
}

#[test]
fn heartbeats_and_credit_do_not_cancel_the_first_reply_timeout() {
    let mut f = Fixture::new(None, false, false);
    f.open(1, 0, Some(Duration::from_millis(300)));
    f.hear(100, &[], heartbeat(1));
    f.hear(150, &[], more(1, 5));
    assert_eq!(f.tick(300), ["close 1: timeout after 0.3s"]);
}

#[test]
fn a_reused_id_never_gets_the_timers_of_the_channel_that_had_it() {
    let mut f = Fixture::client();
    f.open(1, 0, Some(Duration::from_millis(150)));
    f.machine.close(&id(1));
    assert_eq!(f.actions(), ["close 1: channel closed"]);
    f.open(1, 50, None);
    // The old channel's heartbeat (100) and timeout (150) are stale.
    assert_eq!(f.tick(149), Vec::<String>::new());
    assert_eq!(f.tick(150), [HB_SEND]);
}

#[test]
fn a_channel_in_the_place_of_an_ended_one_never_gets_its_timers() {
    let mut f = Fixture::client();
    f.open(1, 0, Some(Duration::from_millis(150)));
    f.machine.close(&id(1));
    f.actions();
    // Another id, in the slot channel 1 freed.
    f.open(2, 50, None);
    assert_eq!(f.machine.live.len(), 1, "the slot is reused");
    assert_eq!(
        f.tick(149),
        Vec::<String>::new(),
        "channel 1's timers are stale"
    );
    assert_eq!(f.tick(150), [HB_SEND]);
}

#[test]
fn opening_an_id_in_use_releases_the_channel_that_had_it() {
    let mut f = Fixture::client();
    f.open(1, 0, None);
    f.open(1, 10, None);
    assert_eq!(f.actions(), ["close 1: channel closed"]);
    assert_eq!(f.open_counts(), [1]);
    assert_eq!(f.tick(100), Vec::<String>::new(), "old ticker is stale");
    assert_eq!(f.tick(110), [HB_SEND]);
}

#[test]
fn v3_peers_get_credit_as_zpc_more() {
    let mut f = Fixture::client();
    f.open(1, 0, None);
    f.hear(10, &[], item(1, Some(3)));
    f.machine.grant(&id(1), 50);
    assert_eq!(f.actions(), ["send _zpc_more Some(50) on 0 to []"]);
}

#[test]
fn v2_peers_detected_from_the_first_event_heard_get_credit_as_zpc_hb() {
    let mut f = Fixture::client();
    f.open(1, 0, None);
    f.hear(10, &[], item(1, Some(2)));
    f.machine.grant(&id(1), 50);
    assert_eq!(f.actions(), ["send _zpc_hb Some(50) on 0 to []"]);
}

#[test]
fn only_the_first_event_heard_decides_the_version() {
    let mut f = Fixture::client();
    f.open(1, 0, None);
    f.hear(10, &[], item(1, Some(3)));
    f.hear(20, &[], item(1, Some(2)));
    f.machine.grant(&id(1), 7);
    assert_eq!(f.actions(), ["send _zpc_more Some(7) on 0 to []"]);
}

#[test]
fn before_hearing_the_peer_credit_goes_as_zpc_more() {
    let mut f = Fixture::client();
    f.open(1, 0, None);
    f.machine.grant(&id(1), 3);
    assert_eq!(f.actions(), ["send _zpc_more Some(3) on 0 to []"]);
}

#[test]
fn an_accepted_v2_request_decides_the_version_and_grants_go_to_its_envelope() {
    let mut f = Fixture::server();
    f.hear(0, PEER, request(1, Some(2)));
    f.machine.grant(&id(1), 9);
    assert_eq!(
        f.actions(),
        ["send _zpc_hb Some(9) on 0 to [[112, 101, 101, 114]]"]
    );
}

#[test]
fn zpc_more_adds_credit() {
    let mut f = Fixture::client();
    f.open(1, 0, None);
    assert_eq!(f.hear(10, &[], more(1, 42)), ["credit 42 to 1"]);
}

#[test]
fn zpc_hb_carries_credit_from_v2_peers_only() {
    let mut f = Fixture::client();
    f.open(1, 0, None);
    let v2_hb = on(1, names::HEARTBEAT, vec![Value::from(30)], Some(2));
    assert_eq!(f.hear(10, &[], v2_hb), ["credit 30 to 1"]);

    let mut f = Fixture::client();
    f.open(1, 0, None);
    let v3_hb = on(1, names::HEARTBEAT, vec![Value::from(30)], Some(3));
    assert_eq!(f.hear(10, &[], v3_hb), Vec::<String>::new());
}

#[test]
fn zpc_more_without_a_number_adds_nothing() {
    let mut f = Fixture::client();
    f.open(1, 0, None);
    let bad = on(1, names::MORE, vec![Value::from("many")], Some(3));
    assert_eq!(f.hear(10, &[], bad), Vec::<String>::new());
}

#[test]
fn events_of_unknown_channels_are_unroutable_but_late_control_is_not_a_loss() {
    let mut f = Fixture::client();
    assert_eq!(f.hear(0, &[], reply(9)), ["dropped Unroutable"]);
    assert_eq!(f.hear(0, &[], heartbeat(9)), ["dropped LateControl"]);
    assert_eq!(f.hear(0, &[], more(9, 1)), ["dropped LateControl"]);
}

#[test]
fn control_after_close_is_late_control() {
    let mut f = Fixture::client();
    f.open(1, 0, None);
    f.machine.close(&id(1));
    f.actions();
    assert_eq!(f.hear(10, &[], heartbeat(1)), ["dropped LateControl"]);
    assert_eq!(f.hear(10, &[], reply(1)), ["dropped Unroutable"]);
}

#[test]
fn a_client_drops_events_that_open_channels() {
    let mut f = Fixture::client();
    assert_eq!(f.hear(0, &[], request(1, Some(3))), ["dropped Unroutable"]);
}

#[test]
fn a_server_accepts_a_request_and_delivers_it() {
    let mut f = Fixture::server();
    assert_eq!(f.hear(0, PEER, request(1, Some(3))), ["accept 1 with add"]);
    let route = f.machine.route(&id(1));
    let envelope = [b"peer".to_vec()];
    assert_eq!(
        route,
        Some(Route {
            socket: f.socket,
            envelope: &envelope
        })
    );
}

#[test]
fn duplicate_opening_events_are_dropped() {
    let mut f = Fixture::server();
    f.hear(0, PEER, request(1, Some(3)));
    assert_eq!(f.hear(5, PEER, request(1, Some(3))), ["dropped Unroutable"]);
    assert_eq!(f.open_counts(), [1]);
}

#[test]
fn a_heartbeat_opening_a_channel_is_accepted_but_not_delivered() {
    let mut f = Fixture::server();
    let mut hb = Event::new(
        Header::with_id(id(1)),
        names::HEARTBEAT,
        Value::Array(vec![Value::from(0)]),
    );
    hb.header.version = Some(3);
    assert_eq!(f.hear(0, PEER, hb), ["accept 1"]);
}

#[test]
fn envelopes_follow_zerorpc_python() {
    // Three or more frames: all but the last (the delimiter) are the envelope.
    let mut f = Fixture::server();
    f.hear(0, &[b"hop", b"peer", b""], request(1, Some(3)));
    let envelope = [b"hop".to_vec(), b"peer".to_vec()];
    assert_eq!(
        f.machine.route(&id(1)).map(|r| r.envelope),
        Some(&envelope[..])
    );
    // Two frames: the first.
    f.hear(0, PEER, request(2, Some(3)));
    let envelope = [b"peer".to_vec()];
    assert_eq!(
        f.machine.route(&id(2)).map(|r| r.envelope),
        Some(&envelope[..])
    );
    // One frame: the frame itself, as zerorpc-python does with no delimiter.
    f.hear(0, &[b"solo"], request(3, Some(3)));
    let envelope = [b"solo".to_vec()];
    assert_eq!(
        f.machine.route(&id(3)).map(|r| r.envelope),
        Some(&envelope[..])
    );
}

#[test]
fn an_opening_event_without_an_envelope_is_malformed() {
    let mut f = Fixture::server();
    assert_eq!(
        f.hear(0, &[], request(1, Some(3))),
        ["dropped MalformedEnvelope"]
    );
    assert_eq!(f.machine.route(&id(1)), None);
}

#[test]
fn close_releases_the_channel_once() {
    let mut f = Fixture::client();
    f.open(1, 0, None);
    f.machine.close(&id(1));
    f.machine.close(&id(1));
    f.machine.fail(&id(1), Error::peer_gone());
    assert_eq!(f.actions(), ["close 1: channel closed"]);
    assert_eq!(f.machine.route(&id(1)), None);
    assert_eq!(f.open_counts(), [0]);
    f.machine.grant(&id(1), 5);
    assert_eq!(f.actions(), Vec::<String>::new());
}

#[test]
fn fail_releases_the_channel_with_the_error_and_stops_its_timers() {
    let mut f = Fixture::client();
    f.open(1, 0, Some(Duration::from_millis(150)));
    f.machine.fail(&id(1), Error::peer_gone());
    assert_eq!(f.actions(), ["close 1: lost remote: the peer disconnected"]);
    assert_eq!(f.tick(10_000), Vec::<String>::new());
}

#[test]
fn a_queued_heartbeat_is_not_sent_again_until_it_left() {
    let mut f = Fixture::client();
    f.open(1, 0, None);
    assert_eq!(f.tick(100), [HB_SEND]);
    f.machine.heartbeat_queued(&id(1));
    f.hear(150, &[], heartbeat(1));
    assert_eq!(f.tick(200), Vec::<String>::new(), "one waits already");
    f.machine.heartbeat_flushed(&id(1));
    assert_eq!(f.tick(300), [HB_SEND]);
}

#[test]
fn a_queued_heartbeat_does_not_hide_a_loss() {
    let mut f = Fixture::client();
    f.open(1, 0, None);
    f.tick(100);
    f.machine.heartbeat_queued(&id(1));
    assert_eq!(f.tick(200), Vec::<String>::new());
    assert_eq!(f.tick(300), Vec::<String>::new());
    assert_eq!(f.tick(400), [LOST]);
}

#[test]
fn new_channels_go_to_the_least_loaded_socket_round_robin_on_ties() {
    let mut f = Fixture::new(None, false, false);
    f.machine.add_socket();
    f.machine.add_socket();
    let first: Vec<SocketId> = (1..=3).map(|n| f.open(n, 0, None)).collect();
    let mut sorted = first.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [SocketId(0), SocketId(1), SocketId(2)],
        "one per socket"
    );
    f.machine.close(&id(2));
    let freed = first[1];
    assert_eq!(
        f.open(4, 0, None),
        freed,
        "the socket with fewest open channels"
    );
    assert_eq!(f.open_counts(), [1, 1, 1]);
}

#[test]
fn opening_without_a_socket_fails() {
    let mut machine = Machine::new(MachineConfig {
        heartbeat: Some(HB),
        passive_heartbeat: false,
        accepts: false,
    });
    assert_eq!(machine.open(id(1), (), None, Instant::now()).ok(), None);
    let socket = machine.add_socket();
    machine.remove_socket(socket);
    assert_eq!(machine.open(id(1), (), None, Instant::now()).ok(), None);
    assert!(machine.poll_action().is_none());
}

#[test]
fn timers_of_several_channels_fire_in_time_order() {
    let mut f = Fixture::new(None, false, false);
    f.open(1, 0, Some(Duration::from_millis(300)));
    f.open(2, 0, Some(Duration::from_millis(100)));
    f.open(3, 0, Some(Duration::from_millis(200)));
    assert_eq!(f.deadline_ms(), Some(100));
    assert_eq!(
        f.tick(1_000),
        [
            "close 2: timeout after 0.1s",
            "close 3: timeout after 0.2s",
            "close 1: timeout after 0.3s"
        ]
    );
}

#[test]
fn heartbeats_go_on_the_channels_socket_and_envelope() {
    let mut f = Fixture::server();
    let second = f.machine.add_socket();
    f.machine.on_event(
        second,
        &mut vec![b"b".to_vec(), Vec::new()],
        request(1, Some(3)),
        f.at(0),
    );
    f.actions();
    assert_eq!(
        f.tick(100),
        ["send _zpc_hb Some(0) on 1 to [[98]] heartbeat"]
    );
}

#[test]
fn a_retired_socket_takes_no_new_channel_and_keeps_its_open_ones() {
    let mut f = Fixture::new(None, false, false);
    let second = f.machine.add_socket();
    let on_first = f.open(1, 0, None);
    let on_second = f.open(2, 0, None);
    assert_eq!((on_first, on_second), (f.socket, second));
    assert!(
        !f.machine.retire_socket(f.socket),
        "channel 1 is still open"
    );
    for n in 3..=5 {
        assert_eq!(f.open(n, 0, None), second, "only the live socket");
    }
    let route = f.machine.route(&id(1)).map(|r| r.socket);
    assert_eq!(route, Some(f.socket), "channel 1 stays where it started");
    assert_eq!(f.hear(10, &[], item(1, Some(3))), ["deliver STREAM to 1"]);
    assert_eq!(f.actions(), Vec::<String>::new());
    f.machine.close(&id(1));
    assert_eq!(
        f.actions(),
        ["close 1: channel closed", "release socket 0"],
        "released when its last channel ends"
    );
    assert_eq!(f.open_counts(), [4]);
}

#[test]
fn retiring_an_idle_socket_releases_it_at_once() {
    let mut f = Fixture::new(None, false, false);
    assert!(f.machine.retire_socket(f.socket));
    assert_eq!(f.machine.open(id(1), (), None, f.at(0)).ok(), None);
    assert_eq!(f.actions(), Vec::<String>::new(), "no release action: done");
}

#[test]
fn socket_ids_are_never_reused() {
    let mut f = Fixture::new(None, false, false);
    assert!(f.machine.retire_socket(f.socket));
    let next = f.machine.add_socket();
    assert_ne!(next, f.socket);
    assert_eq!(f.open(1, 0, None), next);
}

#[test]
fn timers_of_ended_channels_are_swept_before_they_pile_up() {
    let mut f = Fixture::client();
    // Far more calls than the sweep's slack, each ended at once, as a busy
    // client's are, long before their heartbeat timers are due.
    for round in 0..50_000u32 {
        let id = MessageId::new(&round.to_be_bytes(), IdKind::Bin);
        f.machine
            .open(id.clone(), (), Some(HB), f.at(0))
            .expect("a socket");
        f.machine.close(&id);
    }
    let bound = super::STALE_TIMERS_SLACK + 2 * super::TIMERS_PER_CHANNEL + 2;
    assert!(
        f.machine.timers.len() <= bound,
        "{} timers kept for no channel",
        f.machine.timers.len()
    );
    assert_eq!(
        f.machine.live.len(),
        1,
        "one channel open at a time, one slot"
    );
    // A live channel keeps its timers through a sweep.
    f.open(1, 0, None);
    for round in 0..10_000u32 {
        let id = MessageId::new(&(round + 1_000_000).to_be_bytes(), IdKind::Bin);
        f.machine
            .open(id.clone(), (), None, f.at(0))
            .expect("a socket");
        f.machine.close(&id);
    }
    f.actions();
    assert_eq!(f.tick(100), [HB_SEND]);
}

#[test]
fn a_reply_routed_while_no_action_waits_names_its_channel_and_queues_only_what_follows_it() {
    let mut f = Fixture::client();
    f.open(1, 0, None);
    f.open(2, 0, None);

    // Nothing waits: an item is for channel 1's handle, and so is a
    // reply, whose channel's close is queued for after it.
    assert!(!f.machine.has_actions());
    assert!(f.machine.route_reply(&item(1, Some(3)), f.at(10)).is_some());
    assert!(f.actions().is_empty());
    assert!(f.machine.route_reply(&reply(1), f.at(10)).is_some());
    assert_eq!(f.actions(), ["close 1: channel closed"]);
    // Late: nothing to deliver, the drop counted.
    assert!(f.machine.route_reply(&reply(1), f.at(10)).is_none());
    assert_eq!(f.actions(), ["dropped Unroutable"]);

    // An action waits (a heartbeat due): the event goes through the queue,
    // its delivery ahead of its channel's close.
    f.machine.handle_timeout(f.at(HB.as_millis() as u64));
    assert!(f.machine.has_actions());
    let actions = f.hear(110, &[], reply(2));
    let tail: Vec<&str> = actions
        .iter()
        .rev()
        .take(2)
        .rev()
        .map(String::as_str)
        .collect();
    assert_eq!(
        tail,
        ["deliver OK to 2", "close 2: channel closed"],
        "{actions:?}"
    );
    assert!(actions.len() > 2, "{actions:?}");
}

#[test]
fn the_close_a_reply_queues_is_taken_alone_for_its_own_handle_only() {
    let mut f = Fixture::client();
    f.open(1, 0, None);
    assert!(f.machine.poll_close_of(|_| true).is_none());
    assert!(f.machine.route_reply(&reply(1), f.at(10)).is_some());
    let closed = f
        .machine
        .poll_close_of(|_| true)
        .expect("the reply's channel closes");
    assert_eq!(short(&closed.id), 1);

    // Another handle's close stays queued.
    f.open(3, 0, None);
    assert!(f.machine.route_reply(&reply(3), f.at(10)).is_some());
    assert!(f.machine.poll_close_of(|_| false).is_none());
    assert_eq!(f.actions(), ["close 3: channel closed"]);

    // Anything else at the front stays where it is.
    f.open(2, 0, None);
    f.machine.handle_timeout(f.at(HB.as_millis() as u64));
    let waiting = f.machine.has_actions();
    assert!(waiting);
    assert!(f.machine.poll_close_of(|_| true).is_none());
    assert!(
        f.actions().iter().any(|a| a.starts_with("send _zpc_hb")),
        "heartbeat kept"
    );
}
