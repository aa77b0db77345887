//! The demo service shared by the examples: a few methods that show what a
//! zerorpc service can do.

use std::time::Duration;

use zerorpc::Value;

/// A small service to try any client against.
pub(crate) struct DemoService;

/// The error `fail` returns.
#[derive(Debug)]
pub(crate) struct DemoError(pub(crate) String);

impl std::fmt::Display for DemoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DemoError {}

#[zerorpc::service(name = "demo")]
impl DemoService {
    /// Adds two numbers.
    #[zerorpc(inline)]
    pub(crate) fn add(&self, a: f64, b: f64) -> f64 {
        a + b
    }

    /// Returns its argument unchanged, whatever its type.
    pub(crate) fn echo(&self, value: Value) -> Value {
        value
    }

    /// Fails with a remote error carrying the message.
    pub(crate) fn fail(&self, message: String) -> Result<(), DemoError> {
        Err(DemoError(message))
    }

    /// Streams the numbers 0 to n-1.
    pub(crate) fn count(&self, n: u64) -> impl Iterator<Item = u64> {
        0..n
    }

    /// Sleeps for the given number of seconds, then returns it.
    pub(crate) async fn sleep(&self, seconds: f64) -> f64 {
        tokio::time::sleep(Duration::from_secs_f64(seconds.clamp(0.0, 86_400.0))).await;
        seconds
    }
}
