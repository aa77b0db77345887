//! Blocking methods (plain sync methods, `Methods::add_blocking`) run on
//! tokio's blocking pool, which sends their replies: with the call's
//! context, side by side, one at a time under a concurrency limit, and a
//! panic answered as an error.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use zerorpc::{Arg, CallContext, Client, ErrorKind, MethodInfo, Methods, Server, Value};

use super::{bounded, start};

/// How many calls wait for each other in `meet`.
const MEETING: usize = 4;

/// A service whose methods block, made by hand as a program registering
/// methods at run time would.
fn blocking_methods(active: Arc<AtomicUsize>, most_active: Arc<AtomicUsize>) -> Methods {
    let mut methods = Methods::new("Blocking");
    let meeting = Arc::new(Barrier::new(MEETING));
    methods.add_blocking("meet", MethodInfo::new(), move |_| {
        // Returns only once MEETING calls are in here at once: they can
        // only all be answered if they run side by side.
        let leader = meeting.wait().is_leader();
        Ok(Value::from(leader))
    });
    methods.add_blocking("whoami", MethodInfo::new(), |_| {
        let context = CallContext::current().expect("a blocking method runs with its context");
        let runtime = tokio::runtime::Handle::try_current().is_ok();
        Ok(Value::Array(vec![context.method().into(), runtime.into()]))
    });
    methods.add_blocking("nap", MethodInfo::new().arg(Arg::new("ms")), move |args| {
        let now = active.fetch_add(1, Ordering::SeqCst) + 1;
        most_active.fetch_max(now, Ordering::SeqCst);
        let ms = args.first().and_then(Value::as_u64).unwrap_or(0);
        std::thread::sleep(Duration::from_millis(ms));
        active.fetch_sub(1, Ordering::SeqCst);
        Ok(Value::from(now))
    });
    methods.add_blocking("explode", MethodInfo::new(), |_| panic!("boom"));
    methods
}

#[tokio::test(flavor = "multi_thread")]
async fn blocking_methods_run_side_by_side_with_their_context() {
    let methods = blocking_methods(Arc::default(), Arc::default());
    let server = start(Server::builder(methods));
    let client = Client::connect(&server.endpoint).expect("a client");
    bounded(async {
        let meetings = (0..MEETING).map(|_| client.call::<bool>("meet", ()));
        let leaders = futures::future::try_join_all(meetings)
            .await
            .expect("calls that wait for each other are all answered");
        assert_eq!(leaders.iter().filter(|&&leader| leader).count(), 1);

        let (method, runtime): (String, bool) = client.call("whoami", ()).await.unwrap();
        assert_eq!((method.as_str(), runtime), ("whoami", true));

        let error = client
            .call::<Value>("explode", ())
            .await
            .expect_err("a panic is an error reply");
        assert_eq!(error.kind(), ErrorKind::Remote);
        let remote = error.remote().expect("a remote error");
        assert_eq!(remote.name(), "Panic");
        assert!(remote.message().contains("boom"), "{remote:?}");
        // The server goes on serving after the panic.
        let again: (String, bool) = client.call("whoami", ()).await.unwrap();
        assert_eq!(again.0, "whoami");
    })
    .await;
    server.stop().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn under_a_limit_blocking_methods_run_one_at_a_time_until_replied() {
    let most_active = Arc::new(AtomicUsize::new(0));
    let methods = blocking_methods(Arc::default(), most_active.clone());
    let server = start(Server::builder(methods).max_concurrent_calls(1));
    let client = Client::connect(&server.endpoint).expect("a client");
    bounded(async {
        let naps = (0..4).map(|_| client.call::<usize>("nap", (50,)));
        let overlaps = futures::future::try_join_all(naps)
            .await
            .expect("every waiting call is answered");
        assert_eq!(overlaps, [1, 1, 1, 1]);
        assert_eq!(most_active.load(Ordering::SeqCst), 1);
    })
    .await;
    server.stop().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn calls_that_arrive_before_serve_starts_are_served_once_it_does() {
    let mut methods = blocking_methods(Arc::default(), Arc::default());
    methods.add_inline_async("soon", MethodInfo::new(), |_| async {
        Ok(Value::from("soon"))
    });
    let server = Server::builder(methods)
        .bind("tcp://127.0.0.1:*")
        .build()
        .expect("the server builds");
    let client = Client::connect(&server.endpoints()[0]).expect("a client");
    bounded(async {
        let early = {
            let client = client.clone();
            tokio::spawn(async move {
                let whoami = client.call::<(String, bool)>("whoami", ());
                let soon = client.call::<String>("soon", ());
                futures::future::try_join(whoami, soon).await
            })
        };
        // Both requests reach the server before it serves.
        let stats = server.shutdown_handle();
        while stats.stats().received < 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let serving = tokio::spawn(server.serve());
        let ((method, _), soon) = early
            .await
            .unwrap()
            .expect("calls made before serve are answered");
        assert_eq!((method.as_str(), soon.as_str()), ("whoami", "soon"));
        stats.shutdown();
        serving
            .await
            .unwrap()
            .expect("serve returns once shut down");
    })
    .await;
}
