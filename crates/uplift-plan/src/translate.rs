//! A record, as flows see it (the data API's JSON of one row), carried across an
//! upgrade's switch: forward through the plan's row transforms, or back through their
//! inverse. The switch hands a run still queued for an original flow to the flow that
//! replaces it, and the record its trigger carries must then be in the new schema.

use std::collections::HashMap;

use serde_json::{Map, Value as Json};
use time::OffsetDateTime;
use uplift_model::codec::{decode, record_json};
use uplift_model::entity::KEY;
use uplift_model::layout::{entity_columns, field_columns};
use uplift_model::transform::{EntityTransform, EvalContext, RowOutcome, evaluate};
use uplift_model::{Catalog, Entity, SchemaVersion, Value};

use crate::{Upgrade, inverse};

/// One entity's way across: its transform, and both sides' entities and versions.
struct Crossing {
    transform: EntityTransform,
    from: (Entity, SchemaVersion),
    to: (Entity, SchemaVersion),
}

/// Records of one side of a switch as records of the other.
pub struct Translator {
    /// By the entity's name on the side records come from.
    by_entity: HashMap<String, Crossing>,
}

impl Translator {
    /// Classic records as modern ones: through the plan's transforms.
    pub fn forward(upgrade: &Upgrade, source: &Catalog) -> Translator {
        let crossings = upgrade.entities.iter().filter_map(|t| {
            let from = source.entity(&t.source_entity)?.clone();
            let to = upgrade.target.entity(&t.target_entity)?.clone();
            Some(Crossing {
                transform: t.clone(),
                from: (from, source.version),
                to: (to, upgrade.target.version),
            })
        });
        Translator::of(crossings)
    }

    /// Modern records as classic ones: through the inverse transforms (a value with no
    /// classic counterpart is left out).
    pub fn backward(upgrade: &Upgrade, source: &Catalog) -> Translator {
        let crossings = inverse(upgrade, source).into_iter().filter_map(|i| {
            let t = i.transform;
            let from = upgrade.target.entity(&t.source_entity)?.clone();
            let to = source.entity(&t.target_entity)?.clone();
            Some(Crossing {
                transform: t,
                from: (from, upgrade.target.version),
                to: (to, source.version),
            })
        });
        Translator::of(crossings)
    }

    fn of(crossings: impl Iterator<Item = Crossing>) -> Translator {
        Translator {
            by_entity: crossings.map(|c| (c.from.0.name.clone(), c)).collect(),
        }
    }

    /// `record` of `entity` on the other side: the entity's name there and the record;
    /// `None` when the entity does not cross or the row is one the plan refuses.
    pub fn record(
        &self,
        entity: &str,
        record: &Map<String, Json>,
    ) -> Option<(String, Map<String, Json>)> {
        let c = self.by_entity.get(entity)?;
        let (from, from_version) = &c.from;
        let mut row: HashMap<String, Value> = HashMap::new();
        if let Some(Json::String(id)) = record.get(KEY) {
            row.insert(KEY.to_string(), Value::Text(id.clone()));
        }
        for f in from.all_fields(*from_version) {
            let cols = field_columns(f);
            let values = record
                .get(&f.name)
                .and_then(|j| decode(f, j).ok())
                .unwrap_or_else(|| vec![Value::Null; cols.len()]);
            for (col, v) in cols.into_iter().zip(values) {
                row.insert(col.name, v);
            }
        }
        for col in entity_columns(from, *from_version) {
            row.entry(col.name).or_insert(Value::Null);
        }
        let ctx = EvalContext {
            upgrade_time: OffsetDateTime::now_utc(),
            actor: String::new(),
        };
        let RowOutcome::Copied { values, .. } = evaluate(&c.transform, &row, &ctx).ok()? else {
            return None;
        };
        let (to, to_version) = &c.to;
        let computed: HashMap<&str, Value> = c
            .transform
            .columns
            .iter()
            .map(|t| t.name.as_str())
            .zip(values)
            .collect();
        let out: Vec<Value> = entity_columns(to, *to_version)
            .iter()
            .map(|col| {
                computed
                    .get(col.name.as_str())
                    .cloned()
                    .unwrap_or(Value::Null)
            })
            .collect();
        Some((to.name.clone(), record_json(to, *to_version, &out)))
    }
}
