//! `ZGOSSIP_IO_CPUS`: the event-loop threads stay on the CPUs given, and
//! gossip works the same.

mod common;

use std::time::Duration;

use common::*;
use zgossip::Node;

#[test]
fn the_event_loop_thread_keeps_to_the_cpus_given() {
    // The last CPU this process may use (on a machine of several, not the
    // whole set). Read once, at the first node: set before any node exists
    // (the only test of this binary).
    let allowed = allowed_cpus();
    let last = allowed.last().unwrap().to_string();
    std::env::set_var("ZGOSSIP_IO_CPUS", &last);
    let a = Node::new("cpus-a").unwrap();
    let b = Node::new("cpus-b").unwrap();
    assert_eq!(wait_cpus_of_thread("zgossip-io-0", &last), Some(last));
    // This thread was not moved.
    assert_eq!(allowed_cpus(), allowed);
    let endpoint = bind_fresh(&a, "tcp", "cpus");
    b.send(&["CONNECT", endpoint.as_str()]).unwrap();
    a.send(&["PUBLISH", "k", "v"]).unwrap();
    wait_status(&b, 1, Duration::from_secs(5));
}
