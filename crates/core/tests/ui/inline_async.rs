//! `#[zerorpc(inline)]` on an async method.

struct Clock;

#[zerorpc::service]
impl Clock {
    #[zerorpc(inline)]
    pub async fn now(&self) -> u64 {
        0
    }
}

fn main() {}
