//! Settings of one connection ([`ConnectionConfig`]): socket type, limits, extra
//! `READY` properties, and the security mechanism with its keys
//! ([`MechanismConfig`]).

use std::fmt;

use super::socket_type::SocketType;
use crate::wire::curve::{ClientCheck, Keypair, KEY_LEN};
use crate::wire::z85;

/// Default limit on the size of one received frame (1 MiB).
pub const DEFAULT_MAX_FRAME: usize = 1 << 20;

/// Settings of one connection.
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    /// Our socket type, announced in `READY` and checked against the peer's.
    pub socket_type: SocketType,
    /// The as-server greeting flag. NULL requires it to be false (it is
    /// for security mechanisms with client and server roles).
    pub as_server: bool,
    /// Largest frame body we accept, in bytes (also the budget of one
    /// multipart message). Larger frames are refused before buffering.
    /// Must leave room for the peer's `READY` (a few hundred bytes).
    pub max_frame: usize,
    /// Extra `READY` properties sent after `Socket-Type` and `Identity`,
    /// e.g. `("X-ZGossip", b"2")`. Names must be 1 to 255 bytes; entries
    /// with other names are left out.
    pub properties: Vec<(String, Vec<u8>)>,
    /// The security mechanism, NULL by default.
    pub mechanism: MechanismConfig,
    /// When set, the peer is refused: once its greeting arrived it gets an
    /// `ERROR` with this reason and nothing else (no handshake command).
    pub refuse: Option<String>,
    /// Properties the peer must announce with the same value (an absent
    /// one counts as empty), e.g. `("X-ZGossip-Cluster", b"prod")`: a peer
    /// whose value differs gets an `ERROR` naming the property.
    pub matching: Vec<(String, Vec<u8>)>,
}

/// Which security mechanism a connection runs, with its keys.
#[derive(Clone, Default)]
pub enum MechanismConfig {
    /// NULL (RFC 23): no security.
    #[default]
    Null,
    /// CURVE server (greeting as-server = 1) with our long-term key pair;
    /// `check`, when set, decides which client keys may connect.
    CurveServer {
        /// Our long-term key pair (the primary one).
        keys: Keypair,
        /// Other long-term key pairs a client's HELLO may be addressed to
        /// (held during a key rotation; empty for one key).
        also: Vec<Keypair>,
        /// Retired key pairs: a HELLO addressed to one is refused, with a
        /// reason of its own (`curve::HELLO_RETIRED`).
        retired: Vec<Keypair>,
        /// Client authorization (None: any client that knows our key).
        check: Option<ClientCheck>,
    },
    /// CURVE client with our long-term key pair and the server's public key.
    CurveClient {
        /// Our long-term key pair.
        keys: Keypair,
        /// The server's long-term public key.
        server_key: [u8; KEY_LEN],
    },
}

impl fmt::Debug for MechanismConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MechanismConfig::Null => f.write_str("Null"),
            MechanismConfig::CurveServer {
                keys,
                also,
                retired,
                check,
            } => f
                .debug_struct("CurveServer")
                .field("keys", keys)
                .field("also", also)
                .field("retired", &retired.len())
                .field("check", &check.is_some())
                .finish(),
            MechanismConfig::CurveClient { keys, server_key } => f
                .debug_struct("CurveClient")
                .field("keys", keys)
                .field("server_key", &z85::encode_key(server_key))
                .finish(),
        }
    }
}

impl ConnectionConfig {
    /// A configuration with defaults: not as-server, [`DEFAULT_MAX_FRAME`],
    /// no extra properties.
    pub fn new(socket_type: SocketType) -> Self {
        ConnectionConfig {
            socket_type,
            as_server: false,
            max_frame: DEFAULT_MAX_FRAME,
            properties: Vec::new(),
            mechanism: MechanismConfig::Null,
            refuse: None,
            matching: Vec::new(),
        }
    }
}
