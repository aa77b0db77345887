//! The error type: kinds and helpers, how remote errors print, the source
//! chains of local failures, and bad endpoints.

use std::error::Error as _;
use std::time::Duration;

use zerorpc::{Client, Error, ErrorKind, RemoteError, Server};

use super::{bounded, start};

const HEARTBEAT: Duration = Duration::from_millis(200);

struct Faulty;

#[zerorpc::service]
impl Faulty {
    /// Fails like a Python service would.
    pub(crate) fn fail(&self) -> Result<(), RemoteError> {
        Err(RemoteError::new(
            "ValueError",
            "bad value!",
            "Traceback (most recent call last):\n  File \"server.py\", line 3, in fail\nValueError: bad value!\n",
        ))
    }

    /// Returns a string.
    pub(crate) fn text(&self) -> String {
        "not a number".to_owned()
    }

    /// Streams two words.
    pub(crate) fn words(&self) -> impl Iterator<Item = String> + use<> {
        ["one", "two"].into_iter().map(str::to_owned)
    }

    /// Sleeps.
    pub(crate) async fn slow(&self, seconds: f64) -> f64 {
        tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
        seconds
    }

    /// Places an order; answers the quantity of its lines.
    pub(crate) fn place(&self, order: Order) -> u32 {
        order.lines.iter().map(|line| line.qty).sum()
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct Order {
    lines: Vec<Line>,
}

#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct Line {
    qty: u32,
}

/// Display of an error and every source below it.
fn chain(error: &Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn only_kind(error: &Error) -> ErrorKind {
    let flags = [
        error.is_remote(),
        error.is_timeout(),
        error.is_lost_remote(),
        error.is_transport(),
        error.is_codec(),
        error.is_io(),
        error.is_usage(),
    ];
    assert_eq!(
        flags.iter().filter(|f| **f).count(),
        1,
        "exactly one is_* holds for {error:?}"
    );
    error.kind()
}

#[tokio::test(flavor = "multi_thread")]
async fn remote_error_prints_like_a_traceback() {
    let server = start(Server::builder(Faulty));
    let client = Client::connect(&server.endpoint).unwrap();
    bounded(async {
        let error = client.call::<()>("fail", ()).await.unwrap_err();
        assert_eq!(only_kind(&error), ErrorKind::Remote);
        let remote = error.remote().unwrap();
        assert_eq!((remote.name(), remote.message()), ("ValueError", "bad value!"));
        assert_eq!(
            error.to_string(),
            "Traceback (most recent call last):\n  File \"server.py\", line 3, in fail\nValueError: bad value!"
        );
        assert!(error.source().is_none());
    })
    .await;
    // Without a traceback, zerorpc-python prints `name: message`.
    let bare = Error::from(RemoteError::new("KeyError", "'k'", ""));
    assert_eq!(bare.to_string(), "KeyError: 'k'");
    // An error raised here rather than relayed: its traceback is the line a
    // Python traceback would end with.
    let summarised = RemoteError::with_summary("KeyError", "'k'");
    assert_eq!(summarised.traceback(), "KeyError: 'k'\n");
    assert_eq!(Error::from(summarised).to_string(), "KeyError: 'k'");
}

#[tokio::test(flavor = "multi_thread")]
async fn unconvertible_reply_is_a_codec_error_with_a_source() {
    let server = start(Server::builder(Faulty));
    let client = Client::connect(&server.endpoint).unwrap();
    bounded(async {
        let error = client.call::<i64>("text", ()).await.unwrap_err();
        assert_eq!(only_kind(&error), ErrorKind::Codec);
        assert!(error.remote().is_none());
        assert!(
            error.source().is_some(),
            "the conversion failure is the source: {error:?}"
        );
        // The method, then the cause, each once.
        assert_eq!(
            chain(&error),
            "result of text: invalid type: string \"not a number\", expected i64"
        );
        let mut items = client.stream::<i64>("words", ()).await.unwrap();
        let item = futures::StreamExt::next(&mut items).await.unwrap();
        let error = item.unwrap_err();
        assert_eq!(only_kind(&error), ErrorKind::Codec);
        assert_eq!(
            chain(&error),
            "item of the stream of words: invalid type: string \"one\", expected i64"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_argument_that_does_not_convert_names_the_method_argument_and_field() {
    let server = start(Server::builder(Faulty));
    let client = Client::connect(&server.endpoint).unwrap();
    bounded(async {
        let order = serde_json::json!({"lines": [{"qty": 1}, {"qty": "two"}]});
        let error = client.call::<u32>("place", (order,)).await.unwrap_err();
        let remote = error.remote().expect("a remote error");
        assert_eq!(remote.name(), "TypeError");
        assert_eq!(
            remote.message(),
            r#"place() argument 'order': field 'lines[1].qty': invalid type: string "two", expected u32"#
        );
        // A whole argument of the wrong type has no field to name.
        let error = client.call::<u32>("place", ("{}",)).await.unwrap_err();
        assert_eq!(
            error.remote().expect("a remote error").message(),
            r#"place() argument 'order': invalid type: string "{}", expected struct Order"#
        );
        let order = serde_json::json!({"lines": [{"qty": 1}, {"qty": 2}]});
        assert_eq!(client.call::<u32>("place", (order,)).await.unwrap(), 3);
    })
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn run_inside_a_runtime_is_an_error_saying_to_serve() {
    let server = Server::builder(Faulty)
        .bind("tcp://127.0.0.1:*")
        .build()
        .unwrap();
    let error = server.run().unwrap_err();
    assert_eq!(only_kind(&error), ErrorKind::Usage);
    assert!(
        error.to_string().contains("use `server.serve().await`"),
        "{error}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_blocking_call_on_the_thread_driving_the_servers_runtime_fails_at_once() {
    let server = Server::builder(Faulty)
        .bind("tcp://127.0.0.1:*")
        .build()
        .unwrap();
    let endpoint = server.endpoints()[0].clone();
    tokio::spawn(server.serve());
    // Were the check missing, the call would end with a timeout rather
    // than hang the test.
    let client = Client::builder()
        .connect(&endpoint)
        .timeout(Some(Duration::from_secs(10)))
        .build()
        .unwrap();
    let blocking = client.blocking();

    // Before the server's task has first run, as after.
    for _ in 0..2 {
        let error = blocking.call::<String>("text", ()).unwrap_err();
        assert_eq!(only_kind(&error), ErrorKind::Usage);
        assert!(error.to_string().contains("would wait for ever"), "{error}");
        let typed = FaultyBlockingClient::new(blocking.clone());
        assert_eq!(only_kind(&typed.text().unwrap_err()), ErrorKind::Usage);
        tokio::task::yield_now().await;
    }

    // The same calls from another thread are answered, and so are async
    // calls on this one.
    let text = bounded(tokio::task::spawn_blocking(move || {
        blocking.call::<String>("text", ())
    }))
    .await
    .unwrap()
    .unwrap();
    assert_eq!(text, "not a number");
    let typed = FaultyClient::new(client);
    assert_eq!(bounded(typed.text()).await.unwrap(), "not a number");
}

#[tokio::test(flavor = "multi_thread")]
async fn timeout_is_its_own_kind() {
    let server = start(Server::builder(Faulty));
    let client = Client::builder()
        .connect(&server.endpoint)
        .timeout(Some(Duration::from_millis(200)))
        .build()
        .unwrap();
    bounded(async {
        let error = client.call::<f64>("slow", (5.0,)).await.unwrap_err();
        assert_eq!(only_kind(&error), ErrorKind::Timeout);
        assert_eq!(
            error.to_string(),
            "timeout after 0.2s, when calling remote method slow"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn stopped_server_gives_a_lost_remote_error() {
    let server = start(Server::builder(Faulty).heartbeat(Some(HEARTBEAT)));
    let client = Client::builder()
        .connect(&server.endpoint)
        .heartbeat(Some(HEARTBEAT))
        .timeout(None)
        .build()
        .unwrap();
    bounded(async {
        let call = tokio::spawn({
            let client = client.clone();
            async move { client.call::<f64>("slow", (60.0,)).await }
        });
        // Let the call reach the server, then take the server away.
        tokio::time::sleep(HEARTBEAT * 2).await;
        server.stop().unwrap();
        let error = call.await.unwrap().unwrap_err();
        assert_eq!(only_kind(&error), ErrorKind::LostRemote);
        assert_eq!(error.to_string(), "lost remote after 0.4s heartbeat");
    })
    .await;
}

#[test]
fn endpoint_in_use_is_a_transport_error_with_its_cause() {
    let first = start(Server::builder(Faulty));
    let error = Server::builder(Faulty)
        .bind(&first.endpoint)
        .build()
        .unwrap_err();
    assert_eq!(only_kind(&error), ErrorKind::Transport);
    assert!(
        error.source().is_some(),
        "the ZeroMQ failure is the source: {error:?}"
    );
    assert!(
        chain(&error).contains(&first.endpoint),
        "the endpoint is named: {}",
        chain(&error)
    );
    let cause = error.source().unwrap().to_string();
    assert!(
        !error.to_string().contains(&cause),
        "the cause is told once, by the source: {}",
        chain(&error)
    );
}

#[test]
fn bad_endpoints_give_clear_errors() {
    for endpoint in ["nonsense", "foo://x", "tcp://", ""] {
        let error = Client::connect(endpoint).expect_err("a bad endpoint is refused");
        assert_eq!(
            only_kind(&error),
            ErrorKind::Transport,
            "{endpoint:?}: {error:?}"
        );
        let text = chain(&error);
        assert!(
            text.contains(&format!("{endpoint:?}")),
            "{endpoint:?} is named in {text:?}"
        );
        // Printing the error alone already says what is wrong.
        assert!(
            error.to_string().contains(&format!("{endpoint:?}")),
            "{endpoint:?} is named in {error}"
        );

        let error = Server::builder(Faulty)
            .bind(endpoint)
            .build()
            .expect_err("a bad endpoint is refused");
        assert_eq!(
            only_kind(&error),
            ErrorKind::Transport,
            "{endpoint:?}: {error:?}"
        );
        assert!(
            chain(&error).contains(&format!("{endpoint:?}")),
            "{endpoint:?} is named in {}",
            chain(&error)
        );
    }
}

#[test]
fn a_name_without_its_resolver_is_refused_naming_the_scheme() {
    let error = Client::connect("dns:users.svc.example.test").expect_err("no dns resolver");
    assert_eq!(only_kind(&error), ErrorKind::Transport, "{error:?}");
    let text = error.to_string();
    assert!(
        text.contains("\"dns:users.svc.example.test\"")
            && text.contains("no resolver for dns: names"),
        "{text}"
    );
    let error = Server::builder(Faulty)
        .bind("dns:users.svc.example.test")
        .build()
        .expect_err("no dns resolver");
    assert!(
        error.to_string().contains("no resolver for dns: names"),
        "{error}"
    );
}

#[test]
fn a_server_with_no_endpoint_is_an_error_saying_what_to_do() {
    let error = Server::builder(Faulty).build().unwrap_err();
    assert_eq!(only_kind(&error), ErrorKind::Transport);
    assert_eq!(
        error.to_string(),
        "a server needs an endpoint: call bind (or connect, to join a hub) before build"
    );
}
