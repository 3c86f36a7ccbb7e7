//! SEEN: the XDP program's copy of each protected source's newest advert time, read
//! through mmap(2), and the hand-out of its entries.
//!
//! A backup behind a healthy master is refreshed from the kernel every
//! (Master_Down_Interval - Advertisement_Interval); with 255 VRIDs at 10 ms that is
//! about 10,000 reads a second, and a PEERS lookup is a bpf(2) call (about 0.8 us
//! here). The master a backup follows is a protected PEERS record; user space gives
//! it an entry of SEEN (`PeerState::seen`), the XDP program copies `last_ns` there
//! with every accepted advert, and the refresh reads it as a plain load.
//!
//! An entry must never carry another source's time: a backup would then wait for a
//! master that is gone. So an entry is zeroed before it is handed out, and one given
//! back is not handed out again for [`REUSE_AFTER_NS`]: a program run that read the old
//! record's index before user space cleared it has finished long before (an XDP run
//! lasts microseconds). The election reads SEEN only to refresh a backup early, never
//! to decide a takeover (`haxdp_vrrp::node::KernelView::last_advert_hint_ns`): a time
//! that lags (0, an entry not written yet, a record user space rewrote) only costs a
//! PEERS lookup.

use std::collections::VecDeque;
use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, Ordering};

use haxdp_common::SEEN_MAX_ENTRIES;

/// How long an entry given back waits before it is handed out again.
pub const REUSE_AFTER_NS: u64 = 1_000_000_000;

/// SEEN mapped read-only into this process.
pub struct SeenMap {
    base: *const AtomicU64,
    len: usize,
}

// SAFETY: the mapping belongs to the process, not to a thread, and is only read through
// atomic loads (`get`): the daemon loads the program on a blocking thread and hands it
// to the engine (`Engine::on_xdp_loaded`).
unsafe impl Send for SeenMap {}

impl SeenMap {
    /// Maps the array behind `fd` (created with `BPF_F_MMAPABLE`): the kernel lays
    /// an mmap-able array's values out from offset 0, each rounded up to 8 bytes
    /// (kernel/bpf/arraymap.c, `array_map_mmap`).
    pub fn map(fd: RawFd) -> io::Result<SeenMap> {
        let len = SEEN_MAX_ENTRIES as usize * std::mem::size_of::<u64>();
        // SAFETY: a fresh shared read-only mapping of a map descriptor; the kernel
        // checks the length against the map.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                fd,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(SeenMap {
            base: p as *const AtomicU64,
            len,
        })
    }

    /// Entry `index`'s time (CLOCK_MONOTONIC ns), 0 if never written; `None` out of range.
    pub fn get(&self, index: u16) -> Option<u64> {
        if usize::from(index) >= SEEN_MAX_ENTRIES as usize {
            return None;
        }
        // SAFETY: in range of the mapping, which lives as long as `self`; the XDP
        // program stores whole aligned u64s, so an atomic load sees one of them.
        Some(unsafe { (*self.base.add(usize::from(index))).load(Ordering::Relaxed) })
    }
}

impl Drop for SeenMap {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `map`, unmapped once.
        unsafe {
            libc::munmap(self.base as *mut libc::c_void, self.len);
        }
    }
}

/// Which SEEN entries are handed out.
#[derive(Debug, Default)]
pub struct SeenEntries {
    /// Entries below this one have been handed out at some point.
    next: u16,
    /// Given back, with when: handed out again from the front once old enough.
    returned: VecDeque<(u16, u64)>,
}

impl SeenEntries {
    /// The hand-out state of a map whose records already name `used` entries (a
    /// hand-over: the predecessor's records keep theirs). Every other entry below
    /// the highest one counts as given back `now`.
    pub fn with_used(used: impl IntoIterator<Item = u16>, now: u64) -> SeenEntries {
        let mut used: Vec<u16> = used
            .into_iter()
            .filter(|i| u32::from(*i) < SEEN_MAX_ENTRIES)
            .collect();
        used.sort_unstable();
        used.dedup();
        let next = used.last().map_or(0, |m| m + 1);
        let returned = (0..next)
            .filter(|i| used.binary_search(i).is_err())
            .map(|i| (i, now))
            .collect();
        SeenEntries { next, returned }
    }

    /// An entry to hand out at `now`, if one is free and old enough.
    pub fn take(&mut self, now: u64) -> Option<u16> {
        if let Some(&(i, at)) = self.returned.front() {
            if now.saturating_sub(at) >= REUSE_AFTER_NS {
                self.returned.pop_front();
                return Some(i);
            }
        }
        if u32::from(self.next) < SEEN_MAX_ENTRIES {
            self.next += 1;
            return Some(self.next - 1);
        }
        None
    }

    /// Entry `index` is no longer named by any record, since `now`.
    pub fn give_back(&mut self, index: u16, now: u64) {
        if index < self.next && !self.returned.iter().any(|(i, _)| *i == index) {
            self.returned.push_back((index, now));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_given_back_waits_before_it_is_handed_out_again() {
        let mut e = SeenEntries::default();
        assert_eq!(e.take(0), Some(0));
        assert_eq!(e.take(0), Some(1));
        e.give_back(0, 10);
        // Too recent: a fresh entry instead.
        assert_eq!(e.take(10 + REUSE_AFTER_NS - 1), Some(2));
        assert_eq!(e.take(10 + REUSE_AFTER_NS), Some(0));
    }

    #[test]
    fn a_handed_over_map_keeps_the_entries_its_records_name() {
        let mut e = SeenEntries::with_used([3, 1], 0);
        // 0 and 2 count as given back at the hand-over, 4 is new.
        assert_eq!(e.take(0), Some(4));
        assert_eq!(e.take(REUSE_AFTER_NS), Some(0));
        assert_eq!(e.take(REUSE_AFTER_NS), Some(2));
        assert_eq!(e.take(REUSE_AFTER_NS), Some(5));
    }

    #[test]
    fn the_entries_run_out_without_reusing_a_recent_one() {
        let mut e = SeenEntries::with_used([(SEEN_MAX_ENTRIES - 1) as u16], 0);
        for _ in 0..SEEN_MAX_ENTRIES - 1 {
            assert!(e.take(REUSE_AFTER_NS).is_some());
        }
        assert_eq!(e.take(REUSE_AFTER_NS), None);
        e.give_back(7, REUSE_AFTER_NS);
        assert_eq!(e.take(REUSE_AFTER_NS), None);
        assert_eq!(e.take(2 * REUSE_AFTER_NS), Some(7));
    }
}
