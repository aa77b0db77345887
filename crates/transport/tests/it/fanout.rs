//! A client connected to several servers keeps each channel on one server.

use futures::FutureExt;
use zerorpc_transport::{Channel, OpenOptions};
use zerorpc_wire::{Event, Header, Value, names};

use crate::support::{HB, LIMIT, block_on_timeout, client, run, tcp_server, wait_until};

const CHANNELS: usize = 4;

#[test]
fn client_spreads_channels_over_servers_and_keeps_each_channel_on_its_server() {
    let servers = [tcp_server(Some(HB)), tcp_server(Some(HB))];
    let client = client(Some(HB), &servers[0].1);
    client.connect(&servers[1].1).unwrap();

    let mut calls: Vec<Channel> = (0..CHANNELS)
        .map(|i| {
            let call = Event::new(Header::new(), "work", Value::Array(vec![Value::from(i)]));
            client.open(call, OpenOptions::default()).unwrap()
        })
        .collect();

    // Two each: accepting a third on either server would time out.
    let mut served = Vec::new();
    for (tag, (server, _)) in servers.iter().enumerate() {
        for _ in 0..CHANNELS / 2 {
            let mut channel = run(server.accept()).unwrap();
            let call = run(channel.recv()).unwrap();
            let index = call.args.as_array().unwrap()[0].as_u64().unwrap();
            served.push((tag, index, channel));
        }
    }
    let mut indexes: Vec<u64> = served.iter().map(|(_, i, _)| *i).collect();
    indexes.sort_unstable();
    assert_eq!(indexes, [0, 1, 2, 3]);

    // Several intervals of heartbeats both ways; a heartbeat sent to the
    // wrong server would be unroutable there and starve the right one.
    let enough = CHANNELS as u64 * 5;
    assert!(wait_until(LIMIT, || client.stats().heartbeats_sent >= enough));
    for (tag, index, channel) in &served {
        assert!(
            channel.closed().now_or_never().is_none(),
            "server {tag} lost channel {index}"
        );
    }
    for call in &calls {
        assert!(
            call.closed().now_or_never().is_none(),
            "client lost {:?}",
            call.id()
        );
    }
    for (server, _) in &servers {
        assert_eq!(server.stats().dropped_unroutable, 0, "{:?}", server.stats());
    }
    assert_eq!(client.stats().dropped_unroutable, 0);

    // A stream per channel: its `_zpc_more` must reach the right server too.
    let senders: Vec<_> = served
        .into_iter()
        .map(|(tag, index, mut channel)| {
            std::thread::spawn(move || {
                for k in 0..3 {
                    let item =
                        Value::Array(vec![Value::from(tag), Value::from(index), Value::from(k)]);
                    let event = Event::new(Header::new(), names::STREAM, item);
                    block_on_timeout(LIMIT, channel.send(event))
                        .expect("credit came")
                        .unwrap();
                }
                let done = Event::new(Header::new(), names::STREAM_DONE, Value::Nil);
                block_on_timeout(LIMIT, channel.send(done))
                    .expect("credit came")
                    .unwrap();
                (tag, index)
            })
        })
        .collect();
    for (i, call) in calls.iter_mut().enumerate() {
        let mut tag = None;
        for k in 0..3 {
            let event = run(call.recv()).unwrap();
            assert_eq!(event.name, names::STREAM);
            let item = event.args.as_array().unwrap();
            assert_eq!(item[1].as_u64(), Some(i as u64));
            assert_eq!(item[2].as_u64(), Some(k));
            let from = item[0].as_u64();
            assert!(tag.is_none() || tag == from, "one channel, two servers");
            tag = from;
        }
        assert_eq!(run(call.recv()).unwrap().name, names::STREAM_DONE);
    }
    for sender in senders {
        sender.join().unwrap();
    }
}
