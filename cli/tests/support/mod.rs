//! Test support shared by the tests of `cli/tests`: `mod support;` from
//! one of them. [`process`]: the `zgossip` binary run as a child, every
//! wait bounded; [`http`]: one HTTP request to its endpoints.
//! (`bridge_net.rs`, the network namespaces, is included on its own by
//! the tests that need it, with `#[path]`.)

pub mod http;
pub mod process;
