//! The handle: the application's side of a node.
//!
//! [`Node`] (`node.rs`) is what the application holds: it checks commands
//! on the application's thread and starts and stops the node's event loop.
//! Two queues join it to that loop, and they are the boundary between the
//! handle and the reactor below it:
//!
//! - `inbox.rs`: commands from the handle to the event loop, PUBLISH and
//!   UNPUBLISH as text in one reused buffer;
//! - `replies.rs`: replies and news from the event loop to the application,
//!   with a descriptor that is readable while something waits.
//!
//! The reply pipe is the one pipe type (`pipe.rs`, on `crossbeam-channel`,
//! with the descriptor of `ready_signal.rs`) carrying batches of replies and
//! news; the beacon's pipe is the same type carrying whole messages.
//!
//! The dependency goes one way. The handle creates both queues and gives
//! them to the reactor (`Reactor::new` takes the `Inbox` and the
//! `Replies`); the reactor uses the queues and nothing else of this
//! module: it never sees the `Node`.

mod held_key;
pub(crate) mod inbox;
mod node;
pub(crate) mod pipe;
mod ready_signal;
pub(crate) mod replies;

pub use held_key::HeldKey;
pub use node::{Member, MemberState, Node};
