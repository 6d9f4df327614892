//! zgossip: nodes publish key/value tuples that spread through a loosely
//! connected network until every node holds them. Wire-compatible with
//! CZMQ 4.2.1 `zgossip`.

pub mod config;
pub mod wire;
