//! The CurveZMQ security mechanism (ZeroMQ RFC 26, as ZMTP 3.x carries it),
//! sans-IO: the handshake (HELLO, WELCOME, INITIATE, READY) and the
//! MESSAGE boxes that carry every frame afterwards. [`super::zmtp`] drives
//! it through its internal mechanism enum (this module uses only the frame
//! encoding and error type of `zmtp`); nothing here reads a socket or a
//! clock.
//!
//! Cryptography is NaCl's `crypto_box` (X25519 + XSalsa20-Poly1305) and
//! `crypto_secretbox`, from RustCrypto's `crypto_box`/`crypto_secretbox`
//! crates; a box on the wire is the 16-byte Poly1305 tag followed by the
//! ciphertext (NaCl's box without its 16 leading zero bytes).
//!
//! Byte layouts (command bodies after the name):
//!
//! | command | body |
//! | --- | --- |
//! | HELLO | version `01 00`, 72 zero bytes, C' (32), short nonce (8), Box[64 zeros](C'->S) (80) |
//! | WELCOME | long nonce (16), Box[S' + cookie](S->C') (144) |
//! | INITIATE | cookie (96), short nonce (8), Box[C + vouch nonce (16) + vouch (80) + metadata](C'->S') |
//! | READY | short nonce (8), Box[metadata](S'->C') |
//! | MESSAGE | short nonce (8), Box[flags + frame](C'->S' or S'->C') |
//!
//! The cookie is a 16-byte nonce and Box[C' + s'](cookie key), the cookie
//! key drawn for this connection alone; the vouch is Box[C' + S](C->S').
//! Nonce prefixes: `CurveZMQHELLO---`, `WELCOME-`, `COOKIE--`, `VOUCH---`,
//! `CurveZMQINITIATE`, `CurveZMQREADY---`, `CurveZMQMESSAGEC` (client to
//! server) and `CurveZMQMESSAGES` (server to client). Short nonces are
//! big-endian counters: the client sends HELLO with 1, INITIATE with 2,
//! then messages; the server READY with 1, then messages. A received short
//! nonce must be strictly greater than the previous one from that peer, so
//! a replayed or reordered box is refused; a box that does not open (forged,
//! altered, wrong key) is refused. Every length is checked before it is read.

use std::fmt;
use std::sync::Arc;

use crypto_box::aead::Aead;
use crypto_box::{PublicKey, SalsaBox, SecretKey};
use crypto_secretbox::{KeyInit, XSalsa20Poly1305};

use super::zmtp::error::Error;
use super::zmtp::frame::{push_command, push_frame};

/// Bytes in a CURVE key (public or secret).
pub const KEY_LEN: usize = 32;
/// Poly1305 tag prepended to every box.
const TAG_LEN: usize = 16;
/// HELLO body after the command name.
const HELLO_LEN: usize = 2 + 72 + 32 + 8 + 80;
/// WELCOME body after the command name.
const WELCOME_LEN: usize = 16 + 144;
/// Cookie: nonce + Box[C' + s'].
const COOKIE_LEN: usize = 16 + 80;
/// INITIATE body without metadata.
const INITIATE_MIN: usize = COOKIE_LEN + 8 + TAG_LEN + 32 + 16 + 80;
/// READY body without metadata.
const READY_MIN: usize = 8 + TAG_LEN;
/// `\x07MESSAGE`, then short nonce, then box with at least the flags.
const MESSAGE_NAME: &[u8] = b"\x07MESSAGE";
/// Bytes a MESSAGE command adds to the frame it carries.
pub const MESSAGE_OVERHEAD: usize = 8 + 8 + TAG_LEN + 1;

/// Flags inside a MESSAGE box (libzmq's msg_t bits).
pub(crate) const INNER_MORE: u8 = 0x01;
pub(crate) const INNER_COMMAND: u8 = 0x02;

/// The function behind a [`ClientCheck`].
pub type CheckFn = dyn Fn(&[u8; KEY_LEN]) -> Result<(), String> + Send + Sync;

/// Decides whether a CURVE client, known by its long-term public key, may
/// connect. `Err` carries the reason sent back in the `ERROR` command.
#[derive(Clone)]
pub struct ClientCheck(pub Arc<CheckFn>);

impl fmt::Debug for ClientCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientCheck(..)")
    }
}

