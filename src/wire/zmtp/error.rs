//! Why a connection failed or refused an operation ([`Error`]).

use std::fmt;

use super::socket_type::SocketType;

/// Why a connection failed or refused an operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The greeting does not start with `FF` .. `7F` (not ZMTP, or ZMTP 1.0).
    BadSignature,
    /// The peer speaks a ZMTP version before 3.0.
    UnsupportedVersion {
        /// The peer's major version octet.
        major: u8,
    },
    /// The peer's security mechanism differs from ours.
    MechanismMismatch {
        /// Our mechanism name.
        ours: &'static str,
        /// The peer's mechanism name (lossy UTF-8, padding removed).
        peer: String,
    },
    /// A frame flags octet has reserved bits set, or MORE on a command.
    BadFlags(u8),
    /// A frame declares a body larger than `max_frame`.
    FrameTooLarge {
        /// Declared size.
        size: u64,
        /// Configured limit.
        limit: usize,
    },
    /// A multipart message exceeds its size budget.
    MessageTooLarge {
        /// Bytes of the message seen so far (headers included).
        size: usize,
        /// Limit in bytes (headers included).
        limit: usize,
    },
    /// A command frame is malformed (the string names the problem).
    MalformedCommand(&'static str),
    /// A command that is not allowed at this point of the handshake.
    UnexpectedCommand(String),
    /// A message frame arrived before the handshake completed.
    UnexpectedMessage,
    /// A command frame arrived in the middle of a multipart message.
    CommandInsideMessage,
    /// The peer's `READY` has no `Socket-Type`.
    MissingSocketType,
    /// The peer's `Socket-Type` is not a socket type we know.
    UnknownSocketType(String),
    /// The peer's socket type cannot talk to ours.
    IncompatibleSocketType {
        /// The peer's type.
        peer: SocketType,
        /// Our type.
        ours: SocketType,
    },
    /// The peer announced another value of a property that must match
    /// ([`ConnectionConfig::matching`](super::ConnectionConfig)).
    PropertyMismatch {
        name: String,
        ours: String,
        peer: String,
    },
    /// The peer sent an `ERROR` command with this reason.
    PeerError(String),
    /// Sending a message before the handshake completed.
    NotReady,
    /// Sending on a connection that failed or was closed.
    Closed,
    /// Sending a message with no frames.
    EmptyMessage,
    /// A CURVE box did not open, a nonce did not increase, or another
    /// cryptographic check failed (the string names it).
    Crypto(&'static str),
    /// The peer authenticated but is not allowed in (the reason).
    Refused(String),
    /// Output handed to [`Connection::queue_framed`] is not a run of whole
    /// one-frame messages (a bug in the caller).
    ///
    /// [`Connection::queue_framed`]: super::Connection::queue_framed
    BadFraming,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::BadSignature => f.write_str("peer greeting has bad signature"),
            Error::UnsupportedVersion { major } => {
                write!(f, "peer speaks ZMTP major version {major}, need 3 or later")
            }
            Error::MechanismMismatch { ours, peer } => {
                write!(f, "peer security mechanism {peer:?} does not match {ours}")
            }
            Error::BadFlags(b) => write!(f, "invalid frame flags 0x{b:02x}"),
            Error::FrameTooLarge { size, limit } => {
                write!(f, "frame of {size} bytes exceeds limit {limit}")
            }
            Error::MessageTooLarge { size, limit } => {
                write!(f, "multipart message of {size} bytes exceeds limit {limit}")
            }
            Error::MalformedCommand(what) => write!(f, "malformed command: {what}"),
            Error::UnexpectedCommand(name) => {
                write!(f, "unexpected command {name} during handshake")
            }
            Error::UnexpectedMessage => f.write_str("message frame before handshake completed"),
            Error::CommandInsideMessage => f.write_str("command frame inside a multipart message"),
            Error::MissingSocketType => f.write_str("peer READY has no Socket-Type"),
            Error::UnknownSocketType(t) => write!(f, "peer socket type {t:?} is unknown"),
            Error::IncompatibleSocketType { peer, ours } => {
                write!(f, "peer socket type {peer} is incompatible with {ours}")
            }
            Error::PropertyMismatch { name, ours, peer } => {
                write!(
                    f,
                    "{name} differs: the peer's is '{peer}', ours is '{ours}'"
                )
            }
            Error::PeerError(reason) => write!(f, "peer sent ERROR: {reason}"),
            Error::NotReady => f.write_str("connection handshake not complete"),
            Error::Closed => f.write_str("connection is closed"),
            Error::EmptyMessage => f.write_str("message has no frames"),
            Error::Crypto(what) => write!(f, "CURVE: {what}"),
            Error::Refused(why) => write!(f, "access denied: {why}"),
            Error::BadFraming => f.write_str("queued output is not whole one-frame messages"),
        }
    }
}

impl std::error::Error for Error {}
