//! Test support: a child's output as lines on a channel. Included by
//! tests/support/chaos.rs and cli/tests/support/process.rs.

use std::io::{BufRead, BufReader};
use std::sync::mpsc;

/// The lines a child writes to `out`, as they come, read on a thread of
/// their own (which ends with the output).
pub fn lines_of(out: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}
