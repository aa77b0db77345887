//! Bytes both ways: what a Rust service answers as `Vec<u8>` or
//! `zerorpc::Bytes` reaches Python as `bytes`, what Python sends as
//! `bytes` (or str, or a list of ints) is accepted, and Python's `bytes`
//! reach a typed client's `Vec<u8>` and `zerorpc::Bytes`.

use zerorpc::{Bytes, Client};

use super::{RustServer, STARTUP, python_server, run_python_client};
use crate::behaviour::bounded;

struct Blobs;

/// A struct sends a `Vec<u8>` field as bytes only through `serde_bytes`.
#[derive(serde::Serialize, serde::Deserialize)]
struct Packet {
    #[serde(with = "zerorpc::serde_bytes")]
    data: Vec<u8>,
    list: Vec<u8>,
}

#[zerorpc::service]
impl Blobs {
    /// The bytes 0..n.
    pub(crate) fn blob(&self, n: u8) -> Vec<u8> {
        (0..n).collect()
    }

    /// The bytes reversed.
    pub(crate) fn reversed(&self, data: Bytes) -> Bytes {
        Bytes::from(data.iter().rev().copied().collect::<Vec<u8>>())
    }

    /// How many bytes.
    pub(crate) fn length(&self, data: Vec<u8>) -> usize {
        data.len()
    }

    /// Streams one single-byte chunk per byte of 0..n.
    pub(crate) fn chunks(&self, n: u8) -> impl Iterator<Item = Vec<u8>> + use<> {
        (0..n).map(|i| vec![i])
    }

    pub(crate) fn packet(&self) -> Packet {
        Packet {
            data: vec![1, 2],
            list: vec![1, 2],
        }
    }
}

const PY_BYTES_CLIENT: &str = r#"
client = zerorpc.Client(timeout=10)
client.connect(sys.argv[1])
emit({
    "blob": typed(client.blob(3)),
    "reversed_bytes": typed(client.reversed(b"\x01\x02")),
    "reversed_str": typed(client.reversed("ab")),
    "reversed_list": typed(client.reversed([1, 2])),
    "length": client.length(b"abc"),
    "length_of_list": client.length([1, 2]),
    "chunks": [typed(chunk) for chunk in client.chunks(2)],
    "packet": typed(client.packet()),
})
"#;

#[test]
fn python_receives_bytes_and_sends_them() {
    let server = RustServer::start(Blobs, None);
    let Some((out, _peer)) = run_python_client(PY_BYTES_CLIENT, &[server.endpoint()], STARTUP)
    else {
        return;
    };
    let expected = serde_json::json!({
        "blob": ["bytes", r"b'\x00\x01\x02'"],
        "reversed_bytes": ["bytes", r"b'\x02\x01'"],
        "reversed_str": ["bytes", "b'ba'"],
        "reversed_list": ["bytes", r"b'\x02\x01'"],
        "length": 3,
        "length_of_list": 2,
        "chunks": [["bytes", r"b'\x00'"], ["bytes", r"b'\x01'"]],
        "packet": ["dict", r"{'data': b'\x01\x02', 'list': [1, 2]}"],
    });
    assert_eq!(out, expected);
}

/// Part of the Python service of `PY_SERVER`, as Rust sees it.
#[zerorpc::client]
trait PythonBytes {
    #[zerorpc(name = "sample")]
    fn sample_bytes(&self, kind: String) -> Bytes;

    #[zerorpc(name = "sample")]
    fn sample_vec(&self, kind: String) -> Vec<u8>;

    /// Python's type name and `repr` of the value.
    fn describe(&self, value: Vec<u8>) -> (String, String);
}

#[tokio::test]
async fn bytes_from_python_reach_a_typed_client() {
    let Some((_peer, endpoint)) = python_server(5.0) else {
        return;
    };
    let python = PythonBytesClient::connect(&endpoint).unwrap();
    let bytes = bounded(async {
        let bytes = python.sample_bytes("bin").await.unwrap();
        assert_eq!(python.sample_vec("bin").await.unwrap(), [0, 1, 255]);
        // A typed client sends a `Vec<u8>` parameter as Python `bytes`.
        assert_eq!(
            python.describe(&[0, 1, 255]).await.unwrap(),
            ("bytes".to_owned(), r"b'\x00\x01\xff'".to_owned())
        );
        bytes
    })
    .await;
    assert_eq!(bytes.as_slice(), [0, 1, 255]);

    let client = Client::connect(&endpoint).unwrap();
    let untyped: Bytes = client.call("sample", ("bin",)).await.unwrap();
    assert_eq!(untyped.into_vec(), [0, 1, 255]);
}