/// A long-term CURVE key pair.
#[derive(Clone, PartialEq, Eq)]
pub struct Keypair {
    /// Public key, shared with peers.
    pub public: [u8; KEY_LEN],
    /// Secret key, never leaves this process.
    pub secret: [u8; KEY_LEN],
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Keypair {{ public: {}, secret: <redacted> }}",
            super::z85::encode_key(&self.public)
        )
    }
}

impl Keypair {
    /// Draws a fresh key pair from the operating system's random source.
    pub fn generate() -> Result<Keypair, String> {
        let secret: [u8; KEY_LEN] = random().map_err(|e| e.to_string())?;
        Ok(Keypair::from_secret(secret))
    }

    /// The key pair of a secret key (its public key is derived).
    pub fn from_secret(secret: [u8; KEY_LEN]) -> Keypair {
        let public = SecretKey::from(secret).public_key().to_bytes();
        Keypair { public, secret }
    }
}

fn random<const N: usize>() -> Result<[u8; N], Error> {
    let mut b = [0u8; N];
    getrandom::getrandom(&mut b).map_err(|_| Error::Crypto("no random numbers available"))?;
    Ok(b)
}

fn nonce(prefix: &[u8], suffix: &[u8]) -> crypto_box::Nonce {
    let mut n = [0u8; 24];
    let (a, b) = n.split_at_mut(prefix.len().min(24));
    a.copy_from_slice(prefix.get(..a.len()).unwrap_or(&[]));
    for (slot, v) in b.iter_mut().zip(suffix) {
        *slot = *v;
    }
    crypto_box::Nonce::from(n)
}

fn seal(b: &SalsaBox, n: &crypto_box::Nonce, plain: &[u8]) -> Result<Vec<u8>, Error> {
    b.encrypt(n, plain)
        .map_err(|_| Error::Crypto("cannot encrypt"))
}

fn salsa(public: &[u8; KEY_LEN], secret: &[u8; KEY_LEN]) -> SalsaBox {
    SalsaBox::new(&PublicKey::from(*public), &SecretKey::from(*secret))
}

fn key_at(data: &[u8], at: usize) -> Option<[u8; KEY_LEN]> {
    let mut k = [0u8; KEY_LEN];
    k.copy_from_slice(data.get(at..at.checked_add(KEY_LEN)?)?);
    Some(k)
}

fn u64_at(data: &[u8], at: usize) -> Option<u64> {
    let mut a = [0u8; 8];
    a.copy_from_slice(data.get(at..at.checked_add(8)?)?);
    Some(u64::from_be_bytes(a))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Nothing sent or received yet (start not called).
    Idle,
    ClientExpectWelcome,
    ClientExpectReady,
    ServerExpectHello,
    ServerExpectInitiate,
    Ready,
}

/// What the handshake learnt once it completed.
pub(crate) struct Completed {
    /// The peer's metadata (encoded as in a NULL READY).
    pub metadata: Vec<u8>,
    /// The peer's long-term public key (the server's for a client).
    pub peer_key: [u8; KEY_LEN],
}

/// Why a HELLO was refused when it was addressed to a key the server
/// retired (`KEYRING REMOVE`): the box opened only with that key.
pub const HELLO_RETIRED: &str = "HELLO addressed to a retired server key";
/// Why a HELLO was refused when no key the server holds (or retired)
/// opens its box.
pub const HELLO_UNKNOWN: &str = "cannot open HELLO box (wrong server key?)";

/// One connection's CURVE state.
pub(crate) struct Curve {
    /// Our long-term key pair: a server's primary key until a HELLO
    /// opened with another of `also`, then that one.
    ours: Keypair,
    /// Server: the other long-term keys a HELLO may be addressed to (held
    /// during a key rotation); tried after `ours`.
    also: Vec<Keypair>,
    /// Server: keys retired from `also`: a HELLO they open is refused with
    /// [`HELLO_RETIRED`], so the refusal can be told apart and counted.
    retired: Vec<Keypair>,
    /// Server: a HELLO opened (with `ours`).
    opened: bool,
    /// Server: the check applied to a client's long-term key.
    check: Option<ClientCheck>,
    /// Client: the server's long-term key; server: unused.
    server_key: [u8; KEY_LEN],
    is_server: bool,
    step: Step,
    /// Our transient key pair (C' or S').
    transient: Option<Keypair>,
    /// The peer's transient public key.
    peer_transient: [u8; KEY_LEN],
    /// Server: the cookie key of this connection.
    cookie_key: [u8; KEY_LEN],
    /// Client: the cookie from WELCOME.
    cookie: [u8; COOKIE_LEN],
    /// Box between the transient keys (after WELCOME / INITIATE).
    session: Option<SalsaBox>,
    /// Next short nonce we send.
    nonce: u64,
    /// Last short nonce received (0 before any).
    peer_nonce: u64,
    /// Client: the long-term key of the client, once known (server).
    peer_key: [u8; KEY_LEN],
}

