//! Key files, what an update owns, and which endpoints a registration
//! announces; the updates themselves are tested against named
//! (`tests/it/update.rs`).

use std::net::{IpAddr, Ipv4Addr};

use hickory_proto::rr::rdata::SRV;
use hickory_proto::rr::{Name, RData, Record};

use super::{Plan, Registration, TsigKey, Updater};
use crate::announce::{Host, parse_services};

/// What `tsig-keygen -a hmac-sha256 zerorpc-update` writes.
const KEYGEN: &str = "key \"zerorpc-update\" {\n\talgorithm hmac-sha256;\n\tsecret \"6YjRVyDsJ9p853OX646GyKPwFfMseh/6p/GFoEWMGwI=\";\n};\n";

/// Parses `text`: `Ok("NAME ALGORITHM")` or the error's text.
fn check_key(text: &str, expected: Result<&str, &str>) {
    let parsed = TsigKey::parse(text)
        .map(|key| format!("{} {}", key.name(), key.algorithm()))
        .map_err(|e| e.to_string());
    match (&parsed, expected) {
        (Ok(got), Ok(want)) => assert_eq!(got, want, "{text}"),
        (Err(got), Err(want)) => assert!(got.contains(want), "{got:?} lacks {want:?}\n{text}"),
        _ => panic!("{text}\ngave {parsed:?}, expected {expected:?}"),
    }
}

#[test]
fn key_files_as_bind_writes_them() {
    check_key(KEYGEN, Ok("zerorpc-update hmac-sha256"));
    check_key(
        "# made by hand\n// for the registry\n/* several\n   lines */ key registry.example.test {\n  \
         algorithm HMAC-SHA512; secret \"c2VjcmV0IHNlY3JldA==\"; };",
        Ok("registry.example.test hmac-sha512"),
    );
    // The secret never shows.
    let key = TsigKey::parse(KEYGEN).unwrap();
    assert!(!format!("{key:?}").contains("6YjR"), "{key:?}");
}

#[test]
fn key_file_errors_name_their_line() {
    check_key("", Err("line 1: no key statement"));
    check_key(
        "key \"k\" {\n  algorithm hmac-md5;\n  secret \"c2VjcmV0\";\n};\n",
        Err("line 2: algorithm hmac-md5 is not supported: use hmac-sha256"),
    );
    check_key(
        "key \"k\" {\n  algorithm hmac-sha256;\n  secret \"not base64!\";\n};\n",
        Err("line 3: the secret is not base64"),
    );
    check_key(
        "key \"k\" {\n  algorithm hmac-sha256;\n};\n",
        Err("line 3: key k has no secret"),
    );
    check_key(
        &format!("{KEYGEN}{}", KEYGEN.replace("zerorpc-update", "second")),
        Err("line 5: a second key (the first is at line 1)"),
    );
    check_key(
        "key \"k\" {\n  algorithm hmac-sha256\n  secret \"c2VjcmV0\";\n};\n",
        Err("line 3: expected `;` after the value of `algorithm`, found `secret`"),
    );
    check_key(
        "options { directory \"/var/cache/bind\"; };",
        Err("line 1: expected a `key` statement, found `options`"),
    );
    check_key(
        "key \"k {\n",
        Err("line 1: a quoted string ends at the end of the line"),
    );
    check_key(
        "key \"k\" {\n  algorithm hmac-sha256;\n",
        Err("line 2: the text ends"),
    );
    check_key(
        "key \"k\" { algorithm hmac-sha256; secret \"c2VjcmV0\"; owner \"me\"; };",
        Err("unknown key setting `owner`"),
    );
    let missing = TsigKey::from_file("/nonexistent/zerorpc.key").unwrap_err();
    assert!(
        missing.to_string().contains("/nonexistent/zerorpc.key"),
        "{missing}"
    );
}

fn srv(port: u16, target: &str) -> Record {
    let name = Name::from_ascii("_zerorpc._tcp.users.svc.example.test.").unwrap();
    let target = Name::from_ascii(target).unwrap();
    Record::from_rdata(name, 60, RData::SRV(SRV::new(0, 0, port, target)))
}

#[test]
fn an_update_owns_the_names_of_its_instances_and_what_lies_under_them() {
    let services = parse_services(
        "services:
  - name: users.svc.example.test
    instances:
      - { host: 127.0.0.7, port: 4242 }
      - { host: app.example.test, port: 4243 }
",
    )
    .unwrap();
    let zone = Name::from_ascii("example.test.").unwrap();
    let plan = Plan::new(&services.services[0], &zone).unwrap();
    let owned = |port, target| plan.owns_srv(&srv(port, target));
    // Its own name, whatever the port (an earlier run's), and names under it.
    assert!(owned(4242, "i0.users.svc.example.test."));
    assert!(owned(9999, "I0.Users.svc.example.test."));
    assert!(owned(9999, "p9999.i0.users.svc.example.test."));
    // A host name is shared: only its port is this instance's.
    assert!(owned(4243, "app.example.test."));
    assert!(!owned(4244, "app.example.test."));
    // Another instance's.
    assert!(!owned(4242, "i1.users.svc.example.test."));
    assert!(!owned(4242, "xi0.users.svc.example.test."));
    // The address records of an earlier run's names go too.
    let earlier = srv(9999, "p9999.i0.users.svc.example.test.");
    let names: Vec<String> = plan
        .address_names(&[&earlier])
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        names,
        [
            "i0.users.svc.example.test.",
            "p9999.i0.users.svc.example.test."
        ]
    );
    let outside = Name::from_ascii("other.test.").unwrap();
    let error = Plan::new(&services.services[0], &outside).unwrap_err();
    assert!(
        error.to_string().contains("is not in zone other.test"),
        "{error}"
    );
}

#[test]
fn a_registration_announces_tcp_endpoints_at_reachable_addresses() {
    let updater = Updater::new(
        "127.0.0.1:53".parse().unwrap(),
        "example.test",
        TsigKey::parse(KEYGEN).unwrap(),
    )
    .unwrap();
    let builder = Registration::builder(updater, "users.svc.example.test");
    let targets = |builder: &super::RegistrationBuilder, endpoints: &[&str]| {
        builder.targets(endpoints).map(|targets| {
            targets
                .into_iter()
                .map(|(host, port)| match host {
                    Host::Ip(ip) => format!("{ip} {port}"),
                    Host::Name(name) => format!("{name} {port}"),
                })
                .collect::<Vec<_>>()
        })
    };
    // Every interface: the address towards the name server (loopback here).
    assert_eq!(
        targets(
            &builder,
            &[
                "tcp://127.0.0.2:4242",
                "ipc:///run/users.sock",
                "tcp://0.0.0.0:4243"
            ]
        )
        .unwrap(),
        ["127.0.0.2 4242", "127.0.0.1 4243"]
    );
    let chosen = builder
        .clone()
        .address(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)));
    assert_eq!(
        targets(&chosen, &["tcp://127.0.0.2:4242", "tcp://[::]:4243"]).unwrap(),
        ["192.0.2.7 4242", "192.0.2.7 4243"]
    );
    for (endpoints, error) in [
        (&["ipc:///run/users.sock"][..], "nothing to announce"),
        (&[][..], "no bound endpoint"),
        (&["tcp://127.0.0.1:0"][..], "port 0"),
        (&["tcp://127.0.0.1:*"][..], "with its port"),
    ] {
        let got = targets(&builder, endpoints).unwrap_err().to_string();
        assert!(got.contains(error), "{endpoints:?}: {got}");
    }
}
