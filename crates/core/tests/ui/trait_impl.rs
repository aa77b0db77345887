//! The service attribute on a trait impl.

struct Shop;

trait Named {
    fn name(&self) -> String;
}

#[zerorpc::service]
impl Named for Shop {
    fn name(&self) -> String {
        "shop".to_owned()
    }
}

fn main() {}
