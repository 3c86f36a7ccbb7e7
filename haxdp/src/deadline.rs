//! The engine's one timer: a timerfd armed with an absolute CLOCK_MONOTONIC deadline
//! (timerfd_create(2), `TFD_TIMER_ABSTIME`).
//!
//! tokio's timer wheel has millisecond granularity and rounds a deadline up to the next
//! tick, so a Master_Down_Timer could fire up to a millisecond past the RFC 9568 6.4.2
//! deadline, and a master's Adver_Timer drift by as much. The kernel fires a timerfd at
//! the deadline with the high-resolution timer (the engine's thread sets its timer slack to
//! 1 ns; 50 µs is the default), on the same clock as `bpf_ktime_get_ns()` and the deadlines the
//! state machines compute.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use tokio::io::unix::AsyncFd;

pub struct DeadlineTimer {
    fd: AsyncFd<OwnedFd>,
    armed: Option<u64>,
}

impl DeadlineTimer {
    /// Inside a tokio runtime, on the engine's thread: that thread's timer slack is set
    /// to 1 ns (prctl(2) `PR_SET_TIMERSLACK`; the default 50 µs would be added to every
    /// deadline).
    pub fn new() -> io::Result<Self> {
        // SAFETY: prctl with integer arguments; failure leaves the default slack.
        unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0) };
        // SAFETY: plain syscall; the fd is owned below.
        let fd = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh fd we own.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: the OwnedFd moves into the AsyncFd, which deregisters it before
        // closing it on drop.
        let fd = unsafe { AsyncFd::register(owned) }?;
        Ok(DeadlineTimer { fd, armed: None })
    }

    /// Arms the timer for `at` (CLOCK_MONOTONIC ns), or disarms it; a deadline already
    /// armed is not re-armed (one syscall per change, not per loop).
    pub fn set(&mut self, at: Option<u64>) -> io::Result<()> {
        if self.armed == at {
            return Ok(());
        }
        // A zero it_value disarms; a deadline in the past must still fire: 1 ns.
        let at_ns = at.map(|a| a.max(1)).unwrap_or(0);
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: (at_ns / 1_000_000_000) as libc::time_t,
                tv_nsec: (at_ns % 1_000_000_000) as libc::c_long,
            },
        };
        // SAFETY: valid itimerspec; null old value.
        let r = unsafe {
            libc::timerfd_settime(
                self.fd.get_ref().as_raw_fd(),
                libc::TFD_TIMER_ABSTIME,
                &spec,
                std::ptr::null_mut(),
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        self.armed = at;
        Ok(())
    }

    /// Waits until the armed deadline has passed (forever when disarmed).
    pub async fn fired(&mut self) -> io::Result<()> {
        if self.armed.is_none() {
            return std::future::pending().await;
        }
        loop {
            let mut guard = self.fd.readable().await?;
            let mut buf = [0u8; 8];
            // SAFETY: reading 8 bytes (the expiration count) into an 8-byte buffer.
            let n = unsafe {
                libc::read(
                    guard.get_inner().as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                )
            };
            if n == 8 {
                // Fired: the next `set` arms again, even for the same deadline.
                self.armed = None;
                return Ok(());
            }
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::WouldBlock {
                guard.clear_ready();
                continue;
            }
            return Err(e);
        }
    }
}
