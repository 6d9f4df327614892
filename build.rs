//! Compiles the variadic C calls (bindings/c) into the library and gives
//! the shared library its soname.

/// The calls defined in bindings/c/zgossip_x.c (keep in step with
/// bindings/c/zgossip_x.map).
const C_CALLS: [&str; 2] = ["zgossip_sendx", "zgossip_recvx"];

fn main() {
    println!("cargo:rerun-if-changed=bindings/c/zgossip_x.c");
    println!("cargo:rerun-if-changed=bindings/c/zgossip_x.map");
    println!("cargo:rerun-if-changed=include/zgossip.h");
    cc::Build::new()
        .file("bindings/c/zgossip_x.c")
        .include("include")
        .std("c99")
        .warnings(true)
        .extra_warnings(true)
        .compile("zgossip_x");

    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if target_os == "linux" || target_os == "freebsd" || target_os == "android" {
        // cargo sets no soname; the shared library must carry one so that
        // programs linked against libzgossip.so.0 keep working across
        // compatible updates. The number is the package's major version.
        let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_else(|_| "0".into());
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libzgossip.so.{major}");
        // Nothing in Rust calls the C calls: pull them into the shared
        // library, and export them (rustc's version script hides all but
        // Rust items; the linker merges ours with it).
        for sym in C_CALLS {
            println!("cargo:rustc-cdylib-link-arg=-Wl,--undefined={sym}");
        }
        let dir = std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo");
        println!("cargo:rustc-cdylib-link-arg=-Wl,--version-script={dir}/bindings/c/zgossip_x.map");
    }
}
