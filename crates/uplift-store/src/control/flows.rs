//! Flows in the control plane: one row per flow, keyed by a generated id (apps'
//! commands refer to flows by id, and step 2's upgraded clones get their own), with
//! its definition, on/off state and the database it is bound to.

use serde::Serialize;
use uplift_model::Value;
use uplift_model::flow::{FlowDef, FlowState};

use super::{Control, now_text, text};
use crate::{Result, StoreError};

/// Tables behind flows; appended to the control plane's migration.
pub(super) const MIGRATION: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS {s}flows (env TEXT NOT NULL REFERENCES {s}environments(name) ON DELETE CASCADE, id TEXT NOT NULL, name TEXT NOT NULL, owner TEXT NOT NULL, editors TEXT NOT NULL, state TEXT NOT NULL, definition TEXT NOT NULL, database TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY (env, id))",
];

/// A flow as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlowRecord {
    pub env: String,
    pub id: String,
    pub definition: FlowDef,
    /// The database its steps read and write.
    pub database: String,
    pub created_at: String,
    pub updated_at: String,
}

impl FlowRecord {
    /// Whether `user` may change the flow and see its runs.
    pub fn editable_by(&self, user: &str) -> bool {
        self.definition.owner.eq_ignore_ascii_case(user)
            || self
                .definition
                .editors
                .iter()
                .any(|e| e.eq_ignore_ascii_case(user))
    }
}

const COLUMNS: &str = "id, definition, database, created_at, updated_at";

fn state_text(s: FlowState) -> &'static str {
    match s {
        FlowState::On => "on",
        FlowState::Off => "off",
    }
}

impl Control {
    /// Stores a flow under `id`, creating or replacing it.
    pub async fn save_flow(
        &self,
        env: &str,
        id: &str,
        def: &FlowDef,
        database: &str,
    ) -> Result<()> {
        let body = serde_json::to_string(def).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let editors =
            serde_json::to_string(&def.editors).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let now = now_text();
        let mut tx = self.pool.begin().await?;
        let key = [Value::Text(env.into()), Value::Text(id.into())];
        let exists = tx
            .query_opt(
                &self.sql("SELECT id FROM {s}flows WHERE env = ? AND id = ?"),
                &key,
                &[uplift_model::ColType::Text],
            )
            .await?
            .is_some();
        if exists {
            tx.execute(
                &self.sql("UPDATE {s}flows SET name = ?, owner = ?, editors = ?, state = ?, definition = ?, database = ?, updated_at = ? WHERE env = ? AND id = ?"),
                &[
                    Value::Text(def.name.clone()),
                    Value::Text(def.owner.clone()),
                    Value::Text(editors),
                    Value::Text(state_text(def.state).into()),
                    Value::Text(body),
                    Value::Text(database.into()),
                    Value::Text(now),
                    key[0].clone(),
                    key[1].clone(),
                ],
            )
            .await?;
        } else {
            tx.execute(
                &self.sql("INSERT INTO {s}flows (env, id, name, owner, editors, state, definition, database, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
                &[
                    key[0].clone(),
                    key[1].clone(),
                    Value::Text(def.name.clone()),
                    Value::Text(def.owner.clone()),
                    Value::Text(editors),
                    Value::Text(state_text(def.state).into()),
                    Value::Text(body),
                    Value::Text(database.into()),
                    Value::Text(now.clone()),
                    Value::Text(now),
                ],
            )
            .await?;
        }
        tx.commit().await
    }

    fn flow_from(env: &str, r: &[Value]) -> Result<FlowRecord> {
        Ok(FlowRecord {
            env: env.into(),
            id: text(&r[0]),
            definition: serde_json::from_str(&text(&r[1])).map_err(|e| {
                StoreError::Corrupt(format!("a flow definition does not parse: {e}"))
            })?,
            database: text(&r[2]),
            created_at: text(&r[3]),
            updated_at: text(&r[4]),
        })
    }

    pub async fn flow(&self, env: &str, id: &str) -> Result<Option<FlowRecord>> {
        let rows = self
            .query(
                &format!("SELECT {COLUMNS} FROM {{s}}flows WHERE env = ? AND id = ?"),
                &[Value::Text(env.into()), Value::Text(id.into())],
                5,
            )
            .await?;
        rows.first().map(|r| Self::flow_from(env, r)).transpose()
    }

    /// Every flow of an environment, by name.
    pub async fn flows(&self, env: &str) -> Result<Vec<FlowRecord>> {
        let rows = self
            .query(
                &format!("SELECT {COLUMNS} FROM {{s}}flows WHERE env = ? ORDER BY name, id"),
                &[Value::Text(env.into())],
                5,
            )
            .await?;
        rows.iter().map(|r| Self::flow_from(env, r)).collect()
    }

    /// Turns a flow on or off.
    pub async fn set_flow_state(&self, env: &str, id: &str, state: FlowState) -> Result<()> {
        let mut flow = self
            .flow(env, id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("no flow '{id}' in '{env}'")))?;
        flow.definition.state = state;
        self.save_flow(env, id, &flow.definition, &flow.database)
            .await
    }
}
