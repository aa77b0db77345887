//! Dynamic registration against BIND's `named`, started on 127.0.0.1 and a
//! free port with a zone that lets one TSIG key (made by `tsig-keygen`)
//! update it: records added and withdrawn as named then answers them, a
//! client finding the server through named, and refused keys explained.

use std::sync::Arc;
use std::time::Duration;

use zerorpc::Client;
use zerorpc_discovery::{
    DnsResolver, Inspection, Registration, TsigKey, UpdateError, Updater, announce,
};
use zerorpc_test_support::{Named, TempDir, free_port, tsig_keygen, wait_until};

use super::TEST_BOUND;
use super::live::Running;

/// A dynamic zone `example.test` served by named.
struct Zone {
    named: Named,
    /// Granted every name of the zone.
    key: TsigKey,
    /// Known to named, granted nothing.
    stranger: TsigKey,
    _dir: TempDir,
}

/// `None` (after the skip message) when named or tsig-keygen is missing.
fn dynamic_zone() -> Option<Zone> {
    let named = zerorpc_test_support::named()?;
    let (key, stranger) = (tsig_keygen("zerorpc-update")?, tsig_keygen("stranger")?);
    let dir = TempDir::new();
    let named = Named::start_dynamic(
        &named,
        &dir.0,
        "example.test",
        &[&key, &stranger],
        "zerorpc-update",
    );
    Some(Zone {
        named,
        key: TsigKey::parse(&key).expect("tsig-keygen's key parses"),
        stranger: TsigKey::parse(&stranger).expect("tsig-keygen's key parses"),
        _dir: dir,
    })
}

impl Zone {
    fn updater(&self, key: &TsigKey) -> Updater {
        Updater::new(self.named.address(), "example.test", key.clone())
            .expect("a valid zone")
            .timeout(Duration::from_secs(5))
    }

    fn resolver(&self) -> DnsResolver {
        DnsResolver::builder()
            .name_server(self.named.address())
            .ttl_floor(Duration::from_secs(1))
            .ttl_ceiling(Duration::from_secs(2))
            .timeout(Duration::from_secs(2))
            .build()
            .expect("the resolver builds")
    }

    /// What named answers about `name`, as `zerorpc resolve` shows it.
    fn inspect(&self, name: &str) -> Result<Inspection, String> {
        self.resolver().inspect(name).map_err(|e| e.to_string())
    }
}

/// `(port, target)` of each SRV record, sorted.
fn srv(inspection: &Inspection) -> Vec<(u16, String)> {
    let mut srv: Vec<_> = inspection
        .srv
        .iter()
        .map(|entry| (entry.port, entry.target.clone()))
        .collect();
    srv.sort();
    srv
}

fn register(zone: &Zone, server: &Running, instance: &str) -> Registration {
    Registration::builder(zone.updater(&zone.key), "counting.example.test")
        .instance(instance)
        .ttl(1)
        .register(&server.bound)
        .unwrap_or_else(|e| panic!("registering {instance}: {e}\n{}", zone.named.report()))
}

#[test]
fn a_registered_server_is_called_by_name_through_named_then_withdrawn() {
    let Some(zone) = dynamic_zone() else {
        return;
    };
    let server = Running::start();
    let registration = register(&zone, &server, "one");
    assert_eq!(
        registration.endpoints(),
        [format!("tcp://127.0.0.1:{}", server.port)]
    );

    let found = zone.inspect("counting.example.test").expect("the records");
    assert_eq!(
        srv(&found),
        [(server.port, "one.counting.example.test.".to_owned())]
    );
    let txt = found.txt.expect("the TXT record").record;
    assert_eq!(txt.socket_type.as_deref(), Some("ROUTER"));
    assert_eq!(txt.protocol, Some(zerorpc::wire::PROTOCOL_VERSION));
    assert_eq!(found.endpoints, registration.endpoints());

    // A client given only the name and the name server calls the server.
    let client = Client::builder()
        .resolver(Arc::new(zone.resolver()))
        .connect("dns:counting.example.test")
        .timeout(Some(TEST_BOUND))
        .build()
        .expect("the client builds");
    let hits: usize = client.blocking().call("hit", ()).expect("the call");
    assert_eq!((hits, server.hits()), (1, 1));

    registration.withdraw().expect("withdrawn");
    let gone = zone.inspect("counting.example.test").unwrap_err();
    assert!(
        gone.contains("no _zerorpc._tcp.counting.example.test. SRV record")
            && gone.contains("no counting.example.test. TXT record"),
        "{gone}"
    );
}

