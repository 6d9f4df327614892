//! `ZGOSSIP_IO_CPUS`: the event-loop threads stay on the CPUs given, and
//! gossip works the same.

mod common;

use std::time::{Duration, Instant};

use common::*;
use nix::sched::{sched_getaffinity, CpuSet};
use nix::unistd::Pid;
use zgossip::Node;

#[test]
fn the_event_loop_thread_keeps_to_the_cpus_given() {
    // The last CPU this process may use (on a machine of several, not the
    // whole set). Read once, at the first node: set before any node exists
    // (the only test of this binary).
    let allowed = sched_getaffinity(Pid::from_raw(0)).unwrap();
    let last = (0..CpuSet::count())
        .rfind(|&c| allowed.is_set(c).unwrap())
        .unwrap();
    std::env::set_var("ZGOSSIP_IO_CPUS", last.to_string());
    let a = Node::new("cpus-a").unwrap();
    let b = Node::new("cpus-b").unwrap();
    // The thread pins itself as it starts: wait for it (bounded).
    let deadline = Instant::now() + Duration::from_secs(5);
    let cpus = loop {
        let cpus = common::cpus_of_thread("zgossip-io-0");
        if cpus.as_deref() == Some(last.to_string().as_str()) || Instant::now() >= deadline {
            break cpus;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(cpus, Some(last.to_string()));
    // This thread was not moved.
    assert_eq!(sched_getaffinity(Pid::from_raw(0)).unwrap(), allowed);
    let endpoint = bind_fresh(&a, "tcp", "cpus");
    b.send(&["CONNECT", endpoint.as_str()]).unwrap();
    a.send(&["PUBLISH", "k", "v"]).unwrap();
    wait_status(&b, 1, Duration::from_secs(5));
}
