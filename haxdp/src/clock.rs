//! The daemon's one monotonic clock.

/// CLOCK_MONOTONIC in nanoseconds: the clock of `bpf_ktime_get_ns()`, so the
/// kernel's advert timestamps (PEERS, the event ring) and the daemon's deadlines
/// are on one time line.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid pointer to a timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

static PROCESS_START_NS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Marks the start of the process (the first thing `main` does), for the start-up
/// times the daemon logs.
pub fn mark_process_start() {
    PROCESS_START_NS.store(monotonic_ns(), std::sync::atomic::Ordering::Relaxed);
}

/// Nanoseconds since [`mark_process_start`]; `None` if it was not called.
pub fn since_process_start_ns() -> Option<u64> {
    match PROCESS_START_NS.load(std::sync::atomic::Ordering::Relaxed) {
        0 => None,
        t => Some(monotonic_ns().saturating_sub(t)),
    }
}
