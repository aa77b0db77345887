//! The services file and the records it becomes, checked through the
//! rendered text of each format.

use super::*;

fn parse(text: &str) -> Services {
    parse_services(text).unwrap_or_else(|e| panic!("{e}"))
}

#[track_caller]
fn check_error(text: &str, expected: &[&str]) {
    let error = parse_services(text).expect_err("accepted").to_string();
    for part in expected {
        assert!(error.contains(part), "{part:?} not in: {error}");
    }
}

const TWO_NETWORKS: &str = "
networks:
  testing: [10.1.0.0/16, 127.0.0.2]
  staging: [10.2.0.0/22]
services:
  - name: users.svc.example.test
    ttl: 60
    socket_type: ROUTER
    protocol: 3
    metadata: { owner: team }
    instances:
      - { host: 10.0.0.7, port: 4242, priority: 10, weight: 5 }
      - { host: 10.1.0.7, port: 4243, networks: [testing] }
      - { host: app.example.test, port: 4244, networks: [staging] }
";

#[test]
fn bind_records_without_networks() {
    let services = parse(
        "
services:
  - name: users.svc.example.test.
    socket_type: ROUTER
    protocol: 3
    instances:
      - { host: 10.0.0.7, port: 4242, priority: 10, weight: 5 }
      - { host: 'fd00::7', port: 4242 }
      - { host: app.example.test, port: 4243 }
  - name: logs.svc.example.test
    socket_type: PULL
    instances:
      - endpoints: ['ipc:///run/logs.sock', 'tcp://10.0.0.9:5000']
",
    );
    let text = render_bind_records(&services).unwrap();
    let expected = r#"; zerorpc announce: records to include in a zone file
_zerorpc._tcp.users.svc.example.test. 300 IN SRV 10 5 4242 i0.users.svc.example.test.
_zerorpc._tcp.users.svc.example.test. 300 IN SRV 0 0 4242 i1.users.svc.example.test.
_zerorpc._tcp.users.svc.example.test. 300 IN SRV 0 0 4243 app.example.test.
i0.users.svc.example.test. 300 IN A 10.0.0.7
i1.users.svc.example.test. 300 IN AAAA fd00::7
users.svc.example.test. 300 IN TXT "{\"socket_type\":\"ROUTER\",\"protocol\":3}"
logs.svc.example.test. 300 IN TXT "{\"endpoints\":[\"ipc:///run/logs.sock\",\"tcp://10.0.0.9:5000\"],\"socket_type\":\"PULL\"}"
"#;
    assert_eq!(text, expected);
}

#[test]
fn a_long_txt_record_is_split_into_several_strings() {
    let endpoints: Vec<String> = (0..30)
        .map(|i| format!("'tcp://10.0.0.{i}:4242'"))
        .collect();
    let services = parse(&format!(
        "services:\n  - name: big.example.test\n    instances:\n      - endpoints: [{}]\n",
        endpoints.join(", ")
    ));
    let records = services.records();
    let [
        Record {
            data: Data::Txt(strings),
            ..
        },
    ] = records.as_slice()
    else {
        panic!("{records:?}");
    };
    assert_eq!(strings.len(), 3);
    let zone = render_bind_records(&services).unwrap();
    let line = zone.lines().nth(1).unwrap();
    assert_eq!(line.matches("\" \"").count(), 2, "{line}");
    let tinydns = render_tinydns(&services, None).unwrap();
    // The first length byte: 255 in octal.
    assert!(tinydns.contains(":big.example.test:16:\\377{"), "{tinydns}");
}

#[test]
fn complete_zone_and_the_zone_must_hold_the_services() {
    let services = parse(
        "services:\n  - name: a.svc.example.test\n    instances: [{host: 10.0.0.1, port: 1}]\n",
    );
    let zone = Zone::new("svc.example.test.", "ns1.example.test", 7).unwrap();
    let text = render_bind_zone(&services, &zone).unwrap();
    assert!(text.contains("$ORIGIN svc.example.test.\n"), "{text}");
    assert!(
        text.contains(
            "svc.example.test. 3600 IN SOA ns1.example.test. hostmaster.svc.example.test. 7 "
        ),
        "{text}"
    );
    assert!(
        text.contains("svc.example.test. 3600 IN NS ns1.example.test.\n"),
        "{text}"
    );
    assert!(
        zone.clone()
            .with_nameserver_address("192.0.2.1".parse().unwrap())
            .is_err()
    );
    let other = Zone::new("other.test", "ns1.example.test", 7).unwrap();
    let error = render_bind_zone(&services, &other).unwrap_err().to_string();
    assert!(error.contains("not in zone other.test"), "{error}");
    // A name that merely ends with the same letters is not inside.
    let tricky = Zone::new("c.svc.example.test", "ns", 1).unwrap();
    let services = parse(
        "services:\n  - name: abc.svc.example.test\n    instances: [{host: 10.0.0.1, port: 1}]\n",
    );
    assert!(render_bind_zone(&services, &tricky).is_err());
}

