//! The `service` attribute: which methods it exposes, how their arguments,
//! results, errors and panics travel, and what introspection reports.

use std::fmt;
use std::time::Duration;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use zerorpc::{Arg, Client, MethodInfo, Methods, RemoteError, Reply, Server, Value};

use super::{bounded, field, has_field, start, strings};

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
struct Point {
    x: i64,
    y: i64,
}

/// An error with a cause, as real configuration loaders produce.
#[derive(Debug)]
struct ConfigError {
    source: std::io::Error,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("cannot load the configuration")
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

struct Shop;

#[zerorpc::service]
impl Shop {
    /// Adds two numbers.
    pub(crate) fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }

    /// Greets someone.
    ///
    /// Waits a little first, so the call really suspends.
    pub(crate) async fn greet(&self, name: String) -> String {
        tokio::time::sleep(Duration::from_millis(5)).await;
        format!("hello {name}")
    }

    pub(crate) fn undocumented(&self) -> bool {
        true
    }

    #[allow(dead_code)]
    fn private_helper(&self) -> bool {
        false
    }

    /// Not for remote callers.
    #[zerorpc(skip)]
    #[allow(dead_code)]
    pub(crate) fn hidden(&self) -> bool {
        false
    }

    /// A constructor, not a method.
    #[allow(dead_code)]
    pub(crate) fn new() -> Self {
        Shop
    }

    /// Exposed under another name.
    #[zerorpc(name = "renamed")]
    pub(crate) fn original(&self) -> &'static str {
        "original"
    }

    /// Parses an integer.
    pub(crate) fn parse(&self, text: String) -> Result<i64, std::num::ParseIntError> {
        text.parse()
    }

    /// Fails with a chain of causes.
    pub(crate) fn load(&self) -> Result<(), ConfigError> {
        Err(ConfigError {
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "settings.toml is missing"),
        })
    }

    /// Fails with a boxed error.
    pub(crate) fn boxed(&self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        Err("the box is empty".into())
    }

    /// Fails with a plain string.
    pub(crate) async fn stringly(&self) -> Result<(), String> {
        Err("just a string".to_owned())
    }

    /// Fails with a ready-made remote error.
    pub(crate) fn remote(&self) -> Result<(), RemoteError> {
        Err(RemoteError::new(
            "ValueError",
            "bad value",
            "Traceback: ValueError: bad value\n",
        ))
    }

    /// Panics on a blocking thread.
    pub(crate) fn panic_sync(&self) -> i64 {
        panic!("sync handler gave up")
    }

    /// Multiplies, on the I/O thread.
    #[zerorpc(inline)]
    pub(crate) fn inline_mul(&self, a: i64, b: i64) -> i64 {
        a * b
    }

    /// Panics on the I/O thread.
    #[zerorpc(inline)]
    pub(crate) fn panic_inline(&self) -> i64 {
        panic!("inline handler gave up")
    }

    /// Panics in a task.
    pub(crate) async fn panic_async(&self) -> i64 {
        tokio::task::yield_now().await;
        panic!("async handler gave up")
    }

    /// Takes an optional trailing argument.
    pub(crate) fn optional(&self, a: i64, b: Option<i64>) -> String {
        format!("{a} {b:?}")
    }

    /// Scales a point.
    pub(crate) fn scale(&self, point: Point, factor: i64) -> Point {
        Point {
            x: point.x * factor,
            y: point.y * factor,
        }
    }

    /// Returns whatever it is given.
    pub(crate) fn echo(&self, value: Value) -> Value {
        value
    }

    /// Returns whatever it is given, on the I/O thread.
    #[zerorpc(inline)]
    pub(crate) fn echo_inline(&self, value: Value) -> Value {
        value
    }

    /// Returns whatever it is given, through a `Result`.
    pub(crate) fn echo_checked(&self, value: Value) -> Result<Value, RemoteError> {
        Ok(value)
    }
}

struct Named;

#[zerorpc::service(name = "inventory")]
impl Named {
    /// Counts the items.
    pub(crate) fn size(&self) -> u32 {
        3
    }
}

fn shop() -> (super::Running, Client) {
    let server = start(Server::builder(Shop));
    let client = Client::connect(&server.endpoint).expect("a client");
    (server, client)
}

