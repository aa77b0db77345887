//! The typed clients `#[zerorpc::service]` generates (`ShopClient`,
//! `ShopBlockingClient`) and `#[zerorpc::client]` generates from a trait,
//! calling our server.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use zerorpc::{Client, Server};

use super::{bounded, start};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Item {
    name: String,
    qty: u32,
}

#[derive(Debug)]
struct OutOfStock(String);

impl fmt::Display for OutOfStock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no {} left", self.0)
    }
}

impl std::error::Error for OutOfStock {}

struct Shop;

#[zerorpc::service]
impl Shop {
    /// Adds two numbers.
    pub(crate) fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }

    pub(crate) async fn greet(&self, name: String) -> String {
        tokio::task::yield_now().await;
        format!("hello {name}")
    }

    #[zerorpc(inline)]
    pub(crate) fn mul(&self, a: i64, b: i64) -> i64 {
        a * b
    }

    /// Items in stock, as a struct list.
    pub(crate) fn total(&self, items: Vec<Item>) -> Result<u32, OutOfStock> {
        match items.iter().find(|item| item.qty == 0) {
            Some(empty) => Err(OutOfStock(empty.name.clone())),
            None => Ok(items.iter().map(|item| item.qty).sum()),
        }
    }

    pub(crate) fn count(&self, n: u32) -> impl Iterator<Item = u32> + use<> {
        0..n
    }

    pub(crate) fn ticks(
        &self,
        n: u32,
        fail_at: Option<u32>,
    ) -> impl Stream<Item = Result<u32, OutOfStock>> + use<> {
        futures::stream::iter((0..n).map(move |i| {
            if Some(i) == fail_at {
                Err(OutOfStock(format!("tick {i}")))
            } else {
                Ok(i)
            }
        }))
    }

    #[zerorpc(name = "label")]
    pub(crate) fn shop_label(&self) -> &'static str {
        "the shop"
    }

    /// Shows what arrived for the optional parameters.
    pub(crate) fn optional(&self, a: i64, b: Option<i64>, note: Option<String>) -> String {
        format!("{a} {b:?} {note:?}")
    }

    pub(crate) fn nothing(&self) {}

    /// Borrowed types in a result, which the client receives owned.
    pub(crate) fn stock(&self) -> BTreeMap<&'static str, (u32, Cow<'static, str>)> {
        BTreeMap::from([("pen", (2, Cow::Borrowed("blue")))])
    }
}

/// A service with no typed client, whose method names would clash with
/// a client's own.
struct Plain;

#[zerorpc::service(client = false)]
impl Plain {
    pub(crate) fn connect(&self) -> bool {
        true
    }
}

/// A renamed client.
struct Renamed;

#[zerorpc::service(client = "Till", client_vis = "pub(crate)")]
impl Renamed {
    pub(crate) fn open(&self) -> bool {
        true
    }
}

/// The same shop described by signatures only, as for a service written
/// in another language.
#[zerorpc::client]
trait Remote {
    fn add(&self, a: i64, b: i64) -> i64;

    async fn greet(&self, name: String) -> String;

    #[zerorpc(name = "label")]
    fn title(&self) -> String;

    fn count(&self, n: u32) -> impl Iterator<Item = u32>;
}

