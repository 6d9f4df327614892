//! Hand-offs between the nodes of one shared event-loop thread over TCP.
//!
//! When a node writes to a TCP connection whose other end belongs to a node
//! of the same thread, the bytes wait in that end's socket once the write
//! returns (the kernel delivers local TCP within the call). Rather than
//! going back to `epoll_wait` to learn so, the thread reads that end at
//! once: a chain of nodes in one process passes a tuple along without a
//! poll per hop. That read of a TCP end only looks ahead (`MSG_PEEK`, see
//! [`super::net::Stream::receive`]): the kernel acknowledges bytes when
//! they are taken out of the socket, and the acknowledgement would cost
//! the hop a second trip through the loopback path. The poll still
//! reports the end as readable later; that read takes the bytes out (and
//! acknowledges them), after the tuple has gone on. Nothing depends on
//! the hand-offs: were one missed, the poll's report would bring the bytes
//! in as before.
//!
//! The two ends of a TCP connection are matched by their addresses (one's
//! local address is the other's peer address, and the other way round),
//! those of an `inproc://` socket pair by the pair's number, in a table of
//! the thread's own: a node on a thread of its own never finds its peer
//! there.

use std::cell::RefCell;
use std::hash::BuildHasher;
use std::net::SocketAddr;

use mio::Token;

use super::FastMap;

#[derive(Default)]
struct Ends {
    /// The key of each registered end's (local, peer) addresses -> its
    /// token. Keys are 64-bit hashes: two ends whose keys collide at worst
    /// cost a read that finds nothing, or a hand-off left to the poll.
    by_key: FastMap<u64, Token>,
    /// Ends written to since the thread last took them.
    ready: Vec<Token>,
}

/// The key of an end: hashed once per end, not per write.
fn key(end: impl std::hash::Hash) -> u64 {
    static SEED: std::sync::OnceLock<foldhash::fast::RandomState> = std::sync::OnceLock::new();
    SEED.get_or_init(Default::default).hash_one(end)
}

thread_local! {
    static ENDS: RefCell<Ends> = RefCell::new(Ends::default());
}

/// What the other end of a connection is found by.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Identity {
    /// A TCP stream's own addresses.
    Tcp { local: SocketAddr, peer: SocketAddr },
    /// One end (`side`) of the `inproc://` socket pair numbered `pair`.
    Pair { pair: u64, side: bool },
}

/// One end of a connection, registered in its thread's table for as long
/// as it lives.
#[derive(Debug)]
pub(crate) struct End {
    /// Its own key, and the key the other end is registered under.
    own: u64,
    other: u64,
    token: Token,
}

impl End {
    /// Registers a connection's end under `token` (the thread-wide token
    /// its readiness events carry).
    pub(crate) fn register(id: Identity, token: Token) -> End {
        let (own, other) = match id {
            Identity::Tcp { local, peer } => (key((local, peer)), key((peer, local))),
            Identity::Pair { pair, side } => (key((pair, side)), key((pair, !side))),
        };
        let end = End { own, other, token };
        let _ = ENDS.try_with(|ends| {
            ends.borrow_mut().by_key.insert(end.own, token);
        });
        end
    }

    /// Bytes were written to this end: if the other end is on this thread,
    /// it is marked for reading at once.
    pub(crate) fn wrote(&self) {
        let _ = ENDS.try_with(|ends| {
            let mut ends = ends.borrow_mut();
            if let Some(&other) = ends.by_key.get(&self.other) {
                ends.ready.push(other);
            }
        });
    }
}

impl Drop for End {
    fn drop(&mut self) {
        // try_with: at thread exit the table may be gone already.
        let _ = ENDS.try_with(|ends| {
            let mut ends = ends.borrow_mut();
            // A newer end with the same addresses keeps its entry.
            if ends.by_key.get(&self.own) == Some(&self.token) {
                ends.by_key.remove(&self.own);
            }
        });
    }
}

/// Moves the ends written to since the last call into `out`.
pub(crate) fn take_ready(out: &mut Vec<Token>) {
    let _ = ENDS.try_with(|ends| out.append(&mut ends.borrow_mut().ready));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(local: u16, peer: u16, token: usize) -> End {
        let addr = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
        let id = Identity::Tcp {
            local: addr(local),
            peer: addr(peer),
        };
        End::register(id, Token(token))
    }

    fn ready() -> Vec<Token> {
        let mut out = Vec::new();
        take_ready(&mut out);
        out
    }

    #[test]
    fn a_write_marks_the_other_end_of_this_thread_and_nothing_else() {
        std::thread::spawn(|| {
            let a = tcp(1000, 2000, 1);
            let b = tcp(2000, 1000, 2);
            let lone = tcp(3000, 4000, 3);
            a.wrote();
            b.wrote();
            lone.wrote();
            assert_eq!(ready(), [Token(2), Token(1)]);
            assert_eq!(ready(), []);
            // Once an end is gone, writes to the other mark nothing.
            drop(b);
            a.wrote();
            assert_eq!(ready(), []);
            // A newer end with the same addresses is not unregistered by
            // an older one going.
            let old = tcp(5000, 6000, 4);
            let new = tcp(5000, 6000, 5);
            let other = tcp(6000, 5000, 6);
            drop(old);
            other.wrote();
            assert_eq!(ready(), [Token(5)]);
            drop((new, lone));
        })
        .join()
        .unwrap();
    }

    #[test]
    fn the_two_ends_of_an_inproc_pair_find_each_other() {
        std::thread::spawn(|| {
            let a = End::register(
                Identity::Pair {
                    pair: 7,
                    side: false,
                },
                Token(1),
            );
            let b = End::register(
                Identity::Pair {
                    pair: 7,
                    side: true,
                },
                Token(2),
            );
            let other_pair = End::register(
                Identity::Pair {
                    pair: 8,
                    side: true,
                },
                Token(3),
            );
            a.wrote();
            b.wrote();
            assert_eq!(ready(), [Token(2), Token(1)]);
            drop((a, b, other_pair));
        })
        .join()
        .unwrap();
    }

    #[test]
    fn threads_do_not_see_each_others_ends() {
        let _a = tcp(7000, 8000, 1);
        std::thread::spawn(|| {
            let b = tcp(8000, 7000, 2);
            b.wrote();
            assert_eq!(ready(), []);
        })
        .join()
        .unwrap();
    }
}
