//! `ZGOSSIP_IO_CPUS` with `ZGOSSIP_IO_THREADS=0`: a node's own thread keeps
//! to the CPUs given too.

mod common;

use common::*;
use zgossip::Node;

#[test]
fn a_node_thread_of_its_own_keeps_to_the_cpus_given() {
    let first = allowed_cpus()[0].to_string();
    // Both read once, at the first node (the only test of this binary).
    std::env::set_var("ZGOSSIP_IO_THREADS", "0");
    std::env::set_var("ZGOSSIP_IO_CPUS", &first);
    let node = Node::new("oc").unwrap();
    assert_eq!(wait_cpus_of_thread("zgossip-oc", &first), Some(first));
    assert_eq!(node.status().unwrap(), 0);
}
