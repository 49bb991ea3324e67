//! Scheduled flows: each round, a flow whose latest slot (a multiple of `every`, or
//! the latest time its `cron` matches) began after the flow was last saved gets a run
//! keyed by that slot, so a slot runs once however many rounds or restarts see it.
//! Slots missed while the server was down are not caught up one by one: the latest
//! one runs.

use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};
use croner::Cron;
use serde_json::json;
use uplift_model::flow::{FlowState, Trigger, every_minutes};

use uplift_store::control::FlowRecord;

use crate::{FlowError, Runtime};

/// The start (seconds since the epoch) of the latest slot of `trigger` at or before
/// `now`, if it began after `since`.
pub fn due_slot(trigger: &Trigger, now: DateTime<Utc>, since: DateTime<Utc>) -> Option<i64> {
    let Trigger::Schedule { every, cron } = trigger else {
        return None;
    };
    let slot = match (every, cron) {
        (Some(e), _) => {
            let step = i64::try_from(every_minutes(e).ok()?)
                .ok()?
                .checked_mul(60)
                .filter(|s| *s > 0)?;
            now.timestamp().div_euclid(step) * step
        }
        (None, Some(c)) => Cron::from_str(c)
            .ok()?
            .find_previous_occurrence(&now, true)
            .ok()?
            .timestamp(),
        (None, None) => return None,
    };
    (slot > since.timestamp()).then_some(slot)
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let t = uplift_model::value::parse_instant(s)?;
    Utc.timestamp_opt(t.unix_timestamp(), t.nanosecond())
        .single()
}

/// Queues the due slot of every scheduled flow of `env` (its `flows`) that is on.
pub(crate) async fn schedule(
    rt: &Runtime,
    env: &str,
    flows: &[FlowRecord],
    now: DateTime<Utc>,
) -> Result<u32, FlowError> {
    let control = rt.store.control();
    let mut queued = 0;
    for f in flows {
        if f.definition.state != FlowState::On {
            continue;
        }
        let Some(since) = parse_time(&f.updated_at) else {
            continue;
        };
        let Some(slot) = due_slot(&f.definition.trigger, now, since) else {
            continue;
        };
        let at = Utc
            .timestamp_opt(slot, 0)
            .single()
            .map(|t| t.to_rfc3339())
            .unwrap_or_default();
        let trigger = json!({"kind": "schedule", "time": at});
        let key = format!("schedule:{env}:{}:{slot}", f.id);
        if control.enqueue_run(f, &key, &trigger, 0).await?.is_some() {
            queued += 1;
        }
    }
    Ok(queued)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn slots_begin_on_multiples_of_every_and_on_cron_matches() {
        let every = Trigger::Schedule {
            every: Some("15m".into()),
            cron: None,
        };
        let since = at("2026-01-01T10:05:00Z");
        assert_eq!(due_slot(&every, at("2026-01-01T10:14:59Z"), since), None);
        assert_eq!(
            due_slot(&every, at("2026-01-01T10:16:00Z"), since),
            Some(at("2026-01-01T10:15:00Z").timestamp())
        );
        let weekdays_nine = Trigger::Schedule {
            every: None,
            cron: Some("0 9 * * 1-5".into()),
        };
        // Saturday 2026-01-03: the latest match is Friday 09:00.
        assert_eq!(
            due_slot(&weekdays_nine, at("2026-01-03T12:00:00Z"), since),
            Some(at("2026-01-02T09:00:00Z").timestamp())
        );
        assert_eq!(
            due_slot(
                &weekdays_nine,
                at("2026-01-03T12:00:00Z"),
                at("2026-01-02T09:30:00Z")
            ),
            None,
            "not before the flow was saved"
        );
        assert_eq!(
            due_slot(&Trigger::Manual, at("2026-01-03T12:00:00Z"), since),
            None
        );
    }
}
