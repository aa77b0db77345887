//! An error type without `Display`: one error on it, saying what to implement.

struct Shop;

#[derive(Debug)]
struct OutOfStock;

#[zerorpc::service]
impl Shop {
    pub fn reserve(&self, item: String) -> Result<u32, OutOfStock> {
        let _ = item;
        Err(OutOfStock)
    }
}

fn main() {}
