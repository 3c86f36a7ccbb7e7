//! The engine's event channel: bounded, with its depth and drops counted for `status`.

use std::sync::Arc;

use tokio::sync::mpsc;
use tracing::warn;

use crate::control;

use super::Ev;

/// Room in the engine's event queue. The senders behind it are bounded themselves (the
/// XDP ring buffer, each socket's receive buffer, the netlink socket, the tracker's
/// channel): a bounded queue here lets their bounds hold instead of growing the heap
/// while the engine is busy. 4096 events are seconds of a 10 ms lab at full churn.
pub(super) const EVENT_QUEUE_LEN: usize = 4096;

/// What the event queue dropped and how full it got, for `haxdp status`.
#[derive(Debug, Default)]
pub(super) struct EvQueueStats {
    pub(super) max_depth: std::sync::atomic::AtomicUsize,
    pub(super) dropped_kernel: std::sync::atomic::AtomicU64,
    dropped_housekeeping: std::sync::atomic::AtomicU64,
    dropped_status: std::sync::atomic::AtomicU64,
}

/// The sending side of the engine's bounded event queue. `send` waits for room, so that
/// a sender with a bounded source (socket, netlink, tracker, signals) leaves its backlog
/// in that source; `offer` never waits and drops the event when the queue is full,
/// counted by kind: XDP reports (the ring's callback cannot wait), housekeeping ticks
/// (the next one comes), status requests (the client is told the daemon is busy).
#[derive(Clone)]
pub(super) struct EvTx {
    pub(super) tx: mpsc::Sender<Ev>,
    pub(super) stats: Arc<EvQueueStats>,
}

/// The receiver was dropped: the engine is gone.
#[derive(Debug)]
pub(super) struct EvClosed;

pub(super) fn ev_channel() -> (EvTx, mpsc::Receiver<Ev>) {
    let (tx, rx) = mpsc::channel(EVENT_QUEUE_LEN);
    (
        EvTx {
            tx,
            stats: Arc::default(),
        },
        rx,
    )
}

impl EvTx {
    fn note_depth(&self) {
        let depth = self.tx.max_capacity() - self.tx.capacity();
        self.stats
            .max_depth
            .fetch_max(depth, std::sync::atomic::Ordering::Relaxed);
    }

    /// Queue `ev`, waiting for room.
    pub(super) async fn send(&self, ev: Ev) -> Result<(), EvClosed> {
        self.tx.send(ev).await.map_err(|_| EvClosed)?;
        self.note_depth();
        Ok(())
    }

    /// Queue `ev` if there is room; `Ok(false)`: the queue was full, dropped and counted.
    pub(super) fn offer(&self, ev: Ev) -> Result<bool, EvClosed> {
        use std::sync::atomic::Ordering::Relaxed;
        match self.tx.try_send(ev) {
            Ok(()) => {
                self.note_depth();
                Ok(true)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(EvClosed),
            Err(mpsc::error::TrySendError::Full(ev)) => {
                let counter = match ev {
                    Ev::Kernel(_) => &self.stats.dropped_kernel,
                    Ev::Status(_) => &self.stats.dropped_status,
                    _ => &self.stats.dropped_housekeeping,
                };
                let n = counter.fetch_add(1, Relaxed) + 1;
                // One line per 1000 drops: a flood must not become a log flood.
                if n % 1000 == 1 {
                    warn!("event queue full ({EVENT_QUEUE_LEN}): an event was dropped ({n} of its kind so far); the engine is not keeping up");
                }
                Ok(false)
            }
        }
    }

    /// The queue's figures now.
    pub(super) fn status(&self) -> control::EventQueueStatus {
        use std::sync::atomic::Ordering::Relaxed;
        control::EventQueueStatus {
            capacity: self.tx.max_capacity(),
            depth: self.tx.max_capacity() - self.tx.capacity(),
            max_depth: self.stats.max_depth.load(Relaxed),
            dropped_kernel: self.stats.dropped_kernel.load(Relaxed),
            dropped_housekeeping: self.stats.dropped_housekeeping.load(Relaxed),
            dropped_status: self.stats.dropped_status.load(Relaxed),
        }
    }
}
