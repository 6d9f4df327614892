//! A descriptor that is readable exactly while something waits for the
//! application: the read end of a socket pair, which the application may
//! poll (`zgossip_fd`, Python's `fileno`). The pipe that owns it
//! (`pipe.rs`) raises it when a message arrives and lowers it when the last
//! one is taken, keeping its own "raised" flag under its lock.

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;

pub(crate) struct ReadySignal {
    tx: UnixStream,
    rx: UnixStream,
}

impl ReadySignal {
    pub(crate) fn new() -> io::Result<ReadySignal> {
        let (tx, rx) = UnixStream::pair()?;
        tx.set_nonblocking(true)?;
        rx.set_nonblocking(true)?;
        Ok(ReadySignal { tx, rx })
    }

    /// Makes the descriptor readable; true if it now is.
    pub(crate) fn raise(&self) -> bool {
        (&self.tx).write(&[1]).is_ok()
    }

    /// Makes the descriptor unreadable again: takes what was written.
    pub(crate) fn lower(&self) {
        let mut buf = [0u8; 16];
        while matches!((&self.rx).read(&mut buf), Ok(n) if n > 0) {}
    }

    /// The descriptor the application polls.
    pub(crate) fn fd(&self) -> RawFd {
        self.rx.as_raw_fd()
    }

    /// Whether the descriptor is readable now (for tests).
    #[cfg(test)]
    pub(crate) fn is_raised(&self) -> bool {
        let mut probe = [std::mem::MaybeUninit::<u8>::uninit(); 1];
        socket2::SockRef::from(&self.rx)
            .peek(&mut probe)
            .is_ok_and(|n| n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raised_until_lowered() {
        let s = ReadySignal::new().unwrap();
        assert!(!s.is_raised());
        assert!(s.raise());
        assert!(s.raise());
        assert!(s.is_raised());
        s.lower();
        assert!(!s.is_raised());
    }
}