fn shop() -> (super::Running, ShopClient) {
    let server = start(Server::builder(Shop));
    let client = ShopClient::connect(&server.endpoint).expect("a client");
    (server, client)
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_async_and_inline_methods_are_typed_calls() {
    let (_server, shop) = shop();
    bounded(async {
        assert_eq!(shop.add(2, 3).await.unwrap(), 5);
        assert_eq!(shop.greet("ada").await.unwrap(), "hello ada");
        assert_eq!(shop.mul(6, 7).await.unwrap(), 42);
        shop.nothing().await.unwrap();
        let items = [
            Item {
                name: "pen".into(),
                qty: 2,
            },
            Item {
                name: "ink".into(),
                qty: 3,
            },
        ];
        assert_eq!(shop.total(&items).await.unwrap(), 5);
        let stock: BTreeMap<String, (u32, Cow<'static, str>)> = shop.stock().await.unwrap();
        assert_eq!(stock["pen"], (2, Cow::Owned("blue".to_owned())));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn streaming_methods_give_typed_streams() {
    let (_server, shop) = shop();
    bounded(async {
        let counted: Vec<u32> = shop
            .count(4)
            .await
            .unwrap()
            .map(|item| item.unwrap())
            .collect()
            .await;
        assert_eq!(counted, [0, 1, 2, 3]);

        let ticks: Vec<zerorpc::Result<u32>> =
            shop.ticks(5, Some(2)).await.unwrap().collect().await;
        assert_eq!(ticks.len(), 3, "{ticks:?}");
        assert_eq!(*ticks[0].as_ref().unwrap(), 0);
        assert_eq!(*ticks[1].as_ref().unwrap(), 1);
        let error = ticks[2].as_ref().unwrap_err();
        let remote = error.remote().expect("a remote error");
        assert_eq!(remote.name(), "OutOfStock");
        assert_eq!(remote.message(), "no tick 2 left");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn renamed_method_calls_its_remote_name() {
    let (server, shop) = shop();
    bounded(async {
        assert_eq!(shop.shop_label().await.unwrap(), "the shop");
        // What the typed method called is the remote name, not the Rust one.
        let untyped = Client::connect(&server.endpoint).unwrap();
        assert_eq!(
            untyped.call::<String>("label", ()).await.unwrap(),
            "the shop"
        );
        let missing = untyped.call::<String>("shop_label", ()).await.unwrap_err();
        assert_eq!(missing.remote().unwrap().name(), "NameError");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn optional_parameters_take_options() {
    let (_server, shop) = shop();
    bounded(async {
        assert_eq!(shop.optional(1, None, None).await.unwrap(), "1 None None");
        assert_eq!(
            shop.optional(1, Some(2), None).await.unwrap(),
            "1 Some(2) None"
        );
        // An unset option before a set one holds its place.
        assert_eq!(
            shop.optional(1, None, Some("gift")).await.unwrap(),
            "1 None Some(\"gift\")"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn remote_errors_are_zerorpc_errors() {
    let (_server, shop) = shop();
    bounded(async {
        let items = [Item {
            name: "ink".into(),
            qty: 0,
        }];
        let error: zerorpc::Error = shop.total(&items).await.unwrap_err();
        let remote = error.remote().expect("a remote error");
        assert_eq!(remote.name(), "OutOfStock");
        assert_eq!(remote.message(), "no ink left");
    })
    .await;
}

#[test]
fn blocking_client_makes_the_same_calls() {
    let server = start(Server::builder(Shop));
    let shop = ShopBlockingClient::connect(&server.endpoint).expect("a client");
    assert_eq!(shop.add(2, 3).unwrap(), 5);
    assert_eq!(shop.greet("bo").unwrap(), "hello bo");
    assert_eq!(shop.shop_label().unwrap(), "the shop");
    assert_eq!(shop.optional(1, Some(2), None).unwrap(), "1 Some(2) None");
    let counted: Vec<u32> = shop.count(3).unwrap().map(|item| item.unwrap()).collect();
    assert_eq!(counted, [0, 1, 2]);
    let error = shop
        .total(&[Item {
            name: "pen".into(),
            qty: 0,
        }])
        .unwrap_err();
    assert_eq!(error.remote().unwrap().name(), "OutOfStock");

    // The async client's blocking view, from a client built elsewhere.
    let from_async = ShopClient::new(shop.client().client().clone()).blocking();
    assert_eq!(from_async.mul(3, 4).unwrap(), 12);
    drop(shop);
    server.stop().expect("the server stops cleanly");
}

#[tokio::test(flavor = "multi_thread")]
async fn client_from_a_trait_calls_the_described_service() {
    let (server, _) = shop();
    let remote = RemoteClient::connect(&server.endpoint).unwrap();
    bounded(async {
        assert_eq!(remote.add(4, 5).await.unwrap(), 9);
        assert_eq!(remote.greet("cy").await.unwrap(), "hello cy");
        assert_eq!(remote.title().await.unwrap(), "the shop");
        let counted: Vec<u32> = remote
            .count(2)
            .await
            .unwrap()
            .map(|item| item.unwrap())
            .collect()
            .await;
        assert_eq!(counted, [0, 1]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn client_options_rename_or_leave_out_the_client() {
    let plain = start(Server::builder(Plain));
    let renamed = start(Server::builder(Renamed));
    bounded(async {
        let untyped = Client::connect(&plain.endpoint).unwrap();
        assert!(untyped.call::<bool>("connect", ()).await.unwrap());
        let till = Till::connect(&renamed.endpoint).unwrap();
        assert!(till.open().await.unwrap());
        // Named after the client, as `ShopClient` gives `ShopBlockingClient`.
        let blocking: TillBlocking = till.blocking();
        assert!(
            blocking
                .client()
                .client()
                .call::<bool>("open", ())
                .await
                .unwrap()
        );
    })
    .await;
}
