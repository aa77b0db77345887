//! A `&str` parameter: the error asks for a `String`.

struct Greeter;

#[zerorpc::service]
impl Greeter {
    pub fn greet(&self, name: &str) -> String {
        format!("hello {name}")
    }
}

fn main() {}
