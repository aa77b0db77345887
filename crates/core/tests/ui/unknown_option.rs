//! A method option the attribute does not know.

struct Shop;

#[zerorpc::service]
impl Shop {
    #[zerorpc(hidden)]
    pub fn stock(&self) -> u32 {
        0
    }
}

fn main() {}
