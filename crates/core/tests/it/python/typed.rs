//! A typed client generated from a Rust description of the Python service
//! (`#[zerorpc::client]` on a trait) calling zerorpc-python.

use futures::StreamExt;
use zerorpc::Value;

use super::python_server;
use crate::behaviour::bounded;

/// The Python service of `PY_SERVER`, as Rust sees it.
#[zerorpc::client]
trait PythonInterop {
    /// Adds two numbers; Python's default for `b` is 1.
    fn add(&self, a: i64, b: Option<i64>) -> i64;

    fn sample(&self, kind: String) -> Value;

    /// Python's type name and `repr` of the value.
    fn describe(&self, value: Value) -> (String, String);

    fn fail(&self, message: String);

    fn count(&self, n: u64) -> impl Iterator<Item = u64>;

    #[zerorpc(name = "count_then_fail")]
    fn count_until_failure(&self, n: u64) -> impl Iterator<Item = u64>;
}

#[tokio::test]
async fn typed_client_calls_a_python_service() {
    let Some((_peer, endpoint)) = python_server(5.0) else {
        return;
    };
    let python = PythonInteropClient::connect(&endpoint).unwrap();
    bounded(async {
        // An unset trailing option is left out, so Python's default applies.
        assert_eq!(python.add(2, None).await.unwrap(), 3);
        assert_eq!(python.add(2, Some(5)).await.unwrap(), 7);
        assert_eq!(python.sample("int").await.unwrap(), Value::from(42));
        assert_eq!(
            python.describe(Value::from("x")).await.unwrap(),
            ("str".to_owned(), "'x'".to_owned())
        );

        let error = python.fail("the disk is full").await.unwrap_err();
        let remote = error.remote().expect("a remote error");
        assert_eq!(remote.name(), "ValueError");
        assert_eq!(remote.message(), "the disk is full");

        let counted: Vec<u64> = python
            .count(3)
            .await
            .unwrap()
            .map(|item| item.unwrap())
            .collect()
            .await;
        assert_eq!(counted, [0, 1, 2]);

        let items: Vec<zerorpc::Result<u64>> =
            python.count_until_failure(2).await.unwrap().collect().await;
        assert_eq!(items.len(), 3, "{items:?}");
        assert_eq!(*items[1].as_ref().unwrap(), 1);
        let remote = items[2]
            .as_ref()
            .unwrap_err()
            .remote()
            .expect("a remote error");
        assert_eq!(remote.name(), "ValueError");
        assert_eq!(remote.message(), "broke after 2 items");
    })
    .await;
}

#[test]
fn blocking_typed_client_calls_a_python_service() {
    let Some((_peer, endpoint)) = python_server(5.0) else {
        return;
    };
    let python = PythonInteropBlockingClient::connect(&endpoint).unwrap();
    assert_eq!(python.add(40, None).unwrap(), 41);
    let counted: Vec<u64> = python.count(2).unwrap().map(|item| item.unwrap()).collect();
    assert_eq!(counted, [0, 1]);
    let error = python.fail("no").unwrap_err();
    assert_eq!(error.remote().expect("a remote error").name(), "ValueError");
}
