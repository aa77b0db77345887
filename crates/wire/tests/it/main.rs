//! Integration tests for zerorpc-wire, in one binary: captured traffic,
//! malformed input, message ids, and property tests of the codec and the
//! serde layer.

mod decode_errors;
mod header;
mod ids;
mod props;
mod regressions;
mod serde_props;
mod vectors;

/// Bytes from a hex string; panics on bad hex, which only test data holds.
fn unhex(hex: &str) -> Vec<u8> {
    assert!(hex.len() % 2 == 0, "odd-length hex {hex:?}");
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("valid hex"))
        .collect()
}
