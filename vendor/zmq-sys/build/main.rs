//! Builds the vendored libzmq (zeromq-src) with libsodium, so that the
//! CURVE mechanism is compiled in. libsodium-sys-stable builds libsodium
//! (or finds the system's, with `SODIUM_USE_PKG_CONFIG=1`) and tells us
//! where it put the library and headers.

use std::env;

fn main() {
    println!("cargo:rerun-if-changed=build/main.rs");
    println!("cargo:rerun-if-env-changed=PROFILE");

    let lib = env::var("DEP_SODIUM_LIB").expect("libsodium-sys-stable gives its lib directory");
    let include =
        env::var("DEP_SODIUM_INCLUDE").expect("libsodium-sys-stable gives its include directory");
    zeromq_src::Build::new()
        .with_libsodium(Some(zeromq_src::LibLocation::new(lib, include)))
        .build();
}
