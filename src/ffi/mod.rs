//! The C API: a thin skin over [`crate::Node`]. The header
//! `include/zgossip.h` is generated from this module by cbindgen
//! (`scripts/gen-header.sh`); `bindings/c/` adds the variadic CZMQ-style
//! calls `zgossip_sendx` and `zgossip_recvx`, compiled into the library.
//!
//! Conventions, for every call:
//! - fallible calls return an `int`: 0 or a count on success, a negated
//!   [`zgossip_result`] on failure; calls returning a pointer return NULL on
//!   failure; `zgossip_last_error` then says why;
//! - outputs come last; `**` arguments transfer ownership;
//! - nothing is written to outputs when a call fails;
//! - every pointer is checked for NULL and every string for UTF-8;
//! - no panic crosses the boundary: one is caught and reported as
//!   `ZGOSSIP_ERR_PANIC`.
//!
//! `unsafe` appears only in this module; every block says why it holds.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]
// The exported functions take raw pointers from C and check them (NULL)
// before use; they are `extern "C"` entry points, not unsafe Rust API.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

mod boundary;
// cbindgen writes the header in the order of these declarations:
// `keys` before `error` keeps `zgossip_keypair` where include/zgossip.h
// has always had it (a separate group, so rustfmt does not sort it).
mod keys;

mod error;
mod log_handler;
mod node;
mod ownership;
mod version;
mod view;

pub use error::{zgossip_last_error, zgossip_result, zgossip_result_name};
pub use keys::zgossip_keypair;
pub use log_handler::{
    zgossip_log_fn, zgossip_log_level, zgossip_set_log_handler, zgossip_set_log_level,
};
pub use node::{
    zgossip_destroy, zgossip_fd, zgossip_frames_free, zgossip_new, zgossip_rcvtimeo, zgossip_recv,
    zgossip_recv_view, zgossip_send, zgossip_set_rcvtimeo, zgossip_str_free, zgossip_str_send,
    zgossip_t,
};
pub use version::{
    zgossip_version, ZGOSSIP_VERSION_MAJOR, ZGOSSIP_VERSION_MINOR, ZGOSSIP_VERSION_PATCH,
};
