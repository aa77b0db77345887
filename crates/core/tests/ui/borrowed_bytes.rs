//! A borrowed slice inside an `Option`: the error asks for a `Vec<u8>`.

struct Store;

#[zerorpc::service]
impl Store {
    pub fn put(&self, key: String, data: Option<&[u8]>) -> usize {
        key.len() + data.map_or(0, <[u8]>::len)
    }
}

fn main() {}
