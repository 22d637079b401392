//! Build script: generates Rust declarations for our own Monkey ABI header.
//!
//! `include/monkey_abi.h` (written by this project from `../shared/monkey-abi.md`) is run
//! through bindgen into `$OUT_DIR/monkey_abi.rs`, which `src/monkey/sys.rs` includes. Layout
//! tests are our own (`src/monkey/layout_tests.rs`), so bindgen's are switched off.
//!
//! bindgen needs libclang at build time (Debian: `libclang-dev`).

use std::env;
use std::path::PathBuf;

use bindgen::callbacks::{IntKind, ParseCallbacks};

const HEADER: &str = "include/monkey_abi.h";

/// Chooses the Rust type of each `#define` constant so it matches the C field or parameter
/// it is used with: event masks (`uint32_t mask`, `ev_add`'s mask) and plugin hook bits
/// (`unsigned int hooks`) are `u32`, event status values (`uint8_t status`) are `u8`, and
/// everything else is `i32` (C `int`).
#[derive(Debug)]
struct ConstTypes;

impl ParseCallbacks for ConstTypes {
    fn int_macro(&self, name: &str, _value: i64) -> Option<IntKind> {
        const U32: &[&str] = &[
            "MK_EVENT_EMPTY",
            "MK_EVENT_READ",
            "MK_EVENT_WRITE",
            "MK_EVENT_SLEEP",
            "MK_EVENT_CLOSE",
            "MK_EVENT_LEVEL",
            "MK_EVENT_EDGE",
            "MK_PLUGIN_STAGE",
            "MK_PLUGIN_STAGE_10",
            "MK_PLUGIN_STAGE_20",
            "MK_PLUGIN_STAGE_30",
            "MK_PLUGIN_STAGE_40",
            "MK_PLUGIN_STAGE_50",
            "MK_PLUGIN_NETWORK_LAYER",
            "MK_CAP_SOCK_PLAIN",
            "MK_CAP_SOCK_TLS",
        ];
        const U8: &[&str] = &["MK_EVENT_NONE", "MK_EVENT_REGISTERED"];
        Some(if U32.contains(&name) {
            IntKind::U32
        } else if U8.contains(&name) {
            IntKind::U8
        } else {
            IntKind::I32
        })
    }
}

/// The crate's MSRV (`rust-version = "1.80"`): bindgen must not emit newer syntax.
fn rust_target() -> bindgen::RustTarget {
    match bindgen::RustTarget::stable(80, 0) {
        Ok(target) => target,
        Err(_) => panic!("bindgen does not know Rust 1.80"),
    }
}

fn main() {
    println!("cargo:rerun-if-changed={HEADER}");
    println!("cargo:rerun-if-changed=build.rs");
    // `cfg(monkey)`: a real Monkey build is there to test against (`MONKEY_BIN`). The
    // real-Monkey tests are marked ignored without it, so `cargo test` reports them as
    // ignored, not as passed.
    println!("cargo::rustc-check-cfg=cfg(monkey)");
    println!("cargo:rerun-if-env-changed=MONKEY_BIN");
    if env::var_os("MONKEY_BIN").is_some_and(|v| !v.is_empty()) {
        println!("cargo:rustc-cfg=monkey");
    }

    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR is set by cargo"));

    let bindings = bindgen::Builder::default()
        .header(HEADER)
        // The header describes x86_64 Linux Monkey; keep clang's view of C the same as
        // Monkey's build (-std=gnu99).
        .clang_arg("-std=gnu99")
        .allowlist_type("mk_.*")
        .allowlist_type("plugin_api")
        .allowlist_type("response_headers")
        .allowlist_type("file_info")
        .allowlist_var("MK_.*")
        .allowlist_var("SH_.*")
        .parse_callbacks(Box::new(ConstTypes))
        .derive_default(true)
        .derive_debug(true)
        .derive_copy(true)
        .layout_tests(false)
        .generate_comments(true)
        .rust_target(rust_target())
        .generate()
        .expect("bindgen failed on include/monkey_abi.h (is libclang installed?)");

    bindings
        .write_to_file(out.join("monkey_abi.rs"))
        .expect("writing monkey_abi.rs");
}
