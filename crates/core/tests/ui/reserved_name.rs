//! A remote method named as the typed client's own `connect`.

struct Link;

#[zerorpc::service]
impl Link {
    pub fn connect(&self, to: String) -> String {
        to
    }
}

fn main() {}
