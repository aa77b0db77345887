//! PLAIN and CURVE on both sides of a queue: in the library, with the
//! transport's ZAP handler deciding, and in the `zerorpc-hub` binary,
//! configured by file.

use std::collections::{HashMap, HashSet};
use std::process::Command;
use std::time::Duration;

use zerorpc::transport::{AccessPolicy, Authenticator, CurveKeyPair, Security};
use zerorpc::{Client, Server, ShutdownHandle};
use zerorpc_hub::{Hub, HubKind, SideSecurity};
use zerorpc_test_support::{Process, TempDir, wait_until};

use crate::binary::hub_binary;
use crate::support::{LONG, loopback};

/// A refused client sees no reply: this is how long it waits.
const REFUSED: Duration = Duration::from_secs(2);

struct Worker;

#[zerorpc::service]
impl Worker {
    /// Answers.
    pub(crate) fn whoami(&self) -> String {
        "secured worker".to_owned()
    }
}

fn worker(out: &str, security: Security) -> ShutdownHandle {
    let server = Server::builder(Worker)
        .connect(out)
        .security(security)
        .build()
        .expect("worker");
    let handle = server.shutdown_handle();
    std::thread::spawn(move || server.run());
    handle
}

fn client(inp: &str, security: Security, timeout: Duration) -> Client {
    Client::builder()
        .connect(inp)
        .security(security)
        .timeout(Some(timeout))
        .build()
        .expect("client")
}

fn plain(user: &str, password: &str) -> Security {
    Security::PlainClient {
        username: user.to_owned(),
        password: password.to_owned(),
    }
}

