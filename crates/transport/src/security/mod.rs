//! Authentication: CURVE keys and certificates, and our ZAP handler.
//!
//! ZeroMQ asks a ZAP handler (RFC 27: a REP socket bound to
//! `inproc://zeromq.zap.01` in the socket's context) whether to let in each
//! PLAIN or CURVE connection, once, when its handshake completes. We run one
//! handler per process, in [`context`](crate::context), on a thread of its
//! own. Each [`Authenticator`] has a ZAP domain of its own, which the
//! server endpoints it guards carry (`ZMQ_ZAP_DOMAIN`), so servers of one
//! process can have different policies. A policy replaced with
//! [`Authenticator::set_policy`] applies to the next handshakes; the
//! connections already let in are not touched, since ZeroMQ asks only once.
//! Handshakes ZeroMQ fails before asking (another mechanism, the wrong
//! server key) are seen by a socket monitor (`handshakes.rs`), and logged
//! and counted too.

mod files;
mod handshakes;
mod keys;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};

pub use files::{PolicyFiles, read_key_pair, read_public_key};
pub(crate) use handshakes::ServedWatch;
pub use keys::{CurveKey, CurveKeyPair, zcert_public_key};

use crate::{Error, context};

/// Who an [`Authenticator`] lets in.
///
/// Every condition must hold: the peer's address is allowed, and its
/// credentials are (a known PLAIN user with the right password, or an
/// allowed CURVE key).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AccessPolicy {
    /// The CURVE client public keys let in; `None` lets in every client
    /// that completes the CURVE handshake (which needs the server's public
    /// key).
    pub curve_keys: Option<HashSet<CurveKey>>,
    /// PLAIN users and their passwords. A PLAIN client is let in only with
    /// one of these: a PLAIN server with none refuses everyone.
    pub plain_users: HashMap<String, String>,
    /// The peer IP addresses let in; `None` lets in every address.
    pub addresses: Option<HashSet<IpAddr>>,
}

impl fmt::Debug for AccessPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut users: Vec<&String> = self.plain_users.keys().collect();
        users.sort();
        f.debug_struct("AccessPolicy")
            .field("curve_keys", &self.curve_keys)
            .field("plain_users", &users)
            .field("addresses", &self.addresses)
            .finish()
    }
}

/// What an [`Authenticator`] decided so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuthStats {
    /// Handshakes let in.
    pub accepted: u64,
    /// Handshakes refused (each one also logged, with the peer's address).
    pub refused: u64,
}

/// Decides who may connect to the server endpoints that use it, through
/// our ZAP handler (see [`Security::PlainServer`](crate::Security) and
/// `CurveServer`).
///
/// Clones share one policy and one set of counters. Replacing the policy
/// ([`set_policy`](Authenticator::set_policy)) applies to the next
/// handshakes and drops no connection.
#[derive(Clone)]
pub struct Authenticator {
    shared: Arc<AuthShared>,
}

struct AuthShared {
    domain: String,
    policy: RwLock<AccessPolicy>,
    accepted: AtomicU64,
    refused: AtomicU64,
}

impl Authenticator {
    /// An authenticator applying `policy`; starts the process's ZAP
    /// handler if it is not running yet.
    pub fn new(policy: AccessPolicy) -> Result<Authenticator, Error> {
        let handler = handler()?;
        let mut domains = handler.lock().unwrap_or_else(|e| e.into_inner());
        domains.next += 1;
        let shared = Arc::new(AuthShared {
            domain: format!("zerorpc-{}", domains.next),
            policy: RwLock::new(policy),
            accepted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        });
        // Forget the domains of authenticators that are gone.
        domains.live.retain(|_, auth| auth.strong_count() > 0);
        domains
            .live
            .insert(shared.domain.clone(), Arc::downgrade(&shared));
        Ok(Authenticator { shared })
    }

    /// Replaces the policy, for the handshakes to come; connections already
    /// let in stay.
    pub fn set_policy(&self, policy: AccessPolicy) {
        *self
            .shared
            .policy
            .write()
            .unwrap_or_else(|e| e.into_inner()) = policy;
    }

    /// The policy in force.
    pub fn policy(&self) -> AccessPolicy {
        self.shared
            .policy
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Handshakes accepted and refused so far.
    pub fn stats(&self) -> AuthStats {
        AuthStats {
            accepted: self.shared.accepted.load(Ordering::Relaxed),
            refused: self.shared.refused.load(Ordering::Relaxed),
        }
    }

    /// The ZAP domain that server sockets guarded by this authenticator
    /// must carry (`ZMQ_ZAP_DOMAIN`): for ZeroMQ sockets of
    /// [`context`](crate::context) that are not ours, such as a hub's.
    pub fn zap_domain(&self) -> &str {
        &self.shared.domain
    }
}

impl PartialEq for Authenticator {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }
}

