//! What a completed upgrade keeps, and for how long: step 2's test database for
//! `test_retention_hours` (makers may still want to look at what they tested), the
//! database production was on for `revert_window_hours` (a revert needs it). The
//! janitor deletes each once its time is up. The deadlines are read from the upgrade's
//! log, so a restart forgets none; `uplift upgrade cleanup` deletes both at once.

use time::{Duration, OffsetDateTime};
use uplift_model::value::parse_instant;

use super::{UpgradeError, Upgrades, now};
use crate::events::{Event, KeptDatabase};
use crate::state::{Status, Step3State, UpgradeState};

/// How long a completed upgrade keeps its databases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub test_retention_hours: u64,
    pub revert_window_hours: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            test_retention_hours: 48,
            revert_window_hours: 168,
        }
    }
}

/// What an upgrade keeps: the test database, and the production it does not serve —
/// the old one once completed, the upgraded one once reverted.
pub fn kept_kinds(t: &Step3State) -> [KeptDatabase; 2] {
    let reverted = t.revert.as_ref().is_some_and(|r| r.switched);
    match reverted {
        true => [KeptDatabase::Test, KeptDatabase::UpgradedProduction],
        false => [KeptDatabase::Test, KeptDatabase::OldProduction],
    }
}

/// When each kept database of a completed upgrade is due for deletion (both
/// productions' windows run from the completion).
pub fn deadlines(t: &Step3State, r: Retention) -> Option<[(KeptDatabase, OffsetDateTime); 2]> {
    let completed = parse_instant(t.completed_at.as_deref()?)?;
    // A retention past the calendar's end is "never": the deadline saturates.
    let after = |hours: u64| {
        i64::try_from(hours)
            .ok()
            .and_then(|h| h.checked_mul(3600))
            .map(Duration::seconds)
            .and_then(|d| completed.checked_add(d))
            .unwrap_or(LATEST)
    };
    let [test, production] = kept_kinds(t);
    Some([
        (test, after(r.test_retention_hours)),
        (production, after(r.revert_window_hours)),
    ])
}

/// The last instant a deadline can name (the end of year 9999, UTC).
const LATEST: OffsetDateTime = time::macros::datetime!(9999-12-31 23:59:59 UTC);

/// The kept databases that are due at `at` and not yet deleted.
pub fn due(t: &Step3State, r: Retention, at: OffsetDateTime) -> Vec<KeptDatabase> {
    deadlines(t, r)
        .into_iter()
        .flatten()
        .filter(|(which, deadline)| at >= *deadline && !removed(t, *which))
        .map(|(which, _)| which)
        .collect()
}

fn removed(t: &Step3State, which: KeptDatabase) -> bool {
    match which {
        KeptDatabase::Test => t.test_database_removed,
        KeptDatabase::OldProduction => t.old_production_removed,
        KeptDatabase::UpgradedProduction => t.upgraded_production_removed,
    }
}

/// Whether the upgrade is settled with databases it may keep.
fn settled(status: Status) -> bool {
    matches!(status, Status::Completed | Status::Reverted)
}

impl Upgrades {
    /// Sets how long completed upgrades keep their databases (server settings).
    pub fn set_retention(&self, r: Retention) {
        if let Ok(mut m) = self.retention.lock() {
            *m = r;
        }
    }

    pub fn retention(&self) -> Retention {
        self.retention.lock().map(|r| *r).unwrap_or_default()
    }

    /// Deletes what `env`'s completed upgrades kept and whose time is up (every one,
    /// not only the latest: a newer upgrade does not keep an older one's databases).
    pub async fn sweep(&self, env: &str) -> Result<Vec<KeptDatabase>, UpgradeError> {
        let mut swept = Vec::new();
        for id in self.store.control().upgrades(env).await? {
            let Some(state) = self.folded_log(&id).await?.1 else {
                continue;
            };
            let Some(t) = state.step3.as_ref().filter(|_| settled(state.status)) else {
                continue;
            };
            let due = due(t, self.retention(), OffsetDateTime::now_utc());
            for which in &due {
                self.remove_kept(env, &id, &state, *which, "janitor")
                    .await?;
            }
            swept.extend(due);
        }
        Ok(swept)
    }

    /// Deletes both kept databases now, ending the revert window (`uplift upgrade
    /// cleanup`). Returns what it deleted.
    pub async fn cleanup(&self, env: &str, by: &str) -> Result<Vec<KeptDatabase>, UpgradeError> {
        let (id, state) = self.completed(env).await?.ok_or_else(|| {
            UpgradeError::Conflict(format!("'{env}' has no completed upgrade to clean up"))
        })?;
        let Some(t) = &state.step3 else {
            return Ok(Vec::new());
        };
        let mut done = Vec::new();
        for which in kept_kinds(t) {
            if !removed(t, which) {
                self.remove_kept(env, &id, &state, which, by).await?;
                done.push(which);
            }
        }
        Ok(done)
    }

    async fn completed(&self, env: &str) -> Result<Option<(String, UpgradeState)>, UpgradeError> {
        Ok(self.latest(env).await?.filter(|(_, s)| settled(s.status)))
    }

