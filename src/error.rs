//! Errors the library reports to its users.

use std::fmt;
use std::io;

/// What went wrong, as a value. Every variant has a readable message.
#[derive(Debug)]
pub enum Error {
    /// The application sent a command the node refuses: unknown name,
    /// missing or extra argument, bad endpoint, key too long, ...
    Command(String),
    /// An operating-system operation failed: binding, a file, a thread.
    Io { context: String, source: io::Error },
    /// A configuration file or path could not be read, written or applied.
    Config(String),
    /// The node has terminated; nothing more can be sent or received.
    Terminated,
}

/// The category of an [`Error`], stable for bindings (the C API uses the
/// numbers below as return codes, negated).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum ErrorKind {
    Command = 1,
    Io = 2,
    Config = 3,
    Terminated = 4,
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Command(_) => ErrorKind::Command,
            Error::Io { .. } => ErrorKind::Io,
            Error::Config(_) => ErrorKind::Config,
            Error::Terminated => ErrorKind::Terminated,
        }
    }

    pub(crate) fn command(msg: impl Into<String>) -> Error {
        Error::Command(msg.into())
    }

    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Command(m) => write!(f, "{m}"),
            Error::Io { context, source } => write!(f, "{context}: {source}"),
            Error::Config(m) => write!(f, "{m}"),
            Error::Terminated => write!(f, "the node has terminated"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
