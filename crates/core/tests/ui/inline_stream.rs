//! `#[zerorpc(inline)]` on a method returning a stream.

struct Clock;

#[zerorpc::service]
impl Clock {
    #[zerorpc(inline)]
    pub fn ticks(&self) -> impl Iterator<Item = u64> {
        0..3
    }
}

fn main() {}
