//! The `_zerorpc_*` built-ins with zerorpc-python's shapes (PROTOCOL.md §8).

use serde_json::{Value as Json, json};
use zerorpc::Client;

use super::{Interop, RustServer, STARTUP, python_server, run_python_client};

const PY_INTROSPECTION_CLIENT: &str = r#"
client = zerorpc.Client(timeout=10)
client.connect(sys.argv[1])
out = {
    "ping": client("_zerorpc_ping"),
    "name": client("_zerorpc_name"),
    "list": client("_zerorpc_list"),
    "help_add": client("_zerorpc_help", "add"),
    "help_describe": client("_zerorpc_help", "describe"),
    "args_add": client("_zerorpc_args", "add"),
    "inspect": client("_zerorpc_inspect"),
}
try:
    client("_zerorpc_help", "nosuch")
except Exception as e:
    out["help_unknown"] = error_info(e)
emit(out)
"#;

#[test]
fn python_client_introspects_our_server() {
    let server = RustServer::start(Interop::default(), None);
    let Some((out, _peer)) =
        run_python_client(PY_INTROSPECTION_CLIENT, &[server.endpoint()], STARTUP)
    else {
        return;
    };
    assert_eq!(out["ping"], json!(["pong", "Interop"]));
    assert_eq!(out["name"], "Interop");
    assert_eq!(
        out["list"],
        json!([
            "add",
            "count",
            "count_inline",
            "count_then_fail",
            "count_then_fail_inline",
            "describe",
            "echo",
            "fail",
            "sample",
            "sleep"
        ])
    );
    assert_eq!(
        out["help_add"],
        "Adds two numbers.\n\nThe second defaults to 1."
    );
    assert_eq!(out["help_describe"], Json::Null);
    // getargspec's [args, varargs, keywords, defaults]; an Option parameter
    // may be left out, so it has a nil default.
    assert_eq!(out["args_add"], json!([["a", "b"], null, null, [null]]));
    assert_eq!(out["help_unknown"]["error"], "RemoteError");
    assert_eq!(out["help_unknown"]["name"], "KeyError");

    let inspect = &out["inspect"];
    assert_eq!(inspect["name"], "Interop");
    let methods = inspect["methods"].as_object().expect("methods is a map");
    assert_eq!(methods.len(), 10, "{inspect}");
    let add = &methods["add"];
    assert_eq!(add["doc"], "Adds two numbers.\n\nThe second defaults to 1.");
    let args = add["args"].as_array().expect("args is a list");
    assert_eq!(args.len(), 2, "{add}");
    assert_eq!(args[0]["name"], "a");
    assert!(args[0].get("default").is_none(), "{add}");
    assert_eq!(args[1]["name"], "b");
    assert_eq!(args[1]["default"], Json::Null);
    assert!(args[1].get("default").is_some(), "{add}");
    assert_eq!(methods["describe"]["doc"], Json::Null);
}

#[tokio::test]
async fn our_client_introspects_a_python_server() {
    let Some((_peer, endpoint)) = python_server(5.0) else {
        return;
    };
    let client = Client::connect(&endpoint).unwrap();
    let call = |method: &'static str, args: Vec<&'static str>| {
        let client = client.clone();
        async move { client.call::<Json>(method, args).await }
    };

    assert_eq!(
        call("_zerorpc_ping", vec![]).await.unwrap(),
        json!(["pong", "Interop"])
    );
    assert_eq!(call("_zerorpc_name", vec![]).await.unwrap(), "Interop");
    assert_eq!(
        call("_zerorpc_list", vec![]).await.unwrap(),
        json!([
            "add",
            "count",
            "count_then_fail",
            "describe",
            "fail",
            "max_in_flight",
            "sample",
            "slow"
        ])
    );
    assert_eq!(
        call("_zerorpc_help", vec!["add"]).await.unwrap(),
        "Add two numbers.\n\nThe second defaults to 1."
    );
    assert_eq!(
        call("_zerorpc_help", vec!["describe"]).await.unwrap(),
        Json::Null
    );
    // Needs the prelude's getargspec on Python 3.11.
    assert_eq!(
        call("_zerorpc_args", vec!["add"]).await.unwrap(),
        json!([["self", "a", "b"], null, null, [1]])
    );
    let inspect = call("_zerorpc_inspect", vec![]).await.unwrap();
    assert_eq!(inspect["name"], "Interop");
    assert_eq!(
        inspect["methods"]["add"],
        json!({
            "args": [{"name": "self"}, {"name": "a"}, {"name": "b", "default": 1}],
            "doc": "Add two numbers.\n\nThe second defaults to 1.",
        })
    );

    let error = call("_zerorpc_help", vec!["nosuch"]).await.unwrap_err();
    assert_eq!(
        error.remote().expect("a remote error").name(),
        "KeyError",
        "{error}"
    );
}
