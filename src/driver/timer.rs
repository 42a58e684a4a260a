//! A precise timer inside the runtime: a `timerfd` watched by tokio's
//! reactor.
//!
//! tokio's own timers round up to the millisecond, too coarse for an
//! arrival schedule judged by a 1 ms lag. A dispatcher on a thread of its
//! own sleeps precisely, but every release then wakes a parked runtime
//! thread across threads: two context switches and a futex or eventfd per
//! request, more than the request itself costs the client at a few
//! thousand per second. A `timerfd` armed to the microsecond wakes the
//! runtime's own `epoll_wait` instead, so the dispatcher is an ordinary
//! task and the worker it releases runs next on the same thread.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use tokio::io::unix::AsyncFd;

/// Which dispatcher an open phase uses: `timer` (default, a task on a
/// `timerfd`) or `thread` (a thread that sleeps), from `REHEARSE_DISPATCH`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dispatch {
    Timer,
    Thread,
}

impl Dispatch {
    /// `REHEARSE_DISPATCH=thread` selects the thread; anything else, the timer.
    pub fn from_env() -> Dispatch {
        match std::env::var("REHEARSE_DISPATCH").as_deref() {
            Ok("thread") => Dispatch::Thread,
            _ => Dispatch::Timer,
        }
    }
}

/// A one-shot monotonic timer the runtime's reactor watches.
pub struct Timer {
    fd: AsyncFd<OwnedFd>,
}

impl Timer {
    /// Must be called inside a tokio runtime with I/O enabled.
    pub fn new() -> io::Result<Timer> {
        // SAFETY: timerfd_create returns a new descriptor or -1.
        let raw = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a descriptor we own from here on.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: the descriptor is valid and owned by the OwnedFd, which
        // the AsyncFd keeps until it deregisters it.
        let fd = unsafe { AsyncFd::register(fd) }.map_err(io::Error::from)?;
        Ok(Timer { fd })
    }

    /// Wait until `deadline`; returns at once when it has passed.
    pub async fn sleep_until(&self, deadline: Instant) -> io::Result<()> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        self.arm(left)?;
        loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|fd| read_expirations(fd.get_ref())) {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(e)) => return Err(e),
                // Spurious readiness: wait again.
                Err(_would_block) => continue,
            }
        }
    }

    /// Arm once, `after` from now (a relative timer: no clock conversion).
    fn arm(&self, after: Duration) -> io::Result<()> {
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: after.as_secs() as libc::time_t,
                // A zero it_value would disarm: at least one nanosecond.
                tv_nsec: (after.subsec_nanos().max(u32::from(after.as_secs() == 0)))
                    as libc::c_long,
            },
        };
        // SAFETY: the descriptor is a timerfd we own; spec is a valid itimerspec.
        let rc =
            unsafe { libc::timerfd_settime(self.fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// Read the expiration count, clearing the descriptor's readiness.
fn read_expirations(fd: &OwnedFd) -> io::Result<u64> {
    let mut buf = [0u8; 8];
    // SAFETY: reading 8 bytes into an 8-byte buffer from a descriptor we own.
    let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), 8) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(u64::from_ne_bytes(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timer_waits_to_its_deadline_and_not_much_longer() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let t = Timer::new().unwrap();
            // A deadline in the past returns at once.
            let before = Instant::now();
            t.sleep_until(before - Duration::from_millis(1))
                .await
                .unwrap();
            assert!(before.elapsed() < Duration::from_millis(5));
            // tokio's own sleep rounds up to the millisecond; this one does
            // not: the median overshoot of 2 ms waits stays well under it.
            let mut late = Vec::new();
            for _ in 0..21 {
                let due = Instant::now() + Duration::from_micros(2_100);
                t.sleep_until(due).await.unwrap();
                let now = Instant::now();
                assert!(now >= due, "woke before its deadline");
                late.push(now - due);
            }
            late.sort();
            assert!(
                late[10] < Duration::from_micros(500),
                "median overshoot {:?}",
                late[10]
            );
        });
    }
}