#[test]
fn views_give_each_network_its_instances() {
    let services = parse(TWO_NETWORKS);
    let zone = Zone::new("example.test", "ns.example.test", 1).unwrap();
    let error = render_bind_views(&services, &zone, "/var/lib/bind/").unwrap_err();
    assert!(
        error.to_string().contains("must hold its address"),
        "{error}"
    );
    let zone = zone
        .with_nameserver_address("192.0.2.53".parse().unwrap())
        .unwrap();
    let views = render_bind_views(&services, &zone, "/var/lib/bind/").unwrap();
    assert!(
        views.files[0]
            .1
            .contains("\nns.example.test. 3600 IN A 192.0.2.53\n"),
        "{}",
        views.files[0].1
    );
    assert_eq!(
        views
            .named_conf
            .lines()
            .filter(|l| l.contains("match-clients"))
            .collect::<Vec<_>>(),
        [
            "    match-clients { 10.1.0.0/16; 127.0.0.2/32; };",
            "    match-clients { 10.2.0.0/22; };",
            "    match-clients { any; };",
        ]
    );
    assert!(
        views
            .named_conf
            .contains("file \"/var/lib/bind/example.test.testing.zone\";")
    );
    let names: Vec<&str> = views.files.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            "example.test.testing.zone",
            "example.test.staging.zone",
            "example.test.default.zone"
        ]
    );
    let srv = |file: &str| -> Vec<String> {
        file.lines()
            .filter(|l| l.contains(" SRV "))
            .map(|l| l.split_once(" SRV ").unwrap().1.to_owned())
            .collect()
    };
    assert_eq!(
        srv(&views.files[0].1),
        [
            "10 5 4242 i0.users.svc.example.test.",
            "0 0 4243 i1.users.svc.example.test."
        ]
    );
    assert_eq!(
        srv(&views.files[1].1),
        [
            "10 5 4242 i0.users.svc.example.test.",
            "0 0 4244 app.example.test."
        ]
    );
    assert_eq!(
        srv(&views.files[2].1),
        ["10 5 4242 i0.users.svc.example.test."]
    );
    // Without views, BIND output refuses a file with networks.
    assert!(render_bind_records(&services).is_err());
    assert!(render_bind_zone(&services, &zone).is_err());
}

#[test]
fn tinydns_locations() {
    let services = parse(TWO_NETWORKS);
    let text = render_tinydns(&services, None).unwrap();
    let locations: Vec<&str> = text.lines().filter(|l| l.starts_with('%')).collect();
    assert_eq!(
        locations,
        [
            "%00:10.1",
            "%00:127.0.0.2",
            "%01:10.2.0",
            "%01:10.2.1",
            "%01:10.2.2",
            "%01:10.2.3",
            "%02:"
        ]
    );
    assert!(
        text.contains("+i1.users.svc.example.test:10.1.0.7:60::00\n"),
        "{text}"
    );
    assert!(
        !text.contains("+i1.users.svc.example.test:10.1.0.7:60::01"),
        "{text}"
    );
    // SRV 0 0 4243 i1.users.svc.example.test, in octal.
    assert!(
        text.contains(
            ":_zerorpc._tcp.users.svc.example.test:33:\\000\\000\\000\\000\\020\\223\\002i1\\005users\\003svc\\007example\\004test\\000:60::00\n"
        ),
        "{text}"
    );
    let ipv6 = parse(
        "networks: {lab: ['fd00::/8']}\nservices:\n  - name: a.test\n    instances: [{host: 10.0.0.1, port: 1}]\n",
    );
    let error = render_tinydns(&ipv6, None).unwrap_err().to_string();
    assert!(error.contains("IPv4 clients only"), "{error}");
}

