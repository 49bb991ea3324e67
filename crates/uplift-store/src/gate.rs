//! The write gate of an environment's production: every record write passes it
//! ([`crate::records`] is the one write path), and step 3's switch-over closes it for a
//! bounded moment. A closed gate *holds* writes (they wait; none is refused), waits for
//! the writes already inside to finish (the drain), and when it opens the held writes go
//! on, onto the new database if the switch happened: a write that finds its database
//! retired answers [`StoreError::Retired`] and its caller sends it again to the
//! environment's production as it is now.
//!
//! The gate is shared by every production database an environment has had (the
//! [`crate::Store`] hands the same one to each), so a write holding the old database
//! waits at the same gate as one that will use the new one.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// One environment's write gate.
#[derive(Debug, Default)]
pub struct WriteGate {
    /// Writes hold it shared; a pause holds it exclusively. Tokio's lock is fair: once
    /// a pause waits for it, later writes queue behind the pause, which is the hold.
    lock: RwLock<()>,
    closing: AtomicBool,
    held: AtomicU64,
    max_wait_us: AtomicU64,
}

/// A write inside the gate: the pause waits until every pass is dropped.
#[derive(Debug)]
pub struct Pass<'a> {
    _shared: RwLockReadGuard<'a, ()>,
}

/// The gate closed: no write is inside and new ones wait until this is dropped.
#[derive(Debug)]
pub struct Closed<'a> {
    gate: &'a WriteGate,
    _exclusive: RwLockWriteGuard<'a, ()>,
    /// When the pause began (its drain included).
    pub since: Instant,
}

/// What a pause did to the writes it met.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Held {
    /// Writes that arrived while the gate was closing or closed and waited.
    pub writes: u64,
    /// The longest any of them waited, in milliseconds.
    pub max_wait_ms: u64,
}

impl WriteGate {
    /// Enters the gate, waiting while it is closed.
    pub async fn pass(&self) -> Pass<'_> {
        if !self.closing.load(Ordering::Acquire)
            && let Ok(g) = self.lock.try_read()
        {
            return Pass { _shared: g };
        }
        let t0 = Instant::now();
        let held = self.closing.load(Ordering::Acquire);
        let g = self.lock.read().await;
        if held || t0.elapsed() > Duration::from_millis(1) {
            self.held.fetch_add(1, Ordering::Relaxed);
            let us = t0.elapsed().as_micros() as u64;
            self.max_wait_us.fetch_max(us, Ordering::Relaxed);
        }
        Pass { _shared: g }
    }

    /// Closes the gate: holds new writes and waits for those inside to finish, for at
    /// most `drain_budget`; `None` when they did not finish in time (the gate is then
    /// open again and the held writes go on where they were going).
    pub async fn close(&self, drain_budget: Duration) -> Option<Closed<'_>> {
        let since = Instant::now();
        self.held.store(0, Ordering::Relaxed);
        self.max_wait_us.store(0, Ordering::Relaxed);
        self.closing.store(true, Ordering::Release);
        match tokio::time::timeout(drain_budget, self.lock.write()).await {
            Ok(g) => Some(Closed {
                gate: self,
                _exclusive: g,
                since,
            }),
            Err(_) => {
                self.closing.store(false, Ordering::Release);
                None
            }
        }
    }

    /// What the last pause held: read once it has been opened and the writes went on.
    pub fn held(&self) -> Held {
        Held {
            writes: self.held.load(Ordering::Relaxed),
            max_wait_ms: self.max_wait_us.load(Ordering::Relaxed).div_ceil(1000),
        }
    }
}

impl Drop for Closed<'_> {
    fn drop(&mut self) {
        self.gate.closing.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn a_closed_gate_holds_writes_until_it_opens() {
        let gate = Arc::new(WriteGate::default());
        let closed = gate
            .close(Duration::from_secs(1))
            .await
            .expect("nothing inside");
        let g = gate.clone();
        let write = tokio::spawn(async move {
            let _p = g.pass().await;
        });
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(
            !write.is_finished(),
            "the write waits while the gate is closed"
        );
        drop(closed);
        write.await.unwrap();
        let held = gate.held();
        assert_eq!(held.writes, 1);
        assert!(held.max_wait_ms >= 30, "{held:?}");
    }

    #[tokio::test]
    async fn a_write_inside_past_the_budget_aborts_the_close() {
        let gate = Arc::new(WriteGate::default());
        let inside = gate.pass().await;
        assert!(gate.close(Duration::from_millis(20)).await.is_none());
        drop(inside);
        let _again = gate.pass().await;
        assert!(gate.close(Duration::from_millis(20)).await.is_none());
    }

    #[tokio::test]
    async fn the_close_waits_for_the_writes_inside() {
        let gate = Arc::new(WriteGate::default());
        let inside = gate.pass().await;
        let g = gate.clone();
        let close = tokio::spawn(async move { g.close(Duration::from_secs(2)).await.is_some() });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!close.is_finished(), "the drain waits for the write inside");
        drop(inside);
        assert!(close.await.unwrap());
    }
}
