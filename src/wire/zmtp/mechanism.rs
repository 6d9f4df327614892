//! The security mechanism of a connection: NULL (RFC 23), handled here,
//! or CURVE (RFC 26), handed to [`crate::wire::curve`].

use super::config::{ConnectionConfig, MechanismConfig};
use super::error::Error;
use super::frame::{error_reason, push_command, push_frame, FLAG_MORE};
use super::metadata::{metadata, parse_metadata, PeerInfo};
use crate::wire::curve::{self, Curve};

/// Outcome of a handshake command.
pub(super) enum Handshake {
    /// More handshake commands are expected (CURVE).
    Continue,
    /// The handshake completed.
    Done(PeerInfo),
}

/// State of the NULL mechanism. It has no state today; the struct exists
/// so that every mechanism has the same shape.
#[derive(Debug, Default)]
pub(super) struct NullMechanism;

/// The security mechanism of a connection. Handshake commands and, after
/// the handshake, message frames go through it.
#[derive(Debug)]
pub(super) enum Mechanism {
    Null(NullMechanism),
    Curve(Box<Curve>),
}

impl Mechanism {
    pub(super) fn new(config: &MechanismConfig) -> Mechanism {
        match config {
            MechanismConfig::Null => Mechanism::Null(NullMechanism),
            MechanismConfig::CurveServer {
                keys,
                also,
                retired,
                check,
            } => Mechanism::Curve(Box::new(Curve::server_of(
                keys.clone(),
                also.clone(),
                retired.clone(),
                check.clone(),
            ))),
            MechanismConfig::CurveClient { keys, server_key } => {
                Mechanism::Curve(Box::new(Curve::client(keys.clone(), *server_key)))
            }
        }
    }

    pub(super) fn name(&self) -> &'static str {
        match self {
            Mechanism::Null(_) => "NULL",
            Mechanism::Curve(_) => "CURVE",
        }
    }

    /// Under CURVE as server: the public key the peer's HELLO was
    /// addressed to, once one opened.
    pub(super) fn curve_server_key(&self) -> Option<[u8; curve::KEY_LEN]> {
        match self {
            Mechanism::Null(_) => None,
            Mechanism::Curve(c) => c.server_key_used(),
        }
    }

    /// The as-server flag we send.
    pub(super) fn as_server(&self, config: &ConnectionConfig) -> bool {
        match self {
            Mechanism::Null(_) => config.as_server,
            Mechanism::Curve(c) => c.is_server(),
        }
    }

    /// Called once the peer's greeting is accepted: queue our first
    /// handshake commands.
    pub(super) fn start(
        &mut self,
        config: &ConnectionConfig,
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        match self {
            Mechanism::Null(_) => {
                push_command(out, b"READY", &[&metadata(config)]);
                Ok(())
            }
            Mechanism::Curve(c) => c.start(out),
        }
    }

    /// Handles one handshake command from the peer.
    pub(super) fn on_handshake_command(
        &mut self,
        config: &ConnectionConfig,
        name: &[u8],
        data: &[u8],
        versions: (u8, u8),
        out: &mut Vec<u8>,
    ) -> Result<Handshake, Error> {
        if name == b"ERROR" {
            return Err(Error::PeerError(error_reason(data)));
        }
        match self {
            Mechanism::Null(_) => match name {
                b"READY" => parse_metadata(config, data, versions, None).map(Handshake::Done),
                other => Err(Error::UnexpectedCommand(
                    String::from_utf8_lossy(other).into_owned(),
                )),
            },
            Mechanism::Curve(c) => match c.on_command(name, data, &metadata(config), out)? {
                None => Ok(Handshake::Continue),
                Some(done) => parse_metadata(config, &done.metadata, versions, Some(done.peer_key))
                    .map(Handshake::Done),
            },
        }
    }

    /// Appends one outgoing message frame.
    pub(super) fn encode_message_frame(
        &mut self,
        more: bool,
        body: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        match self {
            Mechanism::Null(_) => {
                push_frame(out, if more { FLAG_MORE } else { 0 }, body.len());
                out.extend_from_slice(body);
                Ok(())
            }
            Mechanism::Curve(c) => {
                let flags = if more { curve::INNER_MORE } else { 0 };
                c.seal_message(flags, &[body], out)
            }
        }
    }

    /// Appends one outgoing command after the handshake.
    pub(super) fn encode_command(
        &mut self,
        name: &[u8],
        data: &[&[u8]],
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        match self {
            Mechanism::Null(_) => {
                push_command(out, name, data);
                Ok(())
            }
            Mechanism::Curve(c) => {
                let len = [name.len() as u8];
                let mut parts: Vec<&[u8]> = vec![&len, name];
                parts.extend_from_slice(data);
                c.seal_message(curve::INNER_COMMAND, &parts, out)
            }
        }
    }
}
