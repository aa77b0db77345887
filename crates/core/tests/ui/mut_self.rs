//! `&mut self`: calls run concurrently, so the error suggests a Mutex.

struct Counter {
    n: u64,
}

#[zerorpc::service]
impl Counter {
    pub fn bump(&mut self) -> u64 {
        self.n += 1;
        self.n
    }
}

fn main() {}