    /// Drops one kept database, then logs it (a restart between the two drops it again,
    /// which finds nothing). The old production is logged first: the log's lock orders
    /// it against a revert's start, so a revert never begins on a database being
    /// dropped (a stop between the two leaves the files, not a broken revert); and
    /// with it goes the capture that recorded writes for a revert.
    async fn remove_kept(
        &self,
        env: &str,
        id: &str,
        state: &UpgradeState,
        which: KeptDatabase,
        by: &str,
    ) -> Result<(), UpgradeError> {
        let Some(t) = &state.step3 else {
            return Ok(());
        };
        let database = match which {
            KeptDatabase::Test => &state.test_database,
            KeptDatabase::OldProduction => &t.from_database,
            KeptDatabase::UpgradedProduction => &t.new_database,
        };
        let removed = Event::DatabaseRemoved {
            at: now(),
            database: which,
            by: by.to_string(),
        };
        if which == KeptDatabase::OldProduction {
            self.log(id, &removed).await?;
            // The capture this upgrade put on its new production, only while the
            // environment is still on it (a later upgrade's is not this one's).
            let serving = self.store.control().get_env(env).await?;
            if serving.is_some_and(|e| e.database == t.new_database) {
                let prod = self.store.env_db(env).await?;
                if let Err(e) = uplift_store::capture::remove(&prod).await {
                    tracing::warn!(env, error = %e, "capture stays on production");
                }
            }
        }
        self.store.remove_database(env, database).await?;
        tracing::info!(env, database, ?which, by, "kept database deleted");
        match which {
            KeptDatabase::OldProduction => Ok(()),
            _ => self.log(id, &removed).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::CompleteOptions;
    use crate::state::PauseReport;

    fn completed_at(at: &str) -> Step3State {
        Step3State {
            options: CompleteOptions {
                pause_budget_ms: 2000,
                max_attempts: 3,
                override_reason: None,
            },
            from_database: "main".into(),
            new_database: "prod-1".into(),
            by: "admin@x.org".into(),
            started_at: at.into(),
            pause: PauseReport::default(),
            switched: true,
            renames: Default::default(),
            failure: None,
            duration_ms: Some(1),
            completed_at: Some(at.into()),
            test_database_removed: false,
            old_production_removed: false,
            upgraded_production_removed: false,
            revert: None,
        }
    }

    #[test]
    fn each_kept_database_is_due_once_its_time_is_up() {
        use KeptDatabase::*;
        let t = completed_at("2026-12-01T00:00:00.000Z");
        let r = Retention::default();
        let cases: &[(&str, &[KeptDatabase])] = &[
            ("2026-12-01T00:00:00Z", &[]),
            ("2026-12-02T23:59:59Z", &[]),
            ("2026-12-03T00:00:00Z", &[Test]),
            ("2026-12-07T23:59:59Z", &[Test]),
            ("2026-12-08T00:00:00Z", &[Test, OldProduction]),
        ];
        for (at, expect) in cases {
            let at = parse_instant(at).unwrap();
            assert_eq!(due(&t, r, at), *expect, "{at}");
        }
    }

    #[test]
    fn a_deleted_database_is_never_due_again() {
        let mut t = completed_at("2026-12-01T00:00:00.000Z");
        t.test_database_removed = true;
        let at = parse_instant("2026-12-09T00:00:00Z").unwrap();
        assert_eq!(
            due(&t, Retention::default(), at),
            [KeptDatabase::OldProduction]
        );
        t.old_production_removed = true;
        assert!(due(&t, Retention::default(), at).is_empty());
    }

    #[test]
    fn after_a_revert_the_upgraded_production_goes_and_the_old_one_stays() {
        let mut t = completed_at("2026-12-01T00:00:00.000Z");
        t.revert = Some(crate::state::RevertState {
            reason: "r".into(),
            options: t.options.clone(),
            by: "admin@x.org".into(),
            started_at: "2026-12-02T00:00:00.000Z".into(),
            pause: PauseReport::default(),
            switched: true,
            renames: Default::default(),
            failure: None,
            duration_ms: Some(1),
            reverted_at: Some("2026-12-02T00:00:01.000Z".into()),
        });
        let at = parse_instant("2026-12-09T00:00:00Z").unwrap();
        assert_eq!(
            due(&t, Retention::default(), at),
            [KeptDatabase::Test, KeptDatabase::UpgradedProduction]
        );
    }

    #[test]
    fn a_retention_past_the_calendar_never_comes_due() {
        let t = completed_at("2026-12-01T00:00:00.000Z");
        let forever = Retention {
            test_retention_hours: u64::MAX,
            revert_window_hours: 100_000_000,
        };
        let at = parse_instant("9999-12-30T00:00:00Z").unwrap();
        assert!(due(&t, forever, at).is_empty());
    }

    #[test]
    fn an_upgrade_not_completed_keeps_everything() {
        let mut t = completed_at("2026-12-01T00:00:00.000Z");
        t.completed_at = None;
        let at = parse_instant("2027-01-01T00:00:00Z").unwrap();
        assert!(due(&t, Retention::default(), at).is_empty());
    }
}
