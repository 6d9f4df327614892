//! The accept loop of the command's servers (the HTTP endpoints, the
//! local agent): each connection on a thread of its own, at most a fixed
//! number at once, so that a client that connects and sends nothing
//! delays nobody, and one too many is told so at once.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How long the loop pauses when it cannot accept (out of descriptors,
/// say) or cannot start a thread, rather than spin.
const PAUSE: Duration = Duration::from_millis(100);

/// Serves each connection `incoming` yields with `serve`, on a thread
/// named `name`, at most `max` at once; one more is handed to `refuse` on
/// the accepting thread, then closed. Returns when `incoming` ends.
pub fn serve_each<S: Send + 'static>(
    incoming: impl Iterator<Item = io::Result<S>>,
    max: usize,
    name: &str,
    refuse: impl Fn(S),
    serve: impl Fn(S) + Send + Sync + 'static,
) {
    let serve = Arc::new(serve);
    let busy = Arc::new(AtomicUsize::new(0));
    for stream in incoming {
        let Ok(stream) = stream else {
            std::thread::sleep(PAUSE);
            continue;
        };
        if busy.fetch_add(1, Ordering::AcqRel) >= max {
            busy.fetch_sub(1, Ordering::AcqRel);
            refuse(stream);
            continue;
        }
        let (serve, slot) = (serve.clone(), Slot(busy.clone()));
        let spawned = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                let _slot = slot;
                serve(stream);
            });
        // The closure, and with it the slot, is dropped when the thread
        // cannot start.
        if spawned.is_err() {
            std::thread::sleep(PAUSE);
        }
    }
}

/// Gives a connection's slot back when dropped, whatever way its thread
/// ends (a panic too).
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::sync::{mpsc, Mutex};
    use std::time::Instant;

    #[test]
    fn one_connection_over_the_bound_is_refused_and_slots_come_back() {
        let (release, held) = mpsc::channel::<()>();
        let held = Mutex::new(held);
        let (served_tx, served) = mpsc::channel();
        let refused = RefCell::new(Vec::new());
        let deadline = Instant::now() + Duration::from_secs(10);
        // 0 and 1 hold both slots and 2 is refused; once they are done,
        // connections come until one is served again.
        let incoming = (0..).map_while(|i: u32| {
            if i == 3 {
                release.send(()).unwrap();
                release.send(()).unwrap();
                for _ in 0..2 {
                    served.recv_timeout(Duration::from_secs(10)).unwrap();
                }
            }
            let last_refused = refused.borrow().last() == Some(&(i.max(1) - 1));
            let go_on = i <= 3 || (last_refused && Instant::now() < deadline);
            if i > 3 && last_refused {
                std::thread::sleep(Duration::from_millis(10));
            }
            go_on.then_some(Ok(i))
        });
        serve_each(
            incoming,
            2,
            "test-conn",
            |s| refused.borrow_mut().push(s),
            move |s| {
                if s < 2 {
                    held.lock().unwrap().recv().unwrap();
                }
                served_tx.send(s).unwrap();
            },
        );
        let refused = refused.into_inner();
        assert_eq!(refused.first(), Some(&2), "{refused:?}");
        let again = served.recv_timeout(Duration::from_secs(10));
        assert!(
            again.is_ok_and(|s| s >= 3),
            "slots never came back: {refused:?}"
        );
    }
}
