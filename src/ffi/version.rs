//! The library version, as macros and as a call.

use std::ffi::c_int;

use super::boundary::guard;

/// Major version of the header (`ZGOSSIP_VERSION` combines all three with
/// `ZGOSSIP_MAKE_VERSION`).
pub const ZGOSSIP_VERSION_MAJOR: c_int = 0;
/// Minor version of the header.
pub const ZGOSSIP_VERSION_MINOR: c_int = 1;
/// Patch version of the header.
pub const ZGOSSIP_VERSION_PATCH: c_int = 0;

/// The version of the library linked at run time; compare it with the
/// `ZGOSSIP_VERSION_*` macros of the header compiled against. Any pointer
/// may be NULL; that part is then not written.
#[unsafe(no_mangle)]
pub extern "C" fn zgossip_version(major: *mut c_int, minor: *mut c_int, patch: *mut c_int) {
    guard(|| {
        for (out, value) in [
            (major, ZGOSSIP_VERSION_MAJOR),
            (minor, ZGOSSIP_VERSION_MINOR),
            (patch, ZGOSSIP_VERSION_PATCH),
        ] {
            // SAFETY: each pointer is NULL or valid for writes (API contract).
            if let Some(out) = unsafe { out.as_mut() } {
                *out = value;
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_follow_cargo_version() {
        let v = |s: &str| s.parse::<c_int>().unwrap();
        assert_eq!(ZGOSSIP_VERSION_MAJOR, v(env!("CARGO_PKG_VERSION_MAJOR")));
        assert_eq!(ZGOSSIP_VERSION_MINOR, v(env!("CARGO_PKG_VERSION_MINOR")));
        assert_eq!(ZGOSSIP_VERSION_PATCH, v(env!("CARGO_PKG_VERSION_PATCH")));
    }

    #[test]
    fn version_call_tolerates_null() {
        let mut minor = -1;
        zgossip_version(std::ptr::null_mut(), &mut minor, std::ptr::null_mut());
        assert_eq!(minor, ZGOSSIP_VERSION_MINOR);
    }
}
