//! A zerorpc client calling the demo service.
//!
//! ```text
//! cargo run --example client -- tcp://127.0.0.1:4242
//! ```

use futures::StreamExt;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let endpoint = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "tcp://127.0.0.1:4242".to_owned());
    let client = zerorpc::Client::connect(&endpoint)?;

    let sum: f64 = client.call("add", (1, 2)).await?;
    println!("add(1, 2) = {sum}");

    let mut numbers = client.stream::<u64>("count", (5,)).await?;
    while let Some(n) = numbers.next().await {
        println!("count: {}", n?);
    }

    match client.call::<()>("fail", ("something went wrong",)).await {
        Err(e) if e.is_remote() => println!("remote error:\n{e}"),
        other => println!("unexpected: {other:?}"),
    }
    Ok(())
}
