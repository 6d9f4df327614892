//! CURVE key generation for C users.

use std::ffi::{c_char, c_int};

use super::boundary::guard;
use super::ownership::{c_string, free_string, out_mut};

/// Generates a CURVE key pair as two 40-character Z85 strings (for
/// `SET PUBLICKEY`, `SET SECRETKEY` and the second argument of `CONNECT`).
/// On success returns 0 and gives you both strings (free them with
/// `zgossip_str_free`); on failure returns a negative code and writes
/// nothing.
#[unsafe(no_mangle)]
pub extern "C" fn zgossip_keypair(
    public_out: *mut *mut c_char,
    secret_out: *mut *mut c_char,
) -> c_int {
    guard(|| {
        // SAFETY: public_out is NULL or valid for writes (API contract).
        let public_out = unsafe { out_mut(public_out, "public_out") }?;
        // SAFETY: secret_out is NULL or valid for writes (API contract).
        let secret_out = unsafe { out_mut(secret_out, "secret_out") }?;
        let (public, secret) = crate::certs::keypair()?;
        let p = c_string(&public)?;
        let s = match c_string(&secret) {
            Ok(s) => s,
            Err(e) => {
                // SAFETY: p came from c_string just above and is not shared.
                unsafe { free_string(p) };
                return Err(e);
            }
        };
        *public_out = p;
        *secret_out = s;
        Ok(0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::{zgossip_result, zgossip_str_free};

    #[test]
    fn gives_two_z85_keys_and_refuses_null_outputs() {
        let mut public: *mut c_char = std::ptr::null_mut();
        let mut secret: *mut c_char = std::ptr::null_mut();
        assert_eq!(zgossip_keypair(&mut public, &mut secret), 0);
        // SAFETY: both are C strings from zgossip_keypair.
        let (p, s) = unsafe {
            (
                std::ffi::CStr::from_ptr(public)
                    .to_str()
                    .unwrap()
                    .to_string(),
                std::ffi::CStr::from_ptr(secret)
                    .to_str()
                    .unwrap()
                    .to_string(),
            )
        };
        assert_eq!((p.len(), s.len()), (40, 40));
        assert_ne!(p, s);
        zgossip_str_free(&mut public);
        zgossip_str_free(&mut secret);
        assert!(public.is_null() && secret.is_null());
        let rc = zgossip_keypair(std::ptr::null_mut(), &mut secret);
        assert_eq!(rc, -(zgossip_result::ZGOSSIP_ERR_NULL_ARG as c_int));
        assert!(secret.is_null(), "nothing written on failure");
    }
}
