//! The message size limit of the client and server builders: a larger
//! frame makes ZeroMQ drop the sender's connection, so the call gets no
//! reply and fails with its timeout; smaller calls are not affected; a
//! client whose connection was closed for an oversized reply connects
//! again. A
//! client does not send a request over its own limit, which it takes its
//! servers to share.

use std::time::Duration;

use zerorpc::{Client, Server};

use super::{bounded, start};

const LIMIT: u64 = 1024;
const TIMEOUT: Duration = Duration::from_millis(500);

struct Sizes;

#[zerorpc::service]
impl Sizes {
    /// The length of `text`.
    pub(crate) fn length(&self, text: String) -> usize {
        text.len()
    }

    /// A text of `n` bytes.
    pub(crate) fn text(&self, n: usize) -> String {
        "x".repeat(n)
    }
}

fn client(endpoint: &str, max_message_size: Option<u64>) -> Client {
    Client::builder()
        .connect(endpoint)
        .timeout(Some(TIMEOUT))
        .max_message_size(max_message_size)
        .build()
        .expect("client")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_with_a_size_limit_drops_a_larger_request() {
    let server = start(Server::builder(Sizes).max_message_size(Some(LIMIT)));
    let client = client(&server.endpoint, None);
    bounded(async {
        let small: usize = client.call("length", ("x".repeat(10),)).await.unwrap();
        assert_eq!(small, 10);
        let error = client
            .call::<usize>("length", ("x".repeat(4 * LIMIT as usize),))
            .await
            .expect_err("the request is over the server's limit");
        assert!(error.is_timeout(), "{error:?}");
        // The server counts the connection it dropped.
        for _ in 0..200 {
            if server.stats().connections_closed > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(server.stats().connections_closed, 1);
        // The client's socket reconnects: its next call is served.
        let small: usize = client.call("length", ("x".repeat(10),)).await.unwrap();
        assert_eq!(small, 10);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_with_a_size_limit_drops_a_larger_reply() {
    let server = start(Server::builder(Sizes));
    let limited = client(&server.endpoint, Some(LIMIT));
    let unlimited = client(&server.endpoint, None);
    bounded(async {
        let small: String = limited.call("text", (10,)).await.unwrap();
        assert_eq!(small.len(), 10);
        let big = 4 * LIMIT as usize;
        let error = limited
            .call::<String>("text", (big,))
            .await
            .expect_err("the reply is over the client's limit");
        assert!(error.is_timeout(), "{error:?}");
        let reply: String = unlimited.call("text", (big,)).await.unwrap();
        assert_eq!(reply.len(), big);
        // libzmq closed that connection for good; the client notices,
        // counts it and connects again, so its next call is served.
        for _ in 0..200 {
            if limited.stats().connections_closed > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(limited.stats().connections_closed, 1);
        let small: String = limited.call("text", (10,)).await.unwrap();
        assert_eq!(small.len(), 10);
        assert_eq!(unlimited.stats().connections_closed, 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_over_the_clients_own_limit_fails_before_sending() {
    let server = start(Server::builder(Sizes));
    let limited = client(&server.endpoint, Some(LIMIT));
    bounded(async {
        let error = limited
            .call::<usize>("length", ("x".repeat(4 * LIMIT as usize),))
            .await
            .expect_err("the request is over the client's own limit");
        assert!(error.is_transport(), "{error:?}");
        let text = error.to_string();
        assert!(
            text.contains("over the message size limit of 1024 bytes"),
            "{text}"
        );
        // Nothing was sent, so the connection is intact.
        let small: usize = limited.call("length", ("x".repeat(10),)).await.unwrap();
        assert_eq!(small, 10);
    })
    .await;
}
