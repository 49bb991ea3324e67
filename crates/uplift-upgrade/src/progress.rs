//! Live progress of a running phase: done/total and an ETA from the observed rate.
//! Kept in memory (progress ticks are too frequent for the log) and merged into the
//! state the API shows.

use serde::Serialize;

/// Progress of one unit of work (a phase, or one entity's copy).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Progress {
    pub done: u64,
    pub total: u64,
    /// Seconds still needed at the rate seen so far; `None` before any progress.
    pub eta_seconds: Option<f64>,
}

impl Progress {
    /// Progress after `elapsed_seconds` with `done` of `total` finished.
    pub fn at(done: u64, total: u64, elapsed_seconds: f64) -> Progress {
        let eta_seconds = if done == 0 || elapsed_seconds <= 0.0 {
            None
        } else if done >= total {
            Some(0.0)
        } else {
            Some(elapsed_seconds * (total - done) as f64 / done as f64)
        };
        Progress {
            done,
            total,
            eta_seconds,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eta_follows_the_observed_rate() {
        assert_eq!(Progress::at(0, 100, 5.0).eta_seconds, None);
        assert_eq!(Progress::at(25, 100, 5.0).eta_seconds, Some(15.0));
        assert_eq!(Progress::at(100, 100, 5.0).eta_seconds, Some(0.0));
    }
}
