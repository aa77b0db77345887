//! Benchmarks of the event codec and the serde layer on the messages a
//! zerorpc server handles most: a small request and its reply.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use serde::{Deserialize, Serialize};
use zerorpc_wire::{Event, Header, IdKind, MessageId, Value, from_value, to_value};

/// `add(1, 2)` as zerorpc-python sends it: bin id, `v: 3`.
fn request() -> Event {
    let id = MessageId::new(b"000000010123456789abcdef01234567", IdKind::Bin);
    Event::new(
        Header::with_id(id),
        "add",
        Value::Array(vec![1.into(), 2.into()]),
    )
}

/// `OK [3]` answering the request.
fn reply() -> Event {
    let mut header = Header::with_id(MessageId::new(
        b"00000001feedfacefeedfacefeedface",
        IdKind::Bin,
    ));
    header.response_to = Some(request().header.message_id);
    Event::new(header, "OK", Value::Array(vec![3.into()]))
}

#[derive(Serialize, Deserialize)]
struct User {
    id: u64,
    name: String,
    email: Option<String>,
    tags: Vec<String>,
    score: f64,
}

fn user() -> User {
    User {
        id: 42,
        name: "Ada Lovelace".into(),
        email: Some("ada@example.org".into()),
        tags: vec!["admin".into(), "math".into()],
        score: 99.5,
    }
}

fn codec(c: &mut Criterion) {
    for (label, event) in [("request", request()), ("reply", reply())] {
        let bytes = event.encode();
        c.bench_function(&format!("encode/{label}"), |b| {
            let mut buf = Vec::with_capacity(128);
            b.iter(|| {
                buf.clear();
                black_box(&event).encode_into(&mut buf);
                black_box(buf.len())
            })
        });
        c.bench_function(&format!("decode/{label}"), |b| {
            b.iter(|| Event::decode(black_box(&bytes)))
        });
        c.bench_function(&format!("decode_envelope/{label}"), |b| {
            b.iter(|| Event::decode_envelope(black_box(&bytes)))
        });
    }
}

fn serde_layer(c: &mut Criterion) {
    let user = user();
    let value = to_value(&user).expect("converts");
    c.bench_function("to_value/struct", |b| b.iter(|| to_value(black_box(&user))));
    c.bench_function("from_value/struct", |b| {
        b.iter(|| from_value::<User>(black_box(value.clone())))
    });
    c.bench_function("clone/struct_value", |b| {
        b.iter(|| black_box(&value).clone())
    });
}

criterion_group!(benches, codec, serde_layer);
criterion_main!(benches);