#[test]
fn instances_share_a_service_and_the_last_one_out_takes_its_description() {
    let Some(zone) = dynamic_zone() else {
        return;
    };
    let (first, second) = (Running::start(), Running::start());
    let a = register(&zone, &first, "a");
    let b = register(&zone, &second, "b");
    let both = zone.inspect("counting.example.test").expect("the records");
    let mut expected = vec![
        (first.port, "a.counting.example.test.".to_owned()),
        (second.port, "b.counting.example.test.".to_owned()),
    ];
    expected.sort();
    assert_eq!(srv(&both), expected);

    a.withdraw().expect("a withdrawn");
    let left = zone.inspect("counting.example.test").expect("b's records");
    assert_eq!(
        srv(&left),
        [(second.port, "b.counting.example.test.".to_owned())]
    );
    assert!(left.txt.is_some(), "b still needs the description");

    // Dropping a registration withdraws it too.
    drop(b);
    let gone = zone.inspect("counting.example.test").unwrap_err();
    assert!(
        gone.contains("no counting.example.test. TXT record"),
        "{gone}"
    );
}

#[test]
fn an_instance_registered_again_replaces_its_records_and_vanished_ones_come_back() {
    let Some(zone) = dynamic_zone() else {
        return;
    };
    let (old, new) = (Running::start(), Running::start());
    let kept = Registration::builder(zone.updater(&zone.key), "counting.example.test")
        .instance("web")
        .ttl(1)
        .refresh(Duration::from_millis(200))
        .register(&old.bound)
        .expect("registered");
    // The same instance on another port (a restart): one record, the new one.
    let restarted = register(&zone, &new, "web");
    let found = zone.inspect("counting.example.test").expect("the records");
    assert_eq!(
        srv(&found),
        [(new.port, "web.counting.example.test.".to_owned())]
    );
    // Withdrawn behind the first registration's back: it adds its records
    // again at its next check.
    restarted.withdraw().expect("withdrawn");
    let back = wait_until(TEST_BOUND, || {
        zone.inspect("counting.example.test")
            .is_ok_and(|found| srv(&found) == [(old.port, "web.counting.example.test.".to_owned())])
    });
    assert!(
        back,
        "the records were not added again\n{}",
        zone.named.report()
    );
    kept.withdraw().expect("withdrawn");
}

/// A one-service file, for updates without a server.
fn services() -> announce::Services {
    announce::parse_services(
        "services:
  - name: files.example.test
    instances:
      - { host: 127.0.0.1, port: 4242 }
",
    )
    .expect("a valid file")
}

fn update(updater: &Updater) -> Result<(), UpdateError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(updater.register(&services()))
}

#[test]
fn refused_keys_and_unreachable_servers_are_explained() {
    let Some(zone) = dynamic_zone() else {
        return;
    };
    let server = zone.named.address().to_string();
    // The right name with another secret.
    let forged = TsigKey::parse(&tsig_keygen("zerorpc-update").expect("tsig-keygen")).unwrap();
    let error = update(&zone.updater(&forged)).unwrap_err().to_string();
    for part in [
        &server,
        "example.test",
        "zerorpc-update",
        "NOTAUTH",
        "BADSIG",
    ] {
        assert!(error.contains(part), "{part:?} not in {error}");
    }
    // A name named does not know.
    let unknown = TsigKey::parse(&tsig_keygen("unknown").expect("tsig-keygen")).unwrap();
    let error = update(&zone.updater(&unknown)).unwrap_err().to_string();
    assert!(error.contains("BADKEY"), "{error}");
    // A key named knows but the zone's policy does not grant.
    let error = update(&zone.updater(&zone.stranger)).unwrap_err();
    assert!(matches!(error, UpdateError::Refused { .. }), "{error}");
    assert!(
        error.to_string().contains("REFUSED") && error.to_string().contains("stranger"),
        "{error}"
    );
    // No record was added by any of them.
    assert!(zone.inspect("files.example.test").is_err());
    // The right key works.
    update(&zone.updater(&zone.key)).expect("the granted key updates");
    assert_eq!(
        zone.inspect("files.example.test")
            .expect("the records")
            .endpoints,
        ["tcp://127.0.0.1:4242"]
    );

    let nowhere = Updater::new(
        ([127, 0, 0, 1], free_port()).into(),
        "example.test",
        zone.key.clone(),
    )
    .unwrap();
    let error = update(&nowhere).unwrap_err();
    assert!(matches!(error, UpdateError::Unreachable { .. }), "{error}");
}
