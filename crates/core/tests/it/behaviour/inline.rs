//! `#[zerorpc(inline)]` methods are answered on the server socket's I/O
//! thread, with the call's context and the server's runtime at hand; with a
//! concurrency limit, they are served by tasks like every other call.

use zerorpc::{CallContext, Client, Server};

use super::{bounded, start};

/// Where and how a call was served.
#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
struct Served {
    thread: String,
    method: Option<String>,
    runtime: bool,
}

struct Probe;

#[zerorpc::service]
impl Probe {
    /// Reports where it runs.
    #[zerorpc(inline)]
    pub(crate) fn inline_probe(&self) -> Served {
        served()
    }

    /// Reports where it runs.
    pub(crate) async fn async_probe(&self) -> Served {
        served()
    }

    /// Spawns a task on the server's runtime and answers at once.
    #[zerorpc(inline)]
    pub(crate) fn spawns(&self) -> bool {
        tokio::spawn(async {});
        true
    }
}

fn served() -> Served {
    Served {
        thread: std::thread::current().name().unwrap_or_default().to_owned(),
        method: CallContext::current().map(|c| c.method().to_owned()),
        runtime: tokio::runtime::Handle::try_current().is_ok(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn inline_methods_are_answered_on_the_io_thread_with_their_context() {
    let server = start(Server::builder(Probe));
    let client = Client::connect(&server.endpoint).expect("a client");
    bounded(async {
        // Answered by a task, which shows `serve` has started: until then
        // inline methods go to tasks too.
        let other: Served = client.call("async_probe", ()).await.unwrap();
        assert_ne!(other.thread, "zerorpc-io", "async methods run in tasks");
        assert_eq!(other.method.as_deref(), Some("async_probe"));
        let inline: Served = client.call("inline_probe", ()).await.unwrap();
        assert_eq!(
            inline,
            Served {
                thread: "zerorpc-io".to_owned(),
                method: Some("inline_probe".to_owned()),
                runtime: true,
            }
        );
        assert!(client.call::<bool>("spawns", ()).await.unwrap());
        // Introspection is answered there too, and still lists everything.
        let name: String = client.call("_zerorpc_name", ()).await.unwrap();
        assert_eq!(name, "Probe");
    })
    .await;
    server.stop().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn with_a_concurrency_limit_inline_methods_run_in_tasks() {
    let server = start(Server::builder(Probe).max_concurrent_calls(4));
    let client = Client::connect(&server.endpoint).expect("a client");
    bounded(async {
        let inline: Served = client.call("inline_probe", ()).await.unwrap();
        assert_ne!(inline.thread, "zerorpc-io");
        assert_eq!(inline.method.as_deref(), Some("inline_probe"));
        assert!(inline.runtime);
    })
    .await;
    server.stop().unwrap();
}
