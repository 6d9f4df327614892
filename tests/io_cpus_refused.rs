//! A `ZGOSSIP_IO_CPUS` that is not a CPU list, or names a CPU the process
//! may not use, fails node creation with a message saying so.

use zgossip::Node;

#[test]
fn a_bad_cpu_list_fails_node_creation_and_says_why() {
    // Read once, at the first node (the only test of this binary).
    std::env::set_var("ZGOSSIP_IO_CPUS", "0,two");
    let refused = |name| match Node::new(name) {
        Ok(_) => panic!("node {name} started"),
        Err(e) => e.to_string(),
    };
    let err = refused("bad-cpus");
    assert!(err.contains("ZGOSSIP_IO_CPUS=\"0,two\""), "{err}");
    assert!(err.contains("`two` is not a CPU number"), "{err}");
    // Every later node is refused the same way: nothing half started.
    assert_eq!(refused("bad-cpus-2"), err);
}
