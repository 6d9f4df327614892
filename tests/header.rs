//! The committed C header is what cbindgen makes of `src/ffi/` now.
//!
//! Uses cbindgen as a library, pinned (Cargo.toml) to the version that
//! `scripts/gen-header.sh` runs, so it needs nothing installed beyond the
//! dev-dependencies. When it fails, run `scripts/gen-header.sh` and commit.

use std::path::Path;

#[test]
fn committed_header_is_up_to_date() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(root.join("cbindgen.toml")).expect("cbindgen.toml");
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(root.join("src/ffi/mod.rs"))
        .generate()
        .expect("cbindgen parses src/ffi");
    let mut generated = Vec::new();
    bindings.write(&mut generated);
    let generated = String::from_utf8(generated).expect("UTF-8 header");
    let committed = std::fs::read_to_string(root.join("include/zgossip.h")).expect("the header");
    if generated != committed {
        let line = generated
            .lines()
            .zip(committed.lines())
            .position(|(g, c)| g != c)
            .map_or_else(|| "the end".to_string(), |i| format!("line {}", i + 1));
        panic!(
            "include/zgossip.h is stale (first difference at {line}): \
             run scripts/gen-header.sh and commit the result"
        );
    }
}
