//! Inputs that once broke, or nearly broke, the decoder: each must decode or
//! fail cleanly, and reach a fixed point when it decodes.

use zerorpc_wire::{DecodeError, Event};

use crate::props::check_fixed_point;
use crate::unhex;

/// Checks an input that must be rejected with a msgpack error.
#[track_caller]
fn check_rejected(hex: &str) {
    let bytes = unhex(hex);
    check_fixed_point(&bytes);
    let err = Event::decode(&bytes).expect_err("must be rejected");
    assert!(matches!(err, DecodeError::Msgpack(_)), "{err:?}");
}

#[test]
fn reserved_marker_in_args_was_read_as_nil() {
    // rmpv's reader turned 0xc1 into nil, which Python never accepts.
    check_rejected("9381aa6d6573736167655f6964c400a178c1");
}

#[test]
fn invalid_utf8_str_was_accepted() {
    check_rejected("9381aa6d6573736167655f6964c400a178a2c328");
}

#[test]
fn nesting_overflowed_the_stack_in_debug_builds() {
    // 1000 levels used to pass the depth check and then need ~4 MiB of stack
    // in an unoptimized build.
    let mut hex = String::from("9381aa6d6573736167655f6964c400a178");
    hex.push_str(&"91".repeat(1000));
    hex.push_str("c0");
    check_rejected(&hex);
}
