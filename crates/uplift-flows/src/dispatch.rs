//! Outbox entries into runs: one per matching flow, keyed by the entry, so doing it
//! twice (a crash between recording the runs and clearing the entries) makes one.

use std::collections::BTreeSet;

use serde_json::json;
use uplift_model::filter::{eval_filter, parse_filter};
use uplift_model::flow::{FlowState, Trigger};
use uplift_store::control::{EnvRecord, FlowRecord};
use uplift_store::outbox::{self, Op};

use crate::template::lookup_path;
use crate::{FlowError, MAX_DEPTH, OUTBOX_BATCH, Runtime};

/// The change a record trigger reacts to: its operation, entity and filter.
pub(crate) fn record_trigger(t: &Trigger) -> Option<(Op, &str, Option<&str>)> {
    match t {
        Trigger::RecordCreated { entity, filter } => Some((Op::Created, entity, filter.as_deref())),
        Trigger::RecordUpdated { entity, filter } => Some((Op::Updated, entity, filter.as_deref())),
        Trigger::RecordDeleted { entity, filter } => Some((Op::Deleted, entity, filter.as_deref())),
        _ => None,
    }
}

/// Turns the outbox entries of `env`'s databases (production, and any its `flows` are
/// bound to) into runs, a batch per database; returns whether a batch was full (more
/// may wait).
pub(crate) async fn dispatch(
    rt: &Runtime,
    env: &EnvRecord,
    flows: &[FlowRecord],
) -> Result<bool, FlowError> {
    let mut more = false;
    let control = rt.store.control();
    let env_db = &env.database;
    let env = env.name.as_str();
    let mut databases: BTreeSet<String> = flows.iter().map(|f| f.database.clone()).collect();
    databases.insert(env_db.clone());
    for database in databases {
        let Ok(db) = rt.store.bound(env, &database).await else {
            continue;
        };
        let entries = outbox::pending(&db, OUTBOX_BATCH).await?;
        if entries.is_empty() {
            continue;
        }
        more |= entries.len() >= OUTBOX_BATCH as usize;
        let mut done = Vec::new();
        for e in &entries {
            for f in flows {
                if f.database != database || f.definition.state != FlowState::On {
                    continue;
                }
                let Some((op, entity, filter)) = record_trigger(&f.definition.trigger) else {
                    continue;
                };
                if op != e.op || entity != e.entity {
                    continue;
                }
                let record = serde_json::Value::Object(e.record.clone());
                if let Some(filter) = filter {
                    let Ok(expr) = parse_filter(filter) else {
                        continue;
                    };
                    if !eval_filter(&expr, &|p| lookup_path(&record, p)) {
                        continue;
                    }
                }
                let trigger = json!({
                    "kind": format!("record_{}", e.op.as_str()),
                    "entity": e.entity,
                    "record": record,
                    "time": e.at,
                    "depth": e.depth,
                });
                let key = format!("outbox:{env}:{database}:{}:{}:{}", e.seq, e.at, f.id);
                if e.depth >= MAX_DEPTH {
                    // A loop: flows writing records that trigger flows. Record it, stop.
                    let reason = format!(
                        "stopped: the change that triggered this run was made {} flow runs deep, and the limit is {MAX_DEPTH}; flows are triggering each other in a loop",
                        e.depth
                    );
                    control
                        .record_stopped_run(f, &key, &trigger, e.depth, &reason)
                        .await?;
                } else {
                    control.enqueue_run(f, &key, &trigger, e.depth).await?;
                }
            }
            done.push(e.seq);
        }
        outbox::remove(&db, &done).await?;
    }
    Ok(more)
}
