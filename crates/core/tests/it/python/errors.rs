//! Remote errors both ways: unknown methods (`NameError`), wrong arity
//! (`TypeError`) and a failing method's name, message and traceback.

use zerorpc::Client;

use super::{Interop, RustServer, STARTUP, python_server, run_python_client};

const PY_ERRORS_CLIENT: &str = r#"
client = zerorpc.Client(timeout=10)
client.connect(sys.argv[1])
out = {}
for key, method, args in [
    ("unknown", "nosuchmethod", (1,)),
    ("fail", "fail", ("the disk is full",)),
    ("arity", "add", ()),
]:
    try:
        out[key] = {"result": client(method, *args)}
    except Exception as e:
        out[key] = error_info(e)
out["after"] = client.add(2, 3)
emit(out)
"#;

#[test]
fn python_client_gets_our_errors() {
    let server = RustServer::start(Interop::default(), None);
    let Some((out, _peer)) = run_python_client(PY_ERRORS_CLIENT, &[server.endpoint()], STARTUP)
    else {
        return;
    };

    let unknown = &out["unknown"];
    assert_eq!(unknown["error"], "RemoteError", "{unknown}");
    assert_eq!(unknown["name"], "NameError");
    assert_eq!(unknown["msg"], "nosuchmethod");

    let fail = &out["fail"];
    assert_eq!(fail["error"], "RemoteError", "{fail}");
    assert_eq!(fail["name"], "InteropError");
    assert_eq!(fail["msg"], "the disk is full");
    let traceback = fail["traceback"].as_str().expect("a traceback");
    assert!(
        traceback.contains("InteropError: the disk is full"),
        "{traceback}"
    );
    // Python prints a RemoteError as its traceback when there is one.
    assert_eq!(fail["str"], fail["traceback"]);

    assert_eq!(out["arity"]["name"], "TypeError", "{}", out["arity"]);
    // The client survives remote errors.
    assert_eq!(out["after"], 5);
}

#[tokio::test]
async fn our_client_gets_python_errors() {
    let Some((_peer, endpoint)) = python_server(5.0) else {
        return;
    };
    let client = Client::connect(&endpoint).unwrap();

    let error = client.call::<i64>("nosuchmethod", (1,)).await.unwrap_err();
    assert!(error.is_remote(), "{error:?}");
    let remote = error.remote().unwrap();
    assert_eq!(remote.name(), "NameError");
    assert_eq!(remote.message(), "nosuchmethod");

    let error = client
        .call::<()>("fail", ("the disk is full",))
        .await
        .unwrap_err();
    let remote = error.remote().expect("a remote error");
    assert_eq!(remote.name(), "ValueError");
    assert_eq!(remote.message(), "the disk is full");
    assert!(
        remote
            .traceback()
            .starts_with("Traceback (most recent call last):"),
        "{}",
        remote.traceback()
    );
    assert!(
        remote
            .traceback()
            .trim_end()
            .ends_with("ValueError: the disk is full"),
        "{}",
        remote.traceback()
    );
    assert!(error.to_string().contains("Traceback"), "{error}");

    let error = client.call::<i64>("add", ()).await.unwrap_err();
    assert_eq!(error.remote().expect("a remote error").name(), "TypeError");

    assert_eq!(client.call::<i64>("add", (2, 3)).await.unwrap(), 5);
}

struct Shop;

#[derive(serde::Serialize, serde::Deserialize)]
struct Order {
    qty: u32,
}

#[zerorpc::service]
impl Shop {
    /// Places an order; answers its quantity.
    pub(crate) fn place(&self, order: Order) -> u32 {
        order.qty
    }
}

const PY_PLACE_CLIENT: &str = r#"
client = zerorpc.Client(timeout=10)
client.connect(sys.argv[1])
out = {}
try:
    out["bad"] = {"result": client.place({"qty": "two"})}
except Exception as e:
    out["bad"] = error_info(e)
out["good"] = client.place({"qty": 2})
emit(out)
"#;

#[test]
fn python_client_sees_which_field_of_an_argument_is_wrong() {
    let server = RustServer::start(Shop, None);
    let Some((out, _peer)) = run_python_client(PY_PLACE_CLIENT, &[server.endpoint()], STARTUP)
    else {
        return;
    };
    let bad = &out["bad"];
    assert_eq!(bad["error"], "RemoteError", "{bad}");
    assert_eq!(bad["name"], "TypeError");
    assert_eq!(
        bad["msg"],
        r#"place() argument 'order': field 'qty': invalid type: string "two", expected u32"#
    );
    // What Python prints for it: the traceback's one line.
    assert_eq!(
        bad["str"],
        "TypeError: place() argument 'order': field 'qty': invalid type: string \"two\", expected u32\n"
    );
    assert_eq!(out["good"], 2);
}