fn curve_client(server: &CurveKeyPair, keys: &CurveKeyPair) -> Security {
    Security::CurveClient {
        server_key: server.public(),
        keys: keys.clone(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_with_curve_clients_and_plain_workers() {
    let hub_keys = CurveKeyPair::generate().unwrap();
    let allowed = CurveKeyPair::generate().unwrap();
    let clients = Authenticator::new(AccessPolicy {
        curve_keys: Some(HashSet::from([allowed.public()])),
        ..AccessPolicy::default()
    })
    .unwrap();
    let workers = Authenticator::new(AccessPolicy {
        plain_users: HashMap::from([("worker".to_owned(), "w0rk".to_owned())]),
        ..AccessPolicy::default()
    })
    .unwrap();
    let mut config = loopback(HubKind::Queue);
    config.in_security = SideSecurity::Curve {
        public_key: *hub_keys.public().as_bytes(),
        secret_key: *hub_keys.secret_bytes(),
        zap_domain: clients.zap_domain().to_owned(),
    };
    config.out_security = SideSecurity::Plain {
        zap_domain: workers.zap_domain().to_owned(),
    };
    let hub = Hub::start_in(config, zerorpc::transport::context()).expect("hub");

    let _refused_worker = worker(hub.out_endpoint(), plain("worker", "guess"));
    assert!(wait_until(LONG, || workers.stats().refused >= 1));
    let _worker = worker(hub.out_endpoint(), plain("worker", "w0rk"));
    assert!(wait_until(LONG, || hub.stats().workers.len() == 1));

    let good = client(hub.in_endpoint(), curve_client(&hub_keys, &allowed), LONG);
    let answer: String = good.call("whoami", ()).await.expect("served");
    assert_eq!(answer, "secured worker");

    let stranger = CurveKeyPair::generate().unwrap();
    let refused = client(
        hub.in_endpoint(),
        curve_client(&hub_keys, &stranger),
        REFUSED,
    );
    let error = refused.call::<String>("whoami", ()).await.unwrap_err();
    assert!(error.is_timeout(), "{error:?}");
    assert!(wait_until(LONG, || clients.stats().refused >= 1));
    // Only the worker with the right password was ever taken on.
    assert_eq!(hub.stats().workers.len(), 1);
}

/// What a secured `zerorpc-hub` is started with: a key pair and an allow
/// list for CURVE clients on `in`, a password file for PLAIN workers on
/// `out`.
struct Secured {
    dir: TempDir,
    hub_keys: CurveKeyPair,
    allowed: CurveKeyPair,
    key_file: std::path::PathBuf,
    allow_file: std::path::PathBuf,
    passwords: std::path::PathBuf,
    inp: String,
    out: String,
}

impl Secured {
    fn new() -> Secured {
        let dir = TempDir::new();
        let hub_keys = CurveKeyPair::generate().unwrap();
        let allowed = CurveKeyPair::generate().unwrap();
        let key_file = dir.file("hub.key", &hub_keys.to_zcert_secret());
        let allow_file = dir.file("clients", &format!("{}\n", allowed.public()));
        let passwords = dir.file("workers", "worker:w0rk\n");
        Secured {
            dir,
            hub_keys,
            allowed,
            key_file,
            allow_file,
            passwords,
            inp: zerorpc_test_support::free_tcp_endpoint(),
            out: zerorpc_test_support::free_tcp_endpoint(),
        }
    }

    /// Starts the binary with `args`, and checks that an allowed client is
    /// served, a stranger refused and logged, and, after SIGHUP with the
    /// stranger's key added, served.
    async fn check(&self, args: &[&std::ffi::OsStr]) {
        let mut command = Command::new(hub_binary());
        command.args(args);
        let mut hub = Process::spawn("zerorpc-hub", command).expect("spawn zerorpc-hub");
        hub.wait_for_stderr_line("zerorpc-hub: secured (queue)", LONG)
            .expect("started");

        let _worker = worker(&self.out, plain("worker", "w0rk"));
        let good = client(&self.inp, curve_client(&self.hub_keys, &self.allowed), LONG);
        let answer: String = good.call("whoami", ()).await.expect("served");
        assert_eq!(answer, "secured worker");

        let stranger = CurveKeyPair::generate().unwrap();
        let refused = client(&self.inp, curve_client(&self.hub_keys, &stranger), REFUSED);
        let error = refused.call::<String>("whoami", ()).await.unwrap_err();
        assert!(error.is_timeout(), "{error:?}");
        let line = hub
            .wait_for_stderr_line("is not allowed", LONG)
            .expect("the refusal is logged");
        assert!(line.contains(&stranger.public().to_z85()), "{line}");

        // The stranger's key added and SIGHUP: let in.
        std::fs::write(
            &self.allow_file,
            format!("{}\n{}\n", self.allowed.public(), stranger.public()),
        )
        .unwrap();
        hub.signal(libc::SIGHUP).expect("SIGHUP");
        hub.wait_for_stderr_line("access lists reloaded", LONG)
            .expect("reloaded");
        let admitted = client(&self.inp, curve_client(&self.hub_keys, &stranger), LONG);
        let answer: String = admitted.call("whoami", ()).await.expect("served");
        assert_eq!(answer, "secured worker");
        hub.signal(libc::SIGTERM).expect("SIGTERM");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_reads_each_sides_security_from_its_file() {
    let secured = Secured::new();
    let config = secured.dir.file(
        "hub.yml",
        &format!(
            "name: secured\nin: '{}'\nout: '{}'\n\
             in_security:\n  curve_secret_key_file: '{}'\n  curve_allow_file: '{}'\n\
             out_security:\n  plain_passwords_file: '{}'\n",
            secured.inp,
            secured.out,
            secured.key_file.display(),
            secured.allow_file.display(),
            secured.passwords.display()
        ),
    );
    secured.check(&[config.as_os_str()]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_takes_each_sides_security_from_flags() {
    let secured = Secured::new();
    let args: [&std::ffi::OsStr; 12] = [
        "--name".as_ref(),
        "secured".as_ref(),
        "--in".as_ref(),
        secured.inp.as_ref(),
        "--out".as_ref(),
        secured.out.as_ref(),
        "--in-curve-secret-key-file".as_ref(),
        secured.key_file.as_ref(),
        "--in-curve-allow-file".as_ref(),
        secured.allow_file.as_ref(),
        "--out-plain-passwords-file".as_ref(),
        secured.passwords.as_ref(),
    ];
    secured.check(&args).await;
}
