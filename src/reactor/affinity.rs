//! `ZGOSSIP_IO_CPUS`: the CPUs the event-loop threads may run on, as
//! libzmq's `ZMQ_THREAD_AFFINITY_CPU_ADD` does for its I/O threads.
//!
//! Unset, the threads run wherever the scheduler puts them. Some schedulers
//! (those of virtual machines that pack threads onto few virtual CPUs)
//! put a busy application and its event loop on one CPU; the application
//! then keeps its own threads off the CPUs given here (for example with
//! `taskset`), and each gets a CPU of its own. See `docs/benchmarks.md`.
//!
//! The list is read once, when the first node starts, and tried on a
//! thread of its own: a list that is not one, or that the system refuses
//! (no CPU of it online, or in this process's cpuset), fails `Node::new`
//! with a message saying what is wrong. The CPUs of the thread that starts
//! the node do not matter (`ZGOSSIP_IO_CPUS=1 taskset -c 0 app` keeps the
//! application on CPU 0 and its event loop on CPU 1).

use std::sync::OnceLock;

use nix::sched::{sched_setaffinity, CpuSet};
use nix::unistd::Pid;

use crate::error::{Error, Result};

/// Environment variable: the CPUs of the event-loop threads.
pub const IO_CPUS_ENV: &str = "ZGOSSIP_IO_CPUS";

/// Parses a CPU list: CPU numbers and inclusive ranges separated by commas
/// (`1`, `0,2`, `2-3,6`), as `taskset -c` takes them. Returns the CPUs in
/// increasing order, each once.
fn parse_cpu_list(text: &str) -> std::result::Result<Vec<usize>, String> {
    let limit = CpuSet::count();
    let number = |s: &str| -> std::result::Result<usize, String> {
        let n: usize = s
            .trim()
            .parse()
            .map_err(|_| format!("`{}` is not a CPU number", s.trim()))?;
        if n >= limit {
            return Err(format!("CPU {n} is beyond the largest, {}", limit - 1));
        }
        Ok(n)
    };
    let mut cpus = Vec::new();
    for part in text.split(',') {
        let (first, last) = match part.split_once('-') {
            Some((a, b)) => (number(a)?, number(b)?),
            None => {
                let n = number(part)?;
                (n, n)
            }
        };
        if first > last {
            return Err(format!("range `{}` runs backwards", part.trim()));
        }
        cpus.extend(first..=last);
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

/// The CPUs asked for in `ZGOSSIP_IO_CPUS` (None: unset or empty), checked
/// once: a thread must be allowed to keep to them.
pub(crate) fn io_cpus() -> Result<Option<&'static CpuSet>> {
    static CPUS: OnceLock<std::result::Result<Option<CpuSet>, String>> = OnceLock::new();
    CPUS.get_or_init(|| {
        let Ok(text) = std::env::var(IO_CPUS_ENV) else {
            return Ok(None);
        };
        if text.trim().is_empty() {
            return Ok(None);
        }
        parse_cpu_list(&text)
            .and_then(|cpus| cpu_set(&cpus))
            .and_then(|set| try_on_a_thread(&set).map(|()| set))
            .map(Some)
            .map_err(|why| format!("{IO_CPUS_ENV}={text:?}: {why}"))
    })
    .as_ref()
    .map(Option::as_ref)
    .map_err(|why| Error::Config(why.clone()))
}

/// The set of `cpus`.
fn cpu_set(cpus: &[usize]) -> std::result::Result<CpuSet, String> {
    let mut set = CpuSet::new();
    for &cpu in cpus {
        set.set(cpu).map_err(|e| format!("CPU {cpu}: {e}"))?;
    }
    Ok(set)
}

/// Keeps a short-lived thread to `set`: what the event-loop threads will
/// do, so that the system's answer comes back to the caller.
fn try_on_a_thread(set: &CpuSet) -> std::result::Result<(), String> {
    let set = *set;
    std::thread::Builder::new()
        .name("zgossip-cpus".into())
        .spawn(move || sched_setaffinity(Pid::from_raw(0), &set))
        .map_err(|e| format!("cannot start a thread to try the CPUs: {e}"))?
        .join()
        .map_err(|_| "trying the CPUs failed".to_string())?
        .map_err(|e| format!("the system refuses these CPUs ({e}): none online or allowed"))
}

/// Keeps the calling thread on the CPUs of `ZGOSSIP_IO_CPUS`, if set (the
/// list was checked when the node started; should the system refuse it
/// now, the thread says so and runs where it may).
pub(crate) fn apply_to_this_thread() {
    if let Ok(Some(set)) = io_cpus() {
        if let Err(e) = sched_setaffinity(Pid::from_raw(0), set) {
            crate::logging::notice(
                crate::logging::REACTOR,
                log::Level::Warn,
                None,
                format_args!("{IO_CPUS_ENV}: cannot keep this thread on its CPUs: {e}"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sched::sched_getaffinity;

    #[test]
    fn cpu_lists_read_as_taskset_takes_them() {
        assert_eq!(parse_cpu_list("1"), Ok(vec![1]));
        assert_eq!(parse_cpu_list(" 0, 2-3 ,6"), Ok(vec![0, 2, 3, 6]));
        assert_eq!(parse_cpu_list("3,1-3,1"), Ok(vec![1, 2, 3]));
    }

    #[test]
    fn bad_cpu_lists_say_what_is_wrong() {
        let err = |s: &str| parse_cpu_list(s).unwrap_err();
        assert_eq!(err("x"), "`x` is not a CPU number");
        assert_eq!(err("1,"), "`` is not a CPU number");
        assert_eq!(err("3-1"), "range `3-1` runs backwards");
        assert_eq!(err("-1"), "`` is not a CPU number");
        assert!(
            err("99999").contains("beyond the largest"),
            "{}",
            err("99999")
        );
    }

    #[test]
    fn cpus_the_system_does_not_have_are_refused_and_ones_it_has_are_not() {
        let allowed = sched_getaffinity(Pid::from_raw(0)).unwrap();
        let first = (0..CpuSet::count())
            .find(|&c| allowed.is_set(c).unwrap())
            .unwrap();
        assert_eq!(try_on_a_thread(&cpu_set(&[first]).unwrap()), Ok(()));
        // No machine here has its last possible CPU online.
        let beyond = cpu_set(&[CpuSet::count() - 1]).unwrap();
        let err = try_on_a_thread(&beyond).unwrap_err();
        assert!(err.contains("refuses"), "{err}");
        // Trying does not move the caller.
        assert_eq!(sched_getaffinity(Pid::from_raw(0)).unwrap(), allowed);
    }
}