impl Eq for Authenticator {}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("domain", &self.shared.domain)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// The authenticators the handler serves, by ZAP domain.
#[derive(Default)]
struct Domains {
    next: u64,
    live: HashMap<String, Weak<AuthShared>>,
}

const ZAP_ENDPOINT: &str = "inproc://zeromq.zap.01";

/// The ZAP domain of NULL endpoints on a socket that had another domain
/// before (libzmq cannot empty it): NULL handshakes there are let through.
pub(crate) const NULL_DOMAIN: &str = "zerorpc-null";

/// The running handler's table of domains; starts the handler the first
/// time. A failure to start is returned each time, not kept, so that a
/// later call may succeed.
fn handler() -> Result<&'static Mutex<Domains>, Error> {
    static DOMAINS: OnceLock<Arc<Mutex<Domains>>> = OnceLock::new();
    static START: Mutex<()> = Mutex::new(());
    if let Some(domains) = DOMAINS.get() {
        return Ok(domains);
    }
    let _starting = START.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(domains) = DOMAINS.get() {
        return Ok(domains);
    }
    let socket = context()
        .socket(zmq::REP)
        .map_err(|e| Error::zmq("cannot create the ZAP handler's socket", e))?;
    // Bound before any server socket asks: ZeroMQ looks for the handler when
    // a handshake starts.
    socket
        .bind(ZAP_ENDPOINT)
        .map_err(|e| Error::zmq(format!("cannot bind the ZAP handler to {ZAP_ENDPOINT}"), e))?;
    let domains = Arc::new(Mutex::new(Domains::default()));
    let served = Arc::clone(&domains);
    std::thread::Builder::new()
        .name("zerorpc-zap".into())
        .spawn(move || serve(&socket, &served))
        .map_err(|e| Error::io("cannot start the ZAP handler's thread", e))?;
    Ok(DOMAINS.get_or_init(|| domains))
}

/// Answers ZAP requests for as long as the process runs.
fn serve(socket: &zmq::Socket, domains: &Mutex<Domains>) {
    loop {
        let request = match socket.recv_multipart(0) {
            Ok(request) => request,
            Err(zmq::Error::ETERM) => return,
            Err(_) => continue,
        };
        let reply = answer(&request, domains);
        // A REP socket must answer before it can receive again; if ZeroMQ
        // cannot take the reply, the handshake that asked fails on its own.
        if let Err(e) = socket.send_multipart(reply, 0) {
            tracing::warn!("the ZAP handler could not answer: {e}");
        }
    }
}

/// The reply to one request, RFC 27: version, request id, status code,
/// status text, user id, metadata.
fn answer(request: &[Vec<u8>], domains: &Mutex<Domains>) -> Vec<Vec<u8>> {
    let reply = |id: &[u8], code: &str, text: &str, user: &str| {
        vec![
            b"1.0".to_vec(),
            id.to_vec(),
            code.as_bytes().to_vec(),
            text.as_bytes().to_vec(),
            user.as_bytes().to_vec(),
            Vec::new(),
        ]
    };
    let (Some(version), Some(id)) = (request.first(), request.get(1)) else {
        return reply(b"", "500", "malformed ZAP request", "");
    };
    if version.as_slice() != b"1.0" || request.len() < 6 {
        return reply(id, "500", "malformed ZAP request", "");
    }
    let text = |frame: &[u8]| String::from_utf8_lossy(frame).into_owned();
    let domain = text(&request[2]);
    let address = text(&request[3]);
    let mechanism = text(&request[5]);
    let credentials = &request[6..];
    if domain == NULL_DOMAIN && mechanism == "NULL" {
        return reply(id, "200", "OK", "");
    }
    let auth = domains
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .live
        .get(&domain)
        .and_then(Weak::upgrade);
    let Some(auth) = auth else {
        tracing::warn!(
            peer = %address,
            mechanism = %mechanism,
            "authentication refused: no authenticator for ZAP domain {domain:?}"
        );
        return reply(id, "400", "unknown domain", "");
    };
    let policy = auth.policy.read().unwrap_or_else(|e| e.into_inner());
    match decide(&policy, &address, &mechanism, credentials) {
        Ok(user) => {
            auth.accepted.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(peer = %address, mechanism = %mechanism, user = %user, "authenticated");
            reply(id, "200", "OK", &user)
        }
        Err(why) => {
            auth.refused.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(peer = %address, mechanism = %mechanism, "authentication refused: {why}");
            reply(id, "400", &why, "")
        }
    }
}

