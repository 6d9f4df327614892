//! The client side of the local agent: a connection to `zgossip node`'s
//! control socket, requests and their replies, and the failures a command
//! exits with (docs/agent.md, "Exit codes").

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::control_codec::{self, Decoder, GREETING, MAX_REPLY};
use crate::{Failure, EXIT_AGENT_GONE, EXIT_FAILURE, EXIT_NO_AGENT};

/// A connection to an agent.
pub struct Client {
    stream: UnixStream,
    decoder: Decoder,
    path: PathBuf,
}

impl Client {
    /// Connects to the agent at `path` and sends the greeting (the
    /// agent's is checked with its first message).
    pub fn connect(path: &Path) -> Result<Client, Failure> {
        let stream = UnixStream::connect(path).map_err(|e| match e.kind() {
            ErrorKind::NotFound | ErrorKind::ConnectionRefused => Failure(
                EXIT_NO_AGENT,
                format!(
                    "no agent at {} (start one with `zgossip node`, point to it with \
                     --agent PATH, or reach the network with --connect ENDPOINT)",
                    path.display()
                ),
            ),
            _ => Failure(
                EXIT_NO_AGENT,
                format!("cannot reach the agent at {}: {e}", path.display()),
            ),
        })?;
        let mut client = Client {
            stream,
            decoder: Decoder::new(MAX_REPLY),
            path: path.to_path_buf(),
        };
        client
            .stream
            .write_all(&GREETING)
            .map_err(|e| client.io_failure(e))?;
        Ok(client)
    }

    /// Sends a request and waits at most `timeout` for its reply. An
    /// `ERROR` reply is a failure with the agent's words.
    pub fn request<S: AsRef<str>>(
        &mut self,
        frames: &[S],
        timeout: Duration,
    ) -> Result<Vec<String>, Failure> {
        self.send(frames)?;
        let deadline = Instant::now() + timeout;
        match self.next(Some(deadline))? {
            Some(reply) => reply_or_error(reply),
            None => Err(Failure(
                EXIT_FAILURE,
                format!(
                    "no reply from the agent at {} within {} ms",
                    self.path.display(),
                    timeout.as_millis()
                ),
            )),
        }
    }

    pub fn send<S: AsRef<str>>(&mut self, frames: &[S]) -> Result<(), Failure> {
        let bytes = control_codec::encode(frames);
        self.stream
            .write_all(&bytes)
            .map_err(|e| self.io_failure(e))
    }

    /// The next message from the agent, waiting until `deadline` (forever
    /// with `None`); `Ok(None)` at the deadline. The agent closing the
    /// connection is `EXIT_AGENT_GONE`.
    pub fn next(&mut self, deadline: Option<Instant>) -> Result<Option<Vec<String>>, Failure> {
        let mut chunk = [0u8; 64 * 1024];
        loop {
            match self.decoder.next() {
                Ok(Some(m)) => return Ok(Some(m)),
                Ok(None) => {}
                Err(e) => {
                    return Err(Failure(
                        EXIT_FAILURE,
                        format!("the agent at {}: {e}", self.path.display()),
                    ))
                }
            }
            let wait = match deadline {
                None => None,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(None);
                    }
                    Some(left)
                }
            };
            self.stream
                .set_read_timeout(wait)
                .map_err(|e| self.io_failure(e))?;
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(self.gone()),
                Ok(n) => self.decoder.feed(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => return Err(self.io_failure(e)),
            }
        }
    }

    fn gone(&self) -> Failure {
        let during = match self.decoder.finish() {
            Ok(()) => String::new(),
            Err(e) => format!("; {e}"),
        };
        Failure(
            EXIT_AGENT_GONE,
            format!(
                "the agent at {} went away (its node stopped or was killed){during}",
                self.path.display()
            ),
        )
    }

    fn io_failure(&self, e: std::io::Error) -> Failure {
        match e.kind() {
            ErrorKind::BrokenPipe | ErrorKind::ConnectionReset => self.gone(),
            _ => Failure(
                EXIT_FAILURE,
                format!("the agent at {}: {e}", self.path.display()),
            ),
        }
    }
}

/// A reply, or its `ERROR` as a failure.
pub fn reply_or_error(reply: Vec<String>) -> Result<Vec<String>, Failure> {
    match reply.as_slice() {
        [e, why, ..] if e == "ERROR" => Err(Failure(EXIT_FAILURE, format!("agent: {why}"))),
        _ => Ok(reply),
    }
}
