//! What the attributes say about code they cannot accept: each case in
//! `tests/ui` fails to compile with the message pinned next to it, spanned
//! where the fix goes. `TRYBUILD=overwrite` rewrites the messages.

#[test]
fn rejected_shapes_get_one_error_pointing_at_the_fix() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
