//! ZMTP 3.1 connection codec (RFC 23 / RFC 37), sans-IO.
//!
//! A [`Connection`] turns the byte stream received from one peer into
//! [`ConnectionEvent`]s and produces the bytes to send back. It never touches a socket
//! and never reads a clock: the reactor [`feed`](Connection::feed)s received
//! bytes, [`poll`](Connection::poll)s events until `Ok(None)`, writes
//! [`pending_output`](Connection::pending_output) and reports what it wrote
//! with [`consume_output`](Connection::consume_output).
//!
//! What happens on the wire:
//!
//! * Our 64-byte greeting is queued at construction (`FF`, padding
//!   `00 00 00 00 00 00 00 01` as libzmq sends, `7F`, version 3.1, the
//!   mechanism name padded to 20 bytes, as-server, 31 zero bytes).
//! * The peer's greeting is parsed incrementally: a bad signature or a
//!   ZMTP 1.0/2.0 peer is refused as soon as the first 11 bytes are in.
//!   Peers of version 3.0 and later are accepted (RFC 37: "MUST accept
//!   higher protocol versions"); PING is only ever sent to 3.1+ peers.
//! * The security handshake runs through an internal mechanism object,
//!   chosen by [`ConnectionConfig::mechanism`]. NULL: both sides send `READY` with
//!   `Socket-Type` and `Identity` (then any extra properties from
//!   [`ConnectionConfig`]). CURVE (RFC 26, [`super::curve`]): HELLO, WELCOME,
//!   INITIATE, READY, the same metadata inside the INITIATE and READY
//!   boxes; we send as-server = 1 as a CURVE server but do not check the
//!   peer's flag (libzmq 4.3 always sends 0).
//!   The peer's socket type is checked against ours (RFC 37 matrix); on a
//!   handshake error we queue an `ERROR` command with the reason before
//!   closing.
//! * After the handshake, message frames are delivered as whole (possibly
//!   multipart) messages borrowed from the input buffer, so receiving does
//!   not allocate per message. `PING` is answered with `PONG` internally,
//!   `PONG` and unknown commands are ignored (libzmq does the same), and
//!   `ERROR` ends the connection.
//!
//! Limits: every frame whose declared size exceeds [`ConnectionConfig::max_frame`]
//! is refused as soon as its header is read, before any of its body is
//! buffered; a multipart message may not exceed `max_frame` + 9 bytes in
//! total (headers included). Nothing is ever allocated from a length read
//! off the wire.
//!
//! Under CURVE every frame after the handshake travels as a MESSAGE
//! command (a data frame starting `\x07MESSAGE`, as libzmq sends it) whose
//! box holds the MORE/COMMAND flags and the frame. Received boxes are opened
//! into a connection-owned plaintext buffer that [`MessageRef`] borrows
//! from; a MESSAGE frame may be [`super::curve::MESSAGE_OVERHEAD`] bytes
//! above `max_frame`, the plaintext is held to the same budget as a NULL
//! message.
//!
//! One file per part: [`SocketType`] and the RFC 37 matrix
//! (`socket_type.rs`), [`ConnectionConfig`] (`config.rs`), [`PeerInfo`] and the
//! metadata of `READY` (`metadata.rs`), [`MessageRef`] (`message.rs`),
//! [`Error`] (`error.rs`), frame and command encoding (`frame.rs`), the
//! mechanism dispatch with NULL (`mechanism.rs`) and the [`Connection`]
//! state machine (`connection.rs`). [`super::curve`] uses only `frame.rs`
//! and `error.rs`; `config.rs`, `metadata.rs`, `mechanism.rs` and
//! `connection.rs` use it, never the other way round.

mod config;
mod connection;
// `error` and `frame` are visible in `wire` for `curve`, which reports
// this error type and frames its commands.
pub(super) mod error;
pub(super) mod frame;
mod mechanism;
mod message;
mod metadata;
mod socket_type;
#[cfg(test)]
mod test_support;

pub use config::{ConnectionConfig, MechanismConfig, DEFAULT_MAX_FRAME};
pub use connection::{Connection, ConnectionEvent, GREETING_LEN, MAX_PING_CONTEXT};
pub use error::Error;
pub use frame::{is_framed_run, push_single_frame_header, split_single_frame, MAX_HEADER_LEN};
pub use message::{MessageRef, Parts};
pub use metadata::PeerInfo;
pub use socket_type::SocketType;
