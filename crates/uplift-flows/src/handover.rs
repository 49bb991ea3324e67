//! The outbox at a switch (step 3's, or a revert's): inside the write pause, every
//! entry still in the outbox of the database being retired becomes runs of the flows
//! that were on when it was written (the originals' triggers decide which run), and
//! every run still queued for a flow the switch replaces is handed to the flow taking
//! its place — that flow's definition, on the new production, the trigger's record
//! carried into the new schema — in the switch's own transaction. So a write made just
//! before the switch acts on the production that serves after it, once: a run keeps
//! the key of its entry, and no run starts while writes are paused.

use std::sync::Arc;

use serde_json::{Map, Value as Json};
use uplift_model::flow::FlowDef;
use uplift_store::control::RunChange;

use crate::{FlowError, Runtime};

/// A record of the retired side (entity, record) as one of the new side, if it crosses.
pub type Translate =
    Arc<dyn Fn(&str, &Map<String, Json>) -> Option<(String, Map<String, Json>)> + Send + Sync>;

/// A flow the switch replaces: (its id, its successor's id, the successor's definition).
pub type Successor = (String, String, FlowDef);

impl Runtime {
    /// Drains `env`'s outboxes into runs, then hands each run still queued for a
    /// replaced flow to its successor: what the switch applies (see [`RunChange`]).
    pub async fn hand_over(
        &self,
        env: &str,
        successors: &[Successor],
        translate: &Translate,
    ) -> Result<Vec<RunChange>, FlowError> {
        self.drain(env).await?;
        let replaced: Vec<String> = successors.iter().map(|s| s.0.clone()).collect();
        let queued = self.store.control().queued_runs(env, &replaced).await?;
        let mut out = Vec::new();
        for run in queued {
            let Some((_, to, def)) = successors.iter().find(|s| s.0 == run.flow_id) else {
                continue;
            };
            let Some(trigger) = translated(&run.trigger, translate) else {
                // Its record does not cross (an entity the plan drops): the run stays
                // with its flow and fails there, saying so.
                continue;
            };
            out.push(RunChange {
                run_id: run.id,
                flow_id: to.clone(),
                definition: serde_json::to_string(def)
                    .map_err(|e| FlowError::Invalid(e.to_string()))?,
                trigger: trigger.to_string(),
            });
        }
        Ok(out)
    }
}

/// The trigger with its record in the new schema; unchanged when it carries none.
fn translated(trigger: &Json, translate: &Translate) -> Option<Json> {
    let (Some(entity), Some(record)) = (trigger["entity"].as_str(), trigger["record"].as_object())
    else {
        return Some(trigger.clone());
    };
    let (entity, record) = translate(entity, record)?;
    let mut t = trigger.clone();
    t["entity"] = Json::String(entity);
    t["record"] = Json::Object(record);
    Some(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_trigger_carries_its_record_across_or_stays_as_it_is() {
        let upper: Translate = Arc::new(|entity: &str, record: &Map<String, Json>| {
            (entity != "Dropped").then(|| {
                let mut r = Map::new();
                for (k, v) in record {
                    r.insert(k.to_lowercase(), v.clone());
                }
                (entity.to_lowercase(), r)
            })
        });
        let cases = [
            (
                json!({"kind": "record_created", "entity": "Ticket", "record": {"Subject": "a"}}),
                Some(
                    json!({"kind": "record_created", "entity": "ticket", "record": {"subject": "a"}}),
                ),
            ),
            (json!({"kind": "manual"}), Some(json!({"kind": "manual"}))),
            (
                json!({"kind": "record_created", "entity": "Dropped", "record": {}}),
                None,
            ),
        ];
        for (trigger, expected) in cases {
            assert_eq!(translated(&trigger, &upper), expected, "{trigger}");
        }
    }
}