async fn remote_error<T: serde::de::DeserializeOwned + fmt::Debug>(
    client: &Client,
    method: &str,
    args: impl Serialize,
) -> RemoteError {
    let error = client
        .call::<T>(method, args)
        .await
        .expect_err("the call fails");
    error
        .remote()
        .unwrap_or_else(|| panic!("a remote error from {method}, got {error:?}"))
        .clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_and_async_methods_answer() {
    let (_server, client) = shop();
    bounded(async {
        assert_eq!(client.call::<i64>("add", (2, 3)).await.unwrap(), 5);
        assert_eq!(
            client.call::<String>("greet", ("ada",)).await.unwrap(),
            "hello ada"
        );
        assert!(client.call::<bool>("undocumented", ()).await.unwrap());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn doc_comments_become_help_with_every_line_kept() {
    let (_server, client) = shop();
    bounded(async {
        let help: Option<String> = client.call("_zerorpc_help", ("greet",)).await.unwrap();
        let help = help.expect("greet is documented");
        assert_eq!(
            help,
            "Greets someone.\n\nWaits a little first, so the call really suspends."
        );
        // Listings show the first line only.
        assert_eq!(help.lines().next(), Some("Greets someone."));
        let none: Option<String> = client
            .call("_zerorpc_help", ("undocumented",))
            .await
            .unwrap();
        assert_eq!(none, None);
        let missing = remote_error::<Value>(&client, "_zerorpc_help", ("nosuch",)).await;
        assert_eq!(
            (missing.name(), missing.message()),
            ("KeyError", "'nosuch'")
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn parameters_become_python_argspecs() {
    let (_server, client) = shop();
    bounded(async {
        let add: Value = client.call("_zerorpc_args", ("add",)).await.unwrap();
        assert_eq!(
            add,
            Value::Array(vec![
                strings(&["a", "b"]),
                Value::Nil,
                Value::Nil,
                Value::Nil
            ])
        );
        let optional: Value = client.call("_zerorpc_args", ("optional",)).await.unwrap();
        assert_eq!(
            optional,
            Value::Array(vec![
                strings(&["a", "b"]),
                Value::Nil,
                Value::Nil,
                Value::Array(vec![Value::Nil])
            ])
        );
        let none: Value = client
            .call("_zerorpc_args", ("undocumented",))
            .await
            .unwrap();
        assert_eq!(
            none,
            Value::Array(vec![
                Value::Array(vec![]),
                Value::Nil,
                Value::Nil,
                Value::Nil
            ])
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn inspect_shows_names_types_defaults_and_docs() {
    let (_server, client) = shop();
    bounded(async {
        let inspect: Value = client.call("_zerorpc_inspect", ()).await.unwrap();
        assert_eq!(field(&inspect, "name").as_str(), Some("Shop"));
        let methods = field(&inspect, "methods");
        let add = field(methods, "add");
        assert_eq!(field(add, "doc").as_str(), Some("Adds two numbers."));
        let args = field(add, "args").as_array().expect("add's args are known");
        let described: Vec<(&str, &str)> = args
            .iter()
            .map(|a| {
                (
                    field(a, "name").as_str().unwrap(),
                    field(a, "type").as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(described, [("a", "i64"), ("b", "i64")]);
        assert!(
            args.iter().all(|a| !has_field(a, "default")),
            "required parameters have no default: {inspect}"
        );

        let optional = field(field(methods, "optional"), "args")
            .as_array()
            .unwrap();
        assert_eq!(field(&optional[1], "type").as_str(), Some("Option<i64>"));
        assert_eq!(field(&optional[1], "default"), &Value::Nil);
        assert_eq!(
            field(field(methods, "scale"), "args")
                .as_array()
                .map(|a| field(&a[0], "type").as_str()),
            Some(Some("Point"))
        );
        assert_eq!(field(field(methods, "undocumented"), "doc"), &Value::Nil);
        assert!(!has_field(methods, "hidden") && !has_field(methods, "private_helper"));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ping_and_name_default_to_the_type_name() {
    let (_server, client) = shop();
    let named = start(Server::builder(Named));
    let named_client = Client::connect(&named.endpoint).unwrap();
    bounded(async {
        assert_eq!(
            client.call::<Value>("_zerorpc_ping", ()).await.unwrap(),
            strings(&["pong", "Shop"])
        );
        assert_eq!(
            client.call::<String>("_zerorpc_name", ()).await.unwrap(),
            "Shop"
        );
        assert_eq!(
            named_client
                .call::<String>("_zerorpc_name", ())
                .await
                .unwrap(),
            "inventory"
        );
        assert_eq!(
            named_client
                .call::<Value>("_zerorpc_ping", ())
                .await
                .unwrap(),
            strings(&["pong", "inventory"])
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn list_is_sorted_and_only_has_exposed_methods() {
    let (_server, client) = shop();
    bounded(async {
        let list: Vec<String> = client.call("_zerorpc_list", ()).await.unwrap();
        let expected = [
            "add",
            "boxed",
            "echo",
            "echo_checked",
            "echo_inline",
            "greet",
            "inline_mul",
            "load",
            "optional",
            "panic_async",
            "panic_inline",
            "panic_sync",
            "parse",
            "remote",
            "renamed",
            "scale",
            "stringly",
            "undocumented",
        ];
        assert_eq!(list, expected);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn renamed_method_answers_under_its_new_name_only() {
    let (_server, client) = shop();
    bounded(async {
        assert_eq!(
            client.call::<String>("renamed", ()).await.unwrap(),
            "original"
        );
        let gone = remote_error::<String>(&client, "original", ()).await;
        assert_eq!(gone.name(), "NameError");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn error_with_sources_gives_type_name_display_and_causes() {
    let (_server, client) = shop();
    bounded(async {
        let e = remote_error::<()>(&client, "load", ()).await;
        assert_eq!(e.name(), "ConfigError");
        assert_eq!(e.message(), "cannot load the configuration");
        let traceback = e.traceback();
        assert!(
            traceback.contains("cannot load the configuration"),
            "{traceback}"
        );
        assert!(
            traceback.contains("settings.toml is missing"),
            "the cause is listed: {traceback}"
        );

        let parse = remote_error::<i64>(&client, "parse", ("x",)).await;
        assert_eq!(
            (parse.name(), parse.message()),
            ("ParseIntError", "invalid digit found in string")
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn boxed_string_and_remote_errors_are_reported() {
    let (_server, client) = shop();
    bounded(async {
        let boxed = remote_error::<()>(&client, "boxed", ()).await;
        assert_eq!(boxed.message(), "the box is empty");
        assert!(!boxed.name().is_empty());
        let stringly = remote_error::<()>(&client, "stringly", ()).await;
        assert_eq!(stringly.message(), "just a string");
        let remote = remote_error::<()>(&client, "remote", ()).await;
        assert_eq!(
            remote,
            RemoteError::new(
                "ValueError",
                "bad value",
                "Traceback: ValueError: bad value\n"
            )
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn panics_become_errors_and_the_server_keeps_serving() {
    let (_server, client) = shop();
    bounded(async {
        for (method, message) in [
            ("panic_sync", "sync handler gave up"),
            ("panic_async", "async handler gave up"),
            ("panic_inline", "inline handler gave up"),
        ] {
            let e = remote_error::<i64>(&client, method, ()).await;
            assert_eq!((e.name(), e.message()), ("Panic", message));
            assert_eq!(
                client.call::<i64>("add", (1, 1)).await.unwrap(),
                2,
                "still serving after {method}"
            );
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_arity_is_a_python_like_type_error() {
    let (_server, client) = shop();
    bounded(async {
        let many = remote_error::<i64>(&client, "add", (1, 2, 3)).await;
        assert_eq!(many.name(), "TypeError");
        assert_eq!(
            many.message(),
            "add() takes 2 positional arguments but 3 were given"
        );
        let few = remote_error::<i64>(&client, "add", (1,)).await;
        assert_eq!(few.name(), "TypeError");
        assert_eq!(
            few.message(),
            "add() missing 1 required positional argument: 'b'"
        );
        let none = remote_error::<i64>(&client, "add", ()).await;
        assert_eq!(
            none.message(),
            "add() missing 2 required positional arguments: 'a' and 'b'"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_argument_type_is_a_type_error() {
    let (_server, client) = shop();
    bounded(async {
        let e = remote_error::<i64>(&client, "add", ("one", 2)).await;
        assert_eq!(e.name(), "TypeError");
        assert!(
            e.message().starts_with("add() argument 'a'"),
            "{}",
            e.message()
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn inline_sync_method_answers_and_reports_bad_arguments() {
    let (_server, client) = shop();
    bounded(async {
        assert_eq!(client.call::<i64>("inline_mul", (6, 7)).await.unwrap(), 42);
        let e = remote_error::<i64>(&client, "inline_mul", (6,)).await;
        assert_eq!(e.name(), "TypeError");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn strings_spelling_numbers_are_accepted_for_numeric_parameters() {
    // The zerorpc command line sends every argument as a string.
    let (_server, client) = shop();
    bounded(async {
        assert_eq!(client.call::<i64>("add", ("1", " 41 ")).await.unwrap(), 42);
        let e = remote_error::<i64>(&client, "add", ("1.5", 2)).await;
        assert_eq!(e.name(), "TypeError");
        // A string parameter keeps the text, even when it spells a number.
        let echoed: Value = client.call("echo", ("7",)).await.unwrap();
        assert_eq!(echoed, Value::from("7"));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn value_parameters_and_results_travel_exactly_as_sent() {
    // Every msgpack type, nested, including what serde has no word for
    // (ext types, 32-bit floats, maps keyed by numbers).
    let value = Value::Array(vec![
        Value::Nil,
        Value::Boolean(true),
        Value::from(-7),
        Value::from(u64::MAX),
        Value::F32(1.5),
        Value::F64(-2.25),
        Value::from("text"),
        Value::Binary(vec![0, 1, 255]),
        Value::Ext(5, vec![9, 9]),
        Value::Map(vec![
            (Value::from(1), Value::Array(vec![])),
            (Value::from("k"), Value::Map(vec![])),
        ]),
    ]);
    let (_server, client) = shop();
    bounded(async {
        for method in ["echo", "echo_inline", "echo_checked"] {
            let answer = client
                .invoke(method, vec![value.clone()], Default::default())
                .await
                .unwrap();
            match answer {
                zerorpc::Response::Value(echoed) => assert_eq!(echoed, value, "{method}"),
                zerorpc::Response::Stream(_) => panic!("{method} answered a stream"),
            }
        }
        let e = remote_error::<Value>(&client, "echo", ()).await;
        assert_eq!(e.name(), "TypeError");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn trailing_option_may_be_left_out() {
    let (_server, client) = shop();
    bounded(async {
        assert_eq!(
            client.call::<String>("optional", (1,)).await.unwrap(),
            "1 None"
        );
        assert_eq!(
            client.call::<String>("optional", (1, 2)).await.unwrap(),
            "1 Some(2)"
        );
        assert_eq!(
            client.call::<String>("optional", (1, ())).await.unwrap(),
            "1 None"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn structs_travel_as_maps() {
    let (_server, client) = shop();
    bounded(async {
        let scaled: Point = client
            .call("scale", (Point { x: 1, y: -2 }, 3))
            .await
            .unwrap();
        assert_eq!(scaled, Point { x: 3, y: -6 });
        // A peer in another language sends and receives a plain map.
        let map = Value::Map(vec![("x".into(), 2.into()), ("y".into(), 5.into())]);
        let raw: Value = client.call("scale", (map, 2)).await.unwrap();
        assert_eq!(field(&raw, "x").as_i64(), Some(4));
        assert_eq!(field(&raw, "y").as_i64(), Some(10));
        let echoed: Value = client.call("echo", (Point { x: 7, y: 8 },)).await.unwrap();
        assert!(echoed.is_map(), "a struct is a map on the wire: {echoed}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_method_is_a_name_error() {
    let (_server, client) = shop();
    bounded(async {
        let e = remote_error::<Value>(&client, "nosuchmethod", ()).await;
        assert_eq!((e.name(), e.message()), ("NameError", "nosuchmethod"));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn methods_registered_at_run_time_are_served_and_introspected() {
    let mut methods = Methods::new("commands");
    let info = MethodInfo::new()
        .doc("Doubles a number.")
        .arg(Arg::new("x").with_type("int"));
    methods.add("double", info, |args: Vec<Value>| async move {
        match args.first().and_then(Value::as_i64) {
            Some(x) => Reply::Value(Ok(Value::from(x * 2))),
            None => Reply::Value(Err(RemoteError::new(
                "TypeError",
                "double() needs an integer",
                "",
            ))),
        }
    });
    methods.add(
        "letters",
        MethodInfo::new().streaming(true),
        |_args: Vec<Value>| async move {
            Reply::Stream(futures::stream::iter(["a", "b"].map(|s| Ok(Value::from(s)))).boxed())
        },
    );
    let server = start(Server::builder(methods));
    let client = Client::connect(&server.endpoint).unwrap();
    bounded(async {
        assert_eq!(client.call::<i64>("double", (21,)).await.unwrap(), 42);
        let e = remote_error::<i64>(&client, "double", ("x",)).await;
        assert_eq!(e.name(), "TypeError");
        assert_eq!(
            client.call::<Vec<String>>("letters", ()).await.unwrap(),
            ["a", "b"]
        );
        assert_eq!(
            client.call::<String>("_zerorpc_name", ()).await.unwrap(),
            "commands"
        );
        assert_eq!(
            client
                .call::<Vec<String>>("_zerorpc_list", ())
                .await
                .unwrap(),
            ["double", "letters"]
        );
        let help: Option<String> = client.call("_zerorpc_help", ("double",)).await.unwrap();
        assert_eq!(help.as_deref(), Some("Doubles a number."));
        // Unknown parameters are nil, as zerorpc-python answers for built-ins.
        assert_eq!(
            client
                .call::<Value>("_zerorpc_args", ("letters",))
                .await
                .unwrap(),
            Value::Nil
        );
    })
    .await;
}