impl fmt::Debug for Curve {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Curve")
            .field("is_server", &self.is_server)
            .field("step", &self.step)
            .field("nonce", &self.nonce)
            .field("peer_nonce", &self.peer_nonce)
            .finish_non_exhaustive()
    }
}

impl Curve {
    pub(crate) fn client(ours: Keypair, server_key: [u8; KEY_LEN]) -> Curve {
        Curve::new(ours, None, server_key, false)
    }

    pub(crate) fn server(ours: Keypair, check: Option<ClientCheck>) -> Curve {
        let public = ours.public;
        Curve::new(ours, check, public, true)
    }

    /// A server that answers a HELLO addressed to `ours` or to any of
    /// `also`, and refuses one addressed to a key of `retired` with
    /// [`HELLO_RETIRED`].
    pub(crate) fn server_of(
        ours: Keypair,
        also: Vec<Keypair>,
        retired: Vec<Keypair>,
        check: Option<ClientCheck>,
    ) -> Curve {
        let mut c = Curve::server(ours, check);
        c.also = also;
        c.retired = retired;
        c
    }

    /// Server: the public key the client's HELLO was addressed to, once a
    /// HELLO opened.
    pub(crate) fn server_key_used(&self) -> Option<[u8; KEY_LEN]> {
        (self.is_server && self.opened).then_some(self.ours.public)
    }

    fn new(
        ours: Keypair,
        check: Option<ClientCheck>,
        server_key: [u8; KEY_LEN],
        is_server: bool,
    ) -> Curve {
        Curve {
            ours,
            also: Vec::new(),
            retired: Vec::new(),
            opened: false,
            check,
            server_key,
            is_server,
            step: Step::Idle,
            transient: None,
            peer_transient: [0; KEY_LEN],
            cookie_key: [0; KEY_LEN],
            cookie: [0; COOKIE_LEN],
            session: None,
            nonce: 1,
            peer_nonce: 0,
            peer_key: [0; KEY_LEN],
        }
    }

    pub(crate) fn is_server(&self) -> bool {
        self.is_server
    }

    fn next_nonce(&mut self) -> Result<u64, Error> {
        let n = self.nonce;
        self.nonce = n
            .checked_add(1)
            .ok_or(Error::Crypto("short nonce exhausted"))?;
        Ok(n)
    }

    /// Accepts a received short nonce if it is above every earlier one.
    fn check_nonce(&mut self, n: u64) -> Result<(), Error> {
        if n <= self.peer_nonce {
            return Err(Error::Crypto("short nonce not increasing (replayed box?)"));
        }
        self.peer_nonce = n;
        Ok(())
    }

    /// The greeting was accepted: draw the transient keys; the client
    /// queues its HELLO.
    pub(crate) fn start(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        let transient = Keypair::from_secret(random()?);
        if self.is_server {
            self.cookie_key = random()?;
            self.transient = Some(transient);
            self.step = Step::ServerExpectHello;
            return Ok(());
        }
        let n = self.next_nonce()?.to_be_bytes();
        let sealed = seal(
            &salsa(&self.server_key, &transient.secret),
            &nonce(b"CurveZMQHELLO---", &n),
            &[0u8; 64],
        )?;
        let mut body = Vec::with_capacity(HELLO_LEN);
        body.extend_from_slice(&[1, 0]);
        body.extend_from_slice(&[0u8; 72]);
        body.extend_from_slice(&transient.public);
        body.extend_from_slice(&n);
        body.extend_from_slice(&sealed);
        push_command(out, b"HELLO", &[&body]);
        self.transient = Some(transient);
        self.step = Step::ClientExpectWelcome;
        Ok(())
    }

    fn transient(&self) -> Result<&Keypair, Error> {
        self.transient
            .as_ref()
            .ok_or(Error::Crypto("handshake not started"))
    }

