//! When each app was last played, for step 2's items (`last_used_at`). A play is a
//! read; writing the control plane on every one would turn the player's reads into
//! writes, so each server records an app's use at most once per
//! [`APP_USE_GRANULARITY_S`]: `last_used_at` is exact to that granularity.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How stale an app's recorded last use may be.
pub(crate) const APP_USE_GRANULARITY_S: u64 = 60;

/// (environment, app name).
type AppKey = (String, String);

/// When this server last recorded each app's use.
#[derive(Default)]
pub(crate) struct AppUsage {
    recorded: Mutex<HashMap<AppKey, Instant>>,
}

impl AppUsage {
    /// Whether a play of `app` at `now` should be recorded; if so, it counts as
    /// recorded from now on.
    pub(crate) fn due(&self, env: &str, app: &str, now: Instant) -> bool {
        let Ok(mut recorded) = self.recorded.lock() else {
            return true;
        };
        let key = (env.to_string(), app.to_string());
        let every = Duration::from_secs(APP_USE_GRANULARITY_S);
        match recorded.get(&key) {
            Some(at) if now.saturating_duration_since(*at) < every => false,
            _ => {
                recorded.insert(key, now);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_use_is_recorded_once_per_granularity_and_per_app() {
        let usage = AppUsage::default();
        let t0 = Instant::now();
        let later = |s: u64| t0 + Duration::from_secs(s);
        let cases = [
            (("e", "a"), t0, true),
            (("e", "a"), later(1), false),
            (("e", "b"), later(1), true),
            (("f", "a"), later(1), true),
            (("e", "a"), later(APP_USE_GRANULARITY_S - 1), false),
            (("e", "a"), later(APP_USE_GRANULARITY_S), true),
            (("e", "a"), later(APP_USE_GRANULARITY_S + 1), false),
        ];
        for ((env, app), at, expect) in cases {
            assert_eq!(usage.due(env, app, at), expect, "{env}/{app} at {at:?}");
        }
    }
}
