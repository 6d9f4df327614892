//! `ZGOSSIP_IO_CPUS` with `ZGOSSIP_IO_THREADS=0`: a node's own thread keeps
//! to the CPUs given too.

mod common;

use std::time::{Duration, Instant};

use nix::sched::{sched_getaffinity, CpuSet};
use nix::unistd::Pid;
use zgossip::Node;

#[test]
fn a_node_thread_of_its_own_keeps_to_the_cpus_given() {
    let allowed = sched_getaffinity(Pid::from_raw(0)).unwrap();
    let first = (0..CpuSet::count())
        .find(|&c| allowed.is_set(c).unwrap())
        .unwrap();
    // Both read once, at the first node (the only test of this binary).
    std::env::set_var("ZGOSSIP_IO_THREADS", "0");
    std::env::set_var("ZGOSSIP_IO_CPUS", first.to_string());
    let node = Node::new("oc").unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let cpus = loop {
        let cpus = common::cpus_of_thread("zgossip-oc");
        if cpus.as_deref() == Some(first.to_string().as_str()) || Instant::now() >= deadline {
            break cpus;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(cpus, Some(first.to_string()));
    assert_eq!(node.status().unwrap(), 0);
}
