//! Results and arguments of every MessagePack type, checked for their type on
//! the receiving side: str stays str, bytes stay bin, tuples become arrays.

use zerorpc::{Client, Value};

use super::{
    Interop, RustServer, SAMPLE_KINDS, STARTUP, python_repr, python_server, run_python_client,
    sample,
};

const PY_VALUES_CLIENT: &str = r#"
client = zerorpc.Client(timeout=10)
client.connect(sys.argv[1])
out = {"samples": {}, "described": {}, "echoed": {}}
for kind in sys.argv[2].split(","):
    out["samples"][kind] = typed(client.sample(kind))
values = {
    "int": 42,
    "negative": -7,
    "big": 2**64 - 1,
    "float": 3.25,
    "str": "h\u00e9llo",
    "bin": b"\x00\x01\xff",
    "nil": None,
    "true": True,
    "list": [1, "a", b"b", None, 2.5],
    "tuple": (1, "two"),
    "dict": {"k": [1, {"n": None}], "b": b"x"},
}
for name, value in values.items():
    out["described"][name] = client.describe(value)
    out["echoed"][name] = typed(client.echo(value))
emit(out)
"#;

#[test]
fn python_client_receives_and_sends_every_msgpack_type() {
    let server = RustServer::start(Interop::default(), None);
    let kinds = SAMPLE_KINDS.join(",");
    let Some((out, _peer)) =
        run_python_client(PY_VALUES_CLIENT, &[server.endpoint(), &kinds], STARTUP)
    else {
        return;
    };

    for kind in SAMPLE_KINDS {
        let (ty, repr) = python_repr(kind);
        assert_eq!(
            out["samples"][kind],
            serde_json::json!([ty, repr]),
            "sample {kind}"
        );
    }

    // What our side decoded from Python's values.
    let described = [
        ("int", "int"),
        ("negative", "int"),
        ("big", "int"),
        ("float", "f64"),
        ("str", "str"),
        ("bin", "bin"),
        ("nil", "nil"),
        ("true", "bool"),
        ("list", "array[int, str, bin, nil, f64]"),
        ("tuple", "array[int, str]"),
        ("dict", "map{str: array[int, map{str: nil}], str: bin}"),
    ];
    for (name, tree) in described {
        assert_eq!(out["described"][name], tree, "describe({name})");
    }

    // A round trip through our server keeps every type but the tuple.
    let echoed = [
        ("int", "int", "42"),
        ("negative", "int", "-7"),
        ("big", "int", "18446744073709551615"),
        ("float", "float", "3.25"),
        ("str", "str", "'héllo'"),
        ("bin", "bytes", r"b'\x00\x01\xff'"),
        ("nil", "NoneType", "None"),
        ("true", "bool", "True"),
        ("list", "list", "[1, 'a', b'b', None, 2.5]"),
        ("tuple", "list", "[1, 'two']"),
        ("dict", "dict", "{'k': [1, {'n': None}], 'b': b'x'}"),
    ];
    for (name, ty, repr) in echoed {
        assert_eq!(
            out["echoed"][name],
            serde_json::json!([ty, repr]),
            "echo({name})"
        );
    }
}

#[tokio::test]
async fn our_client_receives_and_sends_every_msgpack_type() {
    let Some((_peer, endpoint)) = python_server(5.0) else {
        return;
    };
    let client = Client::connect(&endpoint).unwrap();

    for kind in SAMPLE_KINDS {
        let expected = sample(kind).unwrap();
        // Value equality compares variants, so this checks the type too:
        // Binary is not String, F64 is not Integer.
        let got: Value = client.call("sample", (kind,)).await.unwrap();
        assert_eq!(got, expected, "sample {kind}");
    }
    let text: Value = client.call("sample", ("str",)).await.unwrap();
    assert!(matches!(text, Value::String(_)), "{text:?}");
    let bytes: Value = client.call("sample", ("bin",)).await.unwrap();
    assert!(matches!(bytes, Value::Binary(_)), "{bytes:?}");
    let int_keys: Value = client.call("sample", ("intkeys",)).await.unwrap();
    assert_eq!(int_keys, Value::Map(vec![(1.into(), "one".into())]));

    // How Python sees what our side sends.
    for kind in SAMPLE_KINDS {
        let (ty, repr) = python_repr(kind);
        let seen: (String, String) = client
            .call("describe", (sample(kind).unwrap(),))
            .await
            .unwrap();
        assert_eq!(seen, (ty.to_owned(), repr.to_owned()), "describe({kind})");
    }
    // Typed Rust values too, not only dynamic ones.
    let seen: (String, String) = client
        .call("describe", ((1u8, "two", -3i64, 4.5f64, true, ()),))
        .await
        .unwrap();
    assert_eq!(seen.1, "[1, 'two', -3, 4.5, True, None]");
}