/// The user id of a peer let in, or why it is refused.
fn decide(
    policy: &AccessPolicy,
    address: &str,
    mechanism: &str,
    credentials: &[Vec<u8>],
) -> Result<String, String> {
    if let Some(allowed) = &policy.addresses {
        let known = address
            .parse::<IpAddr>()
            .is_ok_and(|ip| allowed.contains(&ip) || allowed.contains(&ip.to_canonical()));
        if !known {
            return Err(format!("address {address} is not allowed"));
        }
    }
    match (mechanism, credentials) {
        ("PLAIN", [user, password]) => {
            let user = String::from_utf8_lossy(user);
            match policy.plain_users.get(user.as_ref()) {
                Some(expected) if same(expected.as_bytes(), password) => Ok(user.into_owned()),
                Some(_) => Err(format!("wrong password for user {user:?}")),
                None => Err(format!("unknown user {user:?}")),
            }
        }
        ("CURVE", [key]) => {
            let key = <[u8; 32]>::try_from(key.as_slice())
                .map(CurveKey::from_bytes)
                .map_err(|_| "malformed CURVE key".to_owned())?;
            match &policy.curve_keys {
                Some(allowed) if !allowed.contains(&key) => {
                    Err(format!("CURVE key {key} is not allowed"))
                }
                _ => Ok(key.to_z85()),
            }
        }
        _ => Err(format!("mechanism {mechanism} is not served here")),
    }
}

/// Compares secrets in a time that does not depend on where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> AccessPolicy {
        AccessPolicy {
            plain_users: HashMap::from([("alice".to_owned(), "s3cret".to_owned())]),
            ..AccessPolicy::default()
        }
    }

    fn plain(user: &str, password: &str) -> Vec<Vec<u8>> {
        vec![user.as_bytes().to_vec(), password.as_bytes().to_vec()]
    }

    #[test]
    fn plain_needs_a_known_user_and_the_same_password() {
        let policy = policy();
        let ok = decide(&policy, "127.0.0.1", "PLAIN", &plain("alice", "s3cret"));
        assert_eq!(ok, Ok("alice".to_owned()));
        let wrong = decide(&policy, "127.0.0.1", "PLAIN", &plain("alice", "s3cre"));
        assert_eq!(wrong, Err("wrong password for user \"alice\"".to_owned()));
        let unknown = decide(&policy, "127.0.0.1", "PLAIN", &plain("bob", "s3cret"));
        assert_eq!(unknown, Err("unknown user \"bob\"".to_owned()));
    }

    #[test]
    fn curve_keys_are_checked_only_against_a_list() {
        let key = CurveKeyPair::generate().unwrap().public();
        let credentials = vec![key.as_bytes().to_vec()];
        let open = AccessPolicy::default();
        assert_eq!(
            decide(&open, "10.0.0.1", "CURVE", &credentials),
            Ok(key.to_z85())
        );
        let listed = AccessPolicy {
            curve_keys: Some(HashSet::new()),
            ..AccessPolicy::default()
        };
        let refused = decide(&listed, "10.0.0.1", "CURVE", &credentials).unwrap_err();
        assert!(refused.contains(&key.to_z85()), "{refused}");
        let short = decide(&open, "10.0.0.1", "CURVE", &[vec![1, 2, 3]]);
        assert_eq!(short, Err("malformed CURVE key".to_owned()));
    }

    #[test]
    fn addresses_are_checked_first_and_mapped_ipv4_counts_as_ipv4() {
        let policy = AccessPolicy {
            addresses: Some(HashSet::from(["192.0.2.7".parse().unwrap()])),
            ..policy()
        };
        let credentials = plain("alice", "s3cret");
        assert!(decide(&policy, "192.0.2.7", "PLAIN", &credentials).is_ok());
        assert!(decide(&policy, "::ffff:192.0.2.7", "PLAIN", &credentials).is_ok());
        let other = decide(&policy, "192.0.2.8", "PLAIN", &credentials);
        assert_eq!(other, Err("address 192.0.2.8 is not allowed".to_owned()));
        let garbage = decide(&policy, "not an address", "PLAIN", &credentials);
        assert!(garbage.is_err());
    }

    #[test]
    fn other_mechanisms_and_malformed_requests_are_refused() {
        let policy = policy();
        assert!(decide(&policy, "127.0.0.1", "NULL", &[]).is_err());
        assert!(decide(&policy, "127.0.0.1", "PLAIN", &[b"alice".to_vec()]).is_err());
        let domains = Mutex::new(Domains::default());
        let reply = answer(&[b"2.0".to_vec(), b"7".to_vec()], &domains);
        assert_eq!(reply[1], b"7");
        assert_eq!(reply[2], b"500");
        let unknown = [
            b"1.0".to_vec(),
            b"8".to_vec(),
            b"nobody".to_vec(),
            b"127.0.0.1".to_vec(),
            Vec::new(),
            b"PLAIN".to_vec(),
            b"alice".to_vec(),
            b"s3cret".to_vec(),
        ];
        let reply = answer(&unknown, &domains);
        assert_eq!(reply[2], b"400");
    }
}
