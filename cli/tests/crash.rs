//! Crash safety with real processes (docs/persistence.md): a
//! `zgossip node --data-dir` receiving a stream of writes from a peer is
//! killed with SIGKILL at random moments, 50 times in a row. After each
//! kill the directory opens, and holds every write the node had held for
//! longer than the fsync interval (plus a margin for a write to reach the
//! node; writes made while it was down count from when it caught up);
//! after each restart the node converges with the peer again. Rewrites of
//! a few large values make the node compact its data file every second
//! or so, so that kills also fall during compactions. The seed is printed;
//! `ZGOSSIP_CRASH_SEED=n` replays one. Bounded: two minutes at most.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zgossip::rng::Rng;
use zgossip::Node;

const BIN: &str = env!("CARGO_BIN_EXE_zgossip");
const KILLS: usize = 50;
/// `store/fsync`'s default interval.
const FSYNC_MS: u64 = 100;
/// Time for a write to go from the peer to the node.
const TRAVEL_MS: u64 = 200;
const BUDGET: Duration = Duration::from_secs(120);

/// Starts the node on `dir`, connected to the writer; returns it and the
/// port it bound.
fn start(dir: &str, writer_port: u16) -> (Child, u16) {
    let mut child = Command::new(BIN)
        .args([
            "node",
            "--no-control",
            "--name",
            "crash",
            "--data-dir",
            dir,
            "--bind",
            "tcp://127.0.0.1:*",
            "--connect",
            &format!("tcp://127.0.0.1:{writer_port}"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines.next().expect("the node prints its endpoint").unwrap();
    let port = line
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in '{line}'"));
    // Keep reading (and dropping) its output so that it never blocks.
    std::thread::spawn(move || for _ in lines {});
    (child, port)
}

fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    done()
}

#[test]
fn killed_fifty_times_the_node_keeps_every_write_older_than_the_fsync_interval() {
    let seed = std::env::var("ZGOSSIP_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap();
            u64::from(t.subsec_nanos()) % 1_000_000
        });
    println!("crash test seed {seed} (ZGOSSIP_CRASH_SEED={seed} replays it)");
    let mut rng = Rng::new(seed);
    let dir = std::env::temp_dir().join(format!("zgossip-crash-{seed}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let dir_s = dir.to_str().unwrap().to_string();
    let began = Instant::now();

    // The peer: writes w0, w1, ... every 2 ms, each time noted; and with
    // each a new 4 KiB value of one of ten hot keys, so that the data
    // file outgrows twice the live data about every second and the kills
    // also fall during compactions.
    let writer = Arc::new(Node::new("writer").unwrap());
    let writer_port = writer.bind("tcp://127.0.0.1:*").unwrap().unwrap();
    let published: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let stream = {
        let (writer, published, stop) = (writer.clone(), published.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let at = Instant::now();
                writer.publish(&format!("w{n}"), &n.to_string()).unwrap();
                published.lock().unwrap().push(at);
                let hot = format!("{n:04096}");
                writer.publish(&format!("hot{}", n % 10), &hot).unwrap();
                n += 1;
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };

    for kill in 0..KILLS {
        assert!(
            began.elapsed() < BUDGET,
            "seed {seed}: {kill} kills in {BUDGET:?}"
        );
        let before = published.lock().unwrap().len();
        let (mut child, port) = start(&dir_s, writer_port);
        // Converged again: a peer that hears only from the node gets
        // every write made before it started.
        let checker = Node::new("checker").unwrap();
        checker.connect(&format!("tcp://127.0.0.1:{port}")).unwrap();
        assert!(
            wait_until(Duration::from_secs(20), || checker.status().unwrap()
                >= before),
            "seed {seed}, kill {kill}: the restarted node holds {} of {before} writes",
            checker.status().unwrap()
        );
        // By now the node holds every write made so far: those made while
        // it was down came by reconciliation, the rest as they were made.
        let caught_up = Instant::now();
        checker.send(&["$TERM"]).unwrap();
        std::thread::sleep(Duration::from_millis(rng.below(600)));
        let killed_at = Instant::now();
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // The directory opens, and holds every write the node had for
        // longer than the fsync interval and the travel time: made before
        // that, and not waiting for the node to catch up.
        let probe = Node::new("probe").unwrap();
        probe
            .send(&["SET", "store/path", &dir_s])
            .unwrap_or_else(|e| panic!("seed {seed}, kill {kill}: {e}"));
        let held: HashSet<String> = probe.keys("w").unwrap().into_iter().collect();
        probe.send(&["$TERM"]).unwrap();
        let limit = killed_at - Duration::from_millis(FSYNC_MS + TRAVEL_MS);
        let times = published.lock().unwrap().clone();
        let missing: Vec<usize> = times
            .iter()
            .enumerate()
            .filter(|(n, &t)| t.max(caught_up) < limit && !held.contains(&format!("w{n}")))
            .map(|(n, _)| n)
            .collect();
        assert!(
            missing.is_empty(),
            "seed {seed}, kill {kill}: {} writes older than {} ms missing, first w{}",
            missing.len(),
            FSYNC_MS + TRAVEL_MS,
            missing[0]
        );
    }
    stop.store(true, Ordering::Relaxed);
    stream.join().unwrap();
    let total = published.lock().unwrap().len();
    // About 4 KiB a write went to the data file: without compactions it
    // would hold tens of MiB.
    let size = std::fs::metadata(dir.join("tuples.zgp")).unwrap().len();
    println!(
        "{KILLS} kills in {:?}, {total} writes, data file {size} bytes, seed {seed}",
        began.elapsed()
    );
    assert!(
        size < (total as u64 * 4096) / 4,
        "seed {seed}: {size} bytes: not compacted"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