    /// Handles one handshake command (other than ERROR). `metadata` is ours,
    /// encoded. Returns what was learnt when the handshake completed.
    pub(crate) fn on_command(
        &mut self,
        name: &[u8],
        data: &[u8],
        metadata: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<Option<Completed>, Error> {
        let unexpected = || Error::UnexpectedCommand(String::from_utf8_lossy(name).into_owned());
        match (self.step, name) {
            (Step::ServerExpectHello, b"HELLO") => self.on_hello(data, out).map(|_| None),
            (Step::ServerExpectInitiate, b"INITIATE") => {
                self.on_initiate(data, metadata, out).map(Some)
            }
            (Step::ClientExpectWelcome, b"WELCOME") => {
                self.on_welcome(data, metadata, out).map(|_| None)
            }
            (Step::ClientExpectReady, b"READY") => self.on_ready(data).map(Some),
            _ => Err(unexpected()),
        }
    }

    fn on_hello(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        if data.len() != HELLO_LEN {
            return Err(Error::MalformedCommand("HELLO is not 200 bytes"));
        }
        if data.get(..2) != Some(&[1, 0][..]) {
            return Err(Error::MalformedCommand(
                "HELLO has unknown CurveZMQ version",
            ));
        }
        let bad = Error::MalformedCommand("HELLO truncated");
        let client_transient = key_at(data, 74).ok_or(bad.clone())?;
        let short = data.get(106..114).ok_or(bad.clone())?;
        let sealed = data.get(114..).ok_or(bad)?;
        let hello_nonce = nonce(b"CurveZMQHELLO---", short);
        let open = |k: &Keypair| {
            salsa(&client_transient, &k.secret)
                .decrypt(&hello_nonce, sealed)
                .ok()
        };
        // The primary key first, then the others held; the one that opens
        // the box is ours for the rest of the handshake.
        let found = std::iter::once(&self.ours)
            .chain(&self.also)
            .find_map(|k| open(k).map(|o| (k.clone(), o)));
        let Some((key, opened)) = found else {
            if self.retired.iter().any(|k| open(k).is_some()) {
                return Err(Error::Crypto(HELLO_RETIRED));
            }
            return Err(Error::Crypto(HELLO_UNKNOWN));
        };
        self.ours = key;
        self.also.clear();
        self.retired.clear();
        self.opened = true;
        if opened.len() != 64 {
            return Err(Error::Crypto("HELLO box has the wrong size"));
        }
        self.check_nonce(u64_at(short, 0).unwrap_or(0))?;
        self.peer_transient = client_transient;
        let transient = self.transient()?.clone();

        // Cookie = Box[C' + s'](cookie key), with a random nonce.
        let cookie_nonce: [u8; 16] = random()?;
        let mut cookie_plain = Vec::with_capacity(64);
        cookie_plain.extend_from_slice(&client_transient);
        cookie_plain.extend_from_slice(&transient.secret);
        let cookie_box = XSalsa20Poly1305::new(&self.cookie_key.into())
            .encrypt(&nonce(b"COOKIE--", &cookie_nonce), &cookie_plain[..])
            .map_err(|_| Error::Crypto("cannot encrypt"))?;
        let mut plain = Vec::with_capacity(128);
        plain.extend_from_slice(&transient.public);
        plain.extend_from_slice(&cookie_nonce);
        plain.extend_from_slice(&cookie_box);
        let welcome_nonce: [u8; 16] = random()?;
        let sealed = seal(
            &salsa(&client_transient, &self.ours.secret),
            &nonce(b"WELCOME-", &welcome_nonce),
            &plain,
        )?;
        push_command(out, b"WELCOME", &[&welcome_nonce, &sealed]);
        self.step = Step::ServerExpectInitiate;
        Ok(())
    }

    fn on_welcome(&mut self, data: &[u8], metadata: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        if data.len() != WELCOME_LEN {
            return Err(Error::MalformedCommand("WELCOME is not 168 bytes"));
        }
        let transient = self.transient()?.clone();
        let (long_nonce, sealed) = data.split_at(16);
        let opened = salsa(&self.server_key, &transient.secret)
            .decrypt(&nonce(b"WELCOME-", long_nonce), sealed)
            .map_err(|_| Error::Crypto("cannot open WELCOME box (wrong server key?)"))?;
        let server_transient =
            key_at(&opened, 0).ok_or(Error::Crypto("WELCOME box has the wrong size"))?;
        let cookie = opened
            .get(32..32 + COOKIE_LEN)
            .filter(|_| opened.len() == 32 + COOKIE_LEN)
            .ok_or(Error::Crypto("WELCOME box has the wrong size"))?;
        self.cookie.copy_from_slice(cookie);
        self.peer_transient = server_transient;

        // Vouch = Box[C' + S](C->S'), random nonce.
        let vouch_nonce: [u8; 16] = random()?;
        let mut vouch_plain = Vec::with_capacity(64);
        vouch_plain.extend_from_slice(&transient.public);
        vouch_plain.extend_from_slice(&self.server_key);
        let vouch = seal(
            &salsa(&server_transient, &self.ours.secret),
            &nonce(b"VOUCH---", &vouch_nonce),
            &vouch_plain,
        )?;
        let mut plain = Vec::with_capacity(128 + metadata.len());
        plain.extend_from_slice(&self.ours.public);
        plain.extend_from_slice(&vouch_nonce);
        plain.extend_from_slice(&vouch);
        plain.extend_from_slice(metadata);
        let session = salsa(&server_transient, &transient.secret);
        let n = self.next_nonce()?.to_be_bytes();
        let sealed = seal(&session, &nonce(b"CurveZMQINITIATE", &n), &plain)?;
        push_command(out, b"INITIATE", &[&self.cookie, &n, &sealed]);
        self.session = Some(session);
        self.peer_key = self.server_key;
        self.step = Step::ClientExpectReady;
        Ok(())
    }

    fn on_initiate(
        &mut self,
        data: &[u8],
        metadata: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<Completed, Error> {
        if data.len() < INITIATE_MIN {
            return Err(Error::MalformedCommand("INITIATE shorter than 257 bytes"));
        }
        let transient = self.transient()?.clone();
        let bad = Error::MalformedCommand("INITIATE truncated");
        let cookie_nonce = data.get(..16).ok_or(bad.clone())?;
        let cookie_box = data.get(16..COOKIE_LEN).ok_or(bad.clone())?;
        let cookie = XSalsa20Poly1305::new(&self.cookie_key.into())
            .decrypt(&nonce(b"COOKIE--", cookie_nonce), cookie_box)
            .map_err(|_| Error::Crypto("cannot open INITIATE cookie"))?;
        if cookie.get(..32) != Some(&self.peer_transient[..])
            || cookie.get(32..64) != Some(&transient.secret[..])
        {
            return Err(Error::Crypto("INITIATE cookie is not ours"));
        }
        let short = data.get(COOKIE_LEN..COOKIE_LEN + 8).ok_or(bad.clone())?;
        let sealed = data.get(COOKIE_LEN + 8..).ok_or(bad)?;
        let session = salsa(&self.peer_transient, &transient.secret);
        let plain = session
            .decrypt(&nonce(b"CurveZMQINITIATE", short), sealed)
            .map_err(|_| Error::Crypto("cannot open INITIATE box"))?;
        self.check_nonce(u64_at(short, 0).unwrap_or(0))?;
        let wrong = Error::Crypto("INITIATE box has the wrong size");
        let client_key = key_at(&plain, 0).ok_or(wrong.clone())?;
        let vouch_nonce = plain.get(32..48).ok_or(wrong.clone())?;
        let vouch_box = plain.get(48..128).ok_or(wrong.clone())?;
        let peer_metadata = plain.get(128..).ok_or(wrong)?.to_vec();
        let vouch = salsa(&client_key, &transient.secret)
            .decrypt(&nonce(b"VOUCH---", vouch_nonce), vouch_box)
            .map_err(|_| Error::Crypto("cannot open INITIATE vouch"))?;
        if vouch.get(..32) != Some(&self.peer_transient[..])
            || vouch.get(32..64) != Some(&self.ours.public[..])
            || vouch.len() != 64
        {
            return Err(Error::Crypto("INITIATE vouch does not match"));
        }
        if let Some(check) = &self.check {
            (check.0)(&client_key).map_err(Error::Refused)?;
        }
        let n = self.next_nonce()?.to_be_bytes();
        let sealed = seal(&session, &nonce(b"CurveZMQREADY---", &n), metadata)?;
        push_command(out, b"READY", &[&n, &sealed]);
        self.session = Some(session);
        self.peer_key = client_key;
        self.step = Step::Ready;
        Ok(Completed {
            metadata: peer_metadata,
            peer_key: client_key,
        })
    }

    fn on_ready(&mut self, data: &[u8]) -> Result<Completed, Error> {
        if data.len() < READY_MIN {
            return Err(Error::MalformedCommand("READY shorter than 30 bytes"));
        }
        let (short, sealed) = data.split_at(8);
        let session = self
            .session
            .as_ref()
            .ok_or(Error::Crypto("handshake not started"))?;
        let metadata = session
            .decrypt(&nonce(b"CurveZMQREADY---", short), sealed)
            .map_err(|_| Error::Crypto("cannot open READY box"))?;
        self.check_nonce(u64_at(short, 0).unwrap_or(0))?;
        self.step = Step::Ready;
        Ok(Completed {
            metadata,
            peer_key: self.peer_key,
        })
    }

    /// Appends a MESSAGE frame carrying `body` with the inner `flags`.
    pub(crate) fn seal_message(
        &mut self,
        flags: u8,
        parts: &[&[u8]],
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let n = self.next_nonce()?.to_be_bytes();
        let prefix: &[u8] = if self.is_server {
            b"CurveZMQMESSAGES"
        } else {
            b"CurveZMQMESSAGEC"
        };
        let session = self.session.as_ref().ok_or(Error::NotReady)?;
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let mut plain = Vec::with_capacity(1 + len);
        plain.push(flags);
        for p in parts {
            plain.extend_from_slice(p);
        }
        let sealed = seal(session, &nonce(prefix, &n), &plain)?;
        // A data frame (flags 0), as libzmq sends it: the MORE bit travels
        // inside the box.
        push_frame(out, 0, MESSAGE_NAME.len() + 8 + sealed.len());
        out.extend_from_slice(MESSAGE_NAME);
        out.extend_from_slice(&n);
        out.extend_from_slice(&sealed);
        Ok(())
    }

    /// Opens a received MESSAGE frame body: returns the inner flags and the
    /// plaintext frame.
    pub(crate) fn open_message(&mut self, body: &[u8]) -> Result<(u8, Vec<u8>), Error> {
        if !body.starts_with(MESSAGE_NAME) {
            return Err(Error::Crypto("expected a MESSAGE command"));
        }
        if body.len() < MESSAGE_OVERHEAD {
            return Err(Error::MalformedCommand("MESSAGE too short"));
        }
        let short = body
            .get(MESSAGE_NAME.len()..MESSAGE_NAME.len() + 8)
            .ok_or(Error::MalformedCommand("MESSAGE too short"))?;
        let sealed = body.get(MESSAGE_NAME.len() + 8..).unwrap_or(&[]);
        let prefix: &[u8] = if self.is_server {
            b"CurveZMQMESSAGEC"
        } else {
            b"CurveZMQMESSAGES"
        };
        let session = self.session.as_ref().ok_or(Error::NotReady)?;
        let n = u64_at(short, 0).unwrap_or(0);
        if n <= self.peer_nonce {
            return Err(Error::Crypto("short nonce not increasing (replayed box?)"));
        }
        let mut plain = session
            .decrypt(&nonce(prefix, short), sealed)
            .map_err(|_| Error::Crypto("cannot open MESSAGE box (forged or corrupted)"))?;
        // Only a box that opened moves the nonce on.
        self.peer_nonce = n;
        if plain.is_empty() {
            return Err(Error::MalformedCommand("MESSAGE box without flags"));
        }
        let flags = plain.remove(0);
        Ok((flags, plain))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonce_layout() {
        let n = nonce(b"CurveZMQHELLO---", &1u64.to_be_bytes());
        assert_eq!(&n[..16], b"CurveZMQHELLO---");
        assert_eq!(&n[16..], &[0, 0, 0, 0, 0, 0, 0, 1]);
        let n = nonce(b"WELCOME-", &[7u8; 16]);
        assert_eq!(&n[..8], b"WELCOME-");
        assert_eq!(&n[8..], &[7u8; 16]);
    }

    #[test]
    fn box_is_nacl_layout() {
        // NaCl crypto_box: 16-byte tag then ciphertext, ciphertext length
        // equal to the plaintext's.
        let a = Keypair::generate().unwrap();
        let b = Keypair::generate().unwrap();
        let sealed = seal(&salsa(&b.public, &a.secret), &nonce(b"x", &[]), b"hello").unwrap();
        assert_eq!(sealed.len(), 16 + 5);
        let opened = salsa(&a.public, &b.secret)
            .decrypt(&nonce(b"x", &[]), &sealed[..])
            .unwrap();
        assert_eq!(opened, b"hello");
        assert!(format!("{a:?}").contains("<redacted>"));
    }
}
