//! A zerorpc server for the demo service.
//!
//! ```text
//! cargo run --example server -- tcp://127.0.0.1:4242
//! ```
//!
//! Then call it with any client, e.g. `cargo run --example client -- tcp://127.0.0.1:4242`
//! or zerorpc-python's `zerorpc tcp://127.0.0.1:4242 add 1 2`.

#[path = "shared/demo_service.rs"]
mod demo_service;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let endpoint = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "tcp://127.0.0.1:4242".to_owned());
    let server = zerorpc::Server::builder(demo_service::DemoService)
        .bind(&endpoint)
        .build()?;
    eprintln!(
        "serving the demo service on {}",
        server.endpoints().join(", ")
    );
    server.run()?;
    Ok(())
}
