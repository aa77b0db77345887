//! A `#[zerorpc::client]` trait holding something other than methods.

#[zerorpc::client]
trait Calculator {
    const PRECISION: u32;

    fn add(&self, a: i64, b: i64) -> i64;
}

fn main() {}