#[test]
fn dnsmasq_options_and_its_refusal_of_networks() {
    let services = parse(
        "services:\n  - name: a.test\n    metadata: {note: 'a, \"b\" # c'}\n    instances:\n      - {host: 10.0.0.1, port: 1, priority: 2, weight: 3}\n",
    );
    let text = render_dnsmasq(&services).unwrap();
    assert_eq!(
        text,
        "# zerorpc announce: options for dnsmasq (--conf-file)\n\
         srv-host=_zerorpc._tcp.a.test,i0.a.test,1,2,3\n\
         host-record=i0.a.test,10.0.0.1,300\n\
         txt-record=a.test,\"{\\\"metadata\\\":{\\\"note\\\":\\\"a, \\\\\\\"b\\\\\\\" # c\\\"}}\"\n"
    );
    let error = render_dnsmasq(&parse(TWO_NETWORKS))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("dnsmasq") && error.contains("networks"),
        "{error}"
    );
}

#[test]
fn errors_say_where() {
    check_error(
        "services:\n  - name: a.test\n    ttl: 60\n    colour: blue\n    instances: []\n",
        &[
            "line 4",
            "column 5",
            "key services › [0]",
            "unknown field `colour`",
        ],
    );
    check_error(
        "services:\n  - name: a.test\n    ttl: -1\n    instances: []\n",
        &["line 3", "key services › [0] › ttl"],
    );
    check_error(
        "services:\n  - name: 'bad name.test'\n    instances: []\n",
        &["line 2", "key services › [0] › name", "letters, digits"],
    );
    check_error(
        "services:\n  - name: a.test\n    socket_type: ROUTR\n    instances: []\n",
        &["line 3", "unknown socket type `ROUTR`"],
    );
    check_error(
        "networks:\n  lab: [10.1.0.1/16]\nservices: []\n",
        &["line 2", "key networks › lab", "the network is 10.1.0.0/16"],
    );
    check_error(
        "networks:\n  default: [10.1.0.0/16]\nservices: []\n",
        &["line 2", "choose another name"],
    );
    check_error(
        "services:\n  - name: a.test\n    instances:\n      - endpoints: ['dns:b.test']\n",
        &["line 4", "a name to resolve"],
    );
    check_error("services: [", &["line 2", "column 1", "key services"]);
    check_error("services: []\n", &["announces no service"]);
    check_error(
        "services:\n  - name: a.test\n    instances: [{host: 10.0.0.1}]\n",
        &["key services › [0] › instances › [0]", "`host` and `port`"],
    );
    check_error(
        "services:\n  - name: a.test\n    instances: [{host: 10.0.0.1, port: 1, endpoints: ['tcp://h:1']}]\n",
        &["not both"],
    );
    check_error(
        "services:\n  - name: a.test\n    instances: [{host: 10.0.0.1, port: 1}, {endpoints: ['tcp://h:1']}]\n",
        &["key services › [0] › instances", "resolvers ignore"],
    );
    check_error(
        "networks: {lab: [10.0.0.0/8]}\nservices:\n  - name: a.test\n    instances: [{host: 10.0.0.1, port: 1, networks: [prod]}]\n",
        &[
            "instances › [0] › networks",
            "`prod` is not a network",
            "(lab)",
        ],
    );
    check_error(
        "networks: {lab: [10.0.0.0/8], test: [10.1.0.0/16]}\nservices:\n  - name: a.test\n    instances: [{host: 10.0.0.1, port: 1}]\n",
        &["key networks › test", "overlaps 10.0.0.0/8"],
    );
    check_error(
        "services:\n  - name: a.test\n    instances: [{host: 10.0.0.1, port: 1}]\n  - name: A.test.\n    instances: [{host: 10.0.0.1, port: 1}]\n",
        &["services › [1] › name", "announced twice"],
    );
    check_error(
        "services:\n  - name: a.test\n    instances: [{host: 10.0.0.1, port: 1}]\n  - name: i0.a.test\n    instances: [{host: b.test, port: 1}]\n",
        &["services › [0] › instances › [0]", "also a service's name"],
    );
}

#[test]
fn endpoints_of_each_network_go_into_its_txt_record() {
    let services = parse(
        "networks: {lab: [10.9.0.0/16]}
services:
  - name: logs.example.test
    instances:
      - endpoints: ['tcp://10.0.0.1:1']
      - endpoints: ['ipc:///lab.sock']
        networks: [lab]
",
    );
    let txt = |view: &View<'_>| match view.records.as_slice() {
        [
            Record {
                data: Data::Txt(strings),
                ..
            },
        ] => {
            crate::txt::TxtRecord::from_strings(strings)
                .unwrap()
                .endpoints
        }
        other => panic!("{other:?}"),
    };
    let views = services.views();
    assert_eq!(views[0].name, "lab");
    assert_eq!(txt(&views[0]), ["tcp://10.0.0.1:1", "ipc:///lab.sock"]);
    assert_eq!(views[1].name, "default");
    assert_eq!(txt(&views[1]), ["tcp://10.0.0.1:1"]);
}
