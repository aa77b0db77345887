//! Property tests of the serde layer: Rust values of every shape survive
//! `to_value` → event encoding → decoding → `from_value`.
