//! PLAIN and CURVE through the builders and our ZAP handler: who is let in,
//! who is refused (and counted), policies replaced while connections stay,
//! and CURVE traffic encrypted on the wire.

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{IpAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use zerorpc::transport::{AccessPolicy, Authenticator, CurveKey, CurveKeyPair, Security};
use zerorpc::{Client, Pusher, Receiver, Server};
use zerorpc_test_support::{Relay, wait_until};

use super::{TEST_BOUND, bounded, start};

/// Long enough for any handshake on loopback; a refused client waits it
/// out, since ZeroMQ tells the client nothing but a closed connection.
const TIMEOUT: Duration = Duration::from_secs(2);

/// A method name that must not be seen on an encrypted wire.
const SECRET_METHOD: &str = "confidential_method_name";

struct Guarded;

#[zerorpc::service]
impl Guarded {
    /// Echoes its argument.
    pub(crate) fn confidential_method_name(&self, text: String) -> String {
        text
    }

    /// Answers.
    pub(crate) fn ping(&self) -> String {
        "pong".to_owned()
    }
}

fn client(endpoint: &str, security: Security) -> Client {
    Client::builder()
        .connect(endpoint)
        .timeout(Some(TIMEOUT))
        .security(security)
        .build()
        .expect("client")
}

fn plain_policy(user: &str, password: &str) -> AccessPolicy {
    AccessPolicy {
        plain_users: HashMap::from([(user.to_owned(), password.to_owned())]),
        ..AccessPolicy::default()
    }
}

fn plain(user: &str, password: &str) -> Security {
    Security::PlainClient {
        username: user.to_owned(),
        password: password.to_owned(),
    }
}

fn curve_policy(keys: &[CurveKey]) -> AccessPolicy {
    AccessPolicy {
        curve_keys: Some(keys.iter().copied().collect()),
        ..AccessPolicy::default()
    }
}

fn curve_client(server: &CurveKeyPair, keys: &CurveKeyPair) -> Security {
    Security::CurveClient {
        server_key: server.public(),
        keys: keys.clone(),
    }
}

/// Waits until `auth` has refused at least `n` handshakes.
fn refused_at_least(auth: &Authenticator, n: u64) -> bool {
    wait_until(TEST_BOUND, || auth.stats().refused >= n)
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_lets_in_the_right_password_and_refuses_the_rest() {
    let auth = Authenticator::new(plain_policy("alice", "s3cret")).unwrap();
    let server = start(Server::builder(Guarded).security(Security::PlainServer(auth.clone())));
    bounded(async {
        let good = client(&server.endpoint, plain("alice", "s3cret"));
        let reply: String = good.call("ping", ()).await.unwrap();
        assert_eq!(reply, "pong");
        assert!(auth.stats().accepted >= 1);

        let wrong = client(&server.endpoint, plain("alice", "guess"));
        let error = wrong.call::<String>("ping", ()).await.unwrap_err();
        assert!(error.is_timeout(), "{error:?}");
        assert!(refused_at_least(&auth, 1), "{:?}", auth.stats());

        // Read before the client exists: its handshake may come at once.
        let refused = auth.stats().refused;
        let stranger = client(&server.endpoint, plain("mallory", "s3cret"));
        let error = stranger.call::<String>("ping", ()).await.unwrap_err();
        assert!(error.is_timeout(), "{error:?}");
        assert!(refused_at_least(&auth, refused + 1), "{:?}", auth.stats());

        // No mechanism at all: ZeroMQ fails the handshake itself.
        let anonymous = client(&server.endpoint, Security::None);
        let error = anonymous.call::<String>("ping", ()).await.unwrap_err();
        assert!(error.is_timeout(), "{error:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn curve_lets_in_allowed_keys_only() {
    let server_keys = CurveKeyPair::generate().unwrap();
    let allowed = CurveKeyPair::generate().unwrap();
    let unknown = CurveKeyPair::generate().unwrap();
    let auth = Authenticator::new(curve_policy(&[allowed.public()])).unwrap();
    let server = start(Server::builder(Guarded).security(Security::CurveServer {
        keys: server_keys.clone(),
        authenticator: auth.clone(),
    }));
    bounded(async {
        let good = client(&server.endpoint, curve_client(&server_keys, &allowed));
        let reply: String = good.call("ping", ()).await.unwrap();
        assert_eq!(reply, "pong");

        let stranger = client(&server.endpoint, curve_client(&server_keys, &unknown));
        let error = stranger.call::<String>("ping", ()).await.unwrap_err();
        assert!(error.is_timeout(), "{error:?}");
        assert!(refused_at_least(&auth, 1), "{:?}", auth.stats());

        // Expecting another server's key: the handshake itself fails.
        let impostor = CurveKeyPair::generate().unwrap();
        let misled = client(&server.endpoint, curve_client(&impostor, &allowed));
        let error = misled.call::<String>("ping", ()).await.unwrap_err();
        assert!(error.is_timeout(), "{error:?}");

        let anonymous = client(&server.endpoint, Security::None);
        let error = anonymous.call::<String>("ping", ()).await.unwrap_err();
        assert!(error.is_timeout(), "{error:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn addresses_not_allowed_are_refused() {
    let server_keys = CurveKeyPair::generate().unwrap();
    let keys = CurveKeyPair::generate().unwrap();
    // Only another loopback address is allowed; we connect from 127.0.0.1.
    let other: IpAddr = "127.0.0.2".parse().unwrap();
    let auth = Authenticator::new(AccessPolicy {
        addresses: Some(HashSet::from([other])),
        ..AccessPolicy::default()
    })
    .unwrap();
    let server = start(Server::builder(Guarded).security(Security::CurveServer {
        keys: server_keys.clone(),
        authenticator: auth.clone(),
    }));
    bounded(async {
        let refused = client(&server.endpoint, curve_client(&server_keys, &keys));
        let error = refused.call::<String>("ping", ()).await.unwrap_err();
        assert!(error.is_timeout(), "{error:?}");
        assert!(refused_at_least(&auth, 1), "{:?}", auth.stats());

        let mut policy = auth.policy();
        policy
            .addresses
            .as_mut()
            .unwrap()
            .insert("127.0.0.1".parse().unwrap());
        auth.set_policy(policy);
        let allowed = client(&server.endpoint, curve_client(&server_keys, &keys));
        let reply: String = allowed.call("ping", ()).await.unwrap();
        assert_eq!(reply, "pong");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_policy_applies_to_new_connections_and_keeps_the_others() {
    let server_keys = CurveKeyPair::generate().unwrap();
    let first = CurveKeyPair::generate().unwrap();
    let second = CurveKeyPair::generate().unwrap();
    let auth = Authenticator::new(curve_policy(&[first.public()])).unwrap();
    let server = start(Server::builder(Guarded).security(Security::CurveServer {
        keys: server_keys.clone(),
        authenticator: auth.clone(),
    }));
    bounded(async {
        let connected = client(&server.endpoint, curve_client(&server_keys, &first));
        let reply: String = connected.call("ping", ()).await.unwrap();
        assert_eq!(reply, "pong");

        // Rotation: the second key in, the first out.
        auth.set_policy(curve_policy(&[second.public()]));
        let rotated = client(&server.endpoint, curve_client(&server_keys, &second));
        let reply: String = rotated.call("ping", ()).await.unwrap();
        assert_eq!(reply, "pong");
        // The first client's connection was let in before: it stays.
        let reply: String = connected.call("ping", ()).await.unwrap();
        assert_eq!(reply, "pong");
        // A new connection with the first key is refused.
        let late = client(&server.endpoint, curve_client(&server_keys, &first));
        let error = late.call::<String>("ping", ()).await.unwrap_err();
        assert!(error.is_timeout(), "{error:?}");
        assert!(refused_at_least(&auth, 1), "{:?}", auth.stats());
    })
    .await;
}

/// A ZMTP 3.0 greeting offering the NULL mechanism, as a client's.
fn null_greeting() -> [u8; 64] {
    let mut greeting = [0u8; 64];
    greeting[0] = 0xff;
    greeting[9] = 0x7f;
    greeting[10] = 3;
    greeting[12..16].copy_from_slice(b"NULL");
    greeting
}

#[test]
fn a_handshake_zeromq_fails_by_itself_is_counted_too() {
    // A peer offering another mechanism never reaches the ZAP handler;
    // the server socket's monitor sees the failure. A raw TCP peer that
    // waits for the server to close makes the failure certain to be the
    // server's, whatever the timing.
    let server_keys = CurveKeyPair::generate().unwrap();
    let auth = Authenticator::new(AccessPolicy::default()).unwrap();
    let server = start(Server::builder(Guarded).security(Security::CurveServer {
        keys: server_keys,
        authenticator: auth.clone(),
    }));
    let address = server.endpoint.trim_start_matches("tcp://");
    let mut peer = TcpStream::connect(address).unwrap();
    peer.set_read_timeout(Some(TEST_BOUND)).unwrap();
    peer.write_all(&null_greeting()).unwrap();
    // Until the server closes (or resets) the connection once it saw our
    // greeting.
    let mut received = Vec::new();
    let _ = peer.read_to_end(&mut received);
    assert!(refused_at_least(&auth, 1), "{:?}", auth.stats());
    assert_eq!(auth.stats().accepted, 0);
}

/// What the relay carried while `security`'s client called the secret
/// method through it.
async fn wire_of_a_call(server_security: Security, client_security: Security) -> Vec<u8> {
    let server = start(Server::builder(Guarded).security(server_security));
    let relay = Relay::start(&server.endpoint);
    let client = client(&relay.endpoint(), client_security);
    let reply: String = bounded(client.call(SECRET_METHOD, ("the payload",)))
        .await
        .unwrap();
    assert_eq!(reply, "the payload");
    relay.recorded()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread")]
async fn curve_traffic_shows_no_method_name_or_argument() {
    // The same call without security shows both: the relay sees the wire.
    let clear = wire_of_a_call(Security::None, Security::None).await;
    assert!(contains(&clear, SECRET_METHOD));
    assert!(contains(&clear, "the payload"));

    let server_keys = CurveKeyPair::generate().unwrap();
    let keys = CurveKeyPair::generate().unwrap();
    let auth = Authenticator::new(curve_policy(&[keys.public()])).unwrap();
    let secured = Security::CurveServer {
        keys: server_keys.clone(),
        authenticator: auth,
    };
    let encrypted = wire_of_a_call(secured, curve_client(&server_keys, &keys)).await;
    assert!(!encrypted.is_empty());
    assert!(!contains(&encrypted, SECRET_METHOD));
    assert!(!contains(&encrypted, "the payload"));
    assert!(
        contains(&encrypted, "CURVE"),
        "the ZMTP greeting names the mechanism"
    );
}

struct Sink(Arc<Mutex<Vec<String>>>);

#[zerorpc::service]
impl Sink {
    /// Records what was pushed.
    pub(crate) fn note(&self, text: String) {
        self.0.lock().unwrap().push(text);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn events_sockets_take_security_too() {
    let server_keys = CurveKeyPair::generate().unwrap();
    let keys = CurveKeyPair::generate().unwrap();
    let auth = Authenticator::new(curve_policy(&[keys.public()])).unwrap();
    let received = Arc::new(Mutex::new(Vec::<String>::new()));
    let puller = Arc::new(
        Receiver::puller_builder(Sink(received.clone()))
            .security(Security::CurveServer {
                keys: server_keys.clone(),
                authenticator: auth.clone(),
            })
            .build()
            .unwrap(),
    );
    let endpoint = puller.bind("tcp://127.0.0.1:*").unwrap();
    let running = tokio::spawn({
        let puller = puller.clone();
        async move { puller.run().await }
    });
    let pusher = Pusher::builder()
        .connect(endpoint)
        .security(curve_client(&server_keys, &keys))
        .build()
        .unwrap();
    // A PUSH socket keeps the event until the connection is up.
    pusher.emit("note", ("hello",)).unwrap();
    let arrived = wait_until(TEST_BOUND, || !received.lock().unwrap().is_empty());
    puller.close();
    bounded(running).await.unwrap().unwrap();
    assert!(arrived, "nothing arrived; {:?}", auth.stats());
    assert_eq!(*received.lock().unwrap(), ["hello"]);
    assert!(auth.stats().accepted >= 1);
}
