//! Flows in the control plane: one row per flow, keyed by a generated id (apps'
//! commands refer to flows by id, and step 2's upgraded clones get their own), with
//! its definition, on/off state and the database it is bound to.

use serde::Serialize;
use uplift_model::flow::{FlowDef, FlowState};
use uplift_model::{ColType, Value};

use super::row::{Cols, Row};
use super::{Control, now_text};
use crate::{Result, StoreError};

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

const COLS: Cols = &[
    ("id", ColType::Text),
    ("definition", ColType::Text),
    ("database", ColType::Text),
    ("created_at", ColType::Text),
    ("updated_at", ColType::Text),
];

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
        self.execute(
            "INSERT INTO {s}flows (env, id, name, owner, editors, state, definition, database, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (env, id) DO UPDATE SET name = excluded.name, owner = excluded.owner, editors = excluded.editors, state = excluded.state, definition = excluded.definition, database = excluded.database, updated_at = excluded.updated_at",
            &[
                Value::Text(env.into()),
                Value::Text(id.into()),
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
        Ok(())
    }

    fn flow_from(env: &str, r: &Row) -> Result<FlowRecord> {
        Ok(FlowRecord {
            env: env.into(),
            id: r.text("id")?,
            definition: r.json("definition", "a flow definition")?,
            database: r.text("database")?,
            created_at: r.text("created_at")?,
            updated_at: r.text("updated_at")?,
        })
    }

    pub async fn flow(&self, env: &str, id: &str) -> Result<Option<FlowRecord>> {
        let rows = self
            .select(
                COLS,
                "FROM {s}flows WHERE env = ? AND id = ?",
                &[Value::Text(env.into()), Value::Text(id.into())],
            )
            .await?;
        rows.first().map(|r| Self::flow_from(env, r)).transpose()
    }

    /// Every flow of an environment, by name.
    pub async fn flows(&self, env: &str) -> Result<Vec<FlowRecord>> {
        self.select(
            COLS,
            "FROM {s}flows WHERE env = ? ORDER BY name, id",
            &[Value::Text(env.into())],
        )
        .await?
        .iter()
        .map(|r| Self::flow_from(env, r))
        .collect()
    }

    /// Removes a flow (an upgrade's clone, when the upgrade is cancelled). Its runs stay
    /// for the record; a flow that is not there is not an error.
    pub async fn delete_flow(&self, env: &str, id: &str) -> Result<()> {
        self.execute(
            "DELETE FROM {s}flows WHERE env = ? AND id = ?",
            &[Value::Text(env.into()), Value::Text(id.into())],
        )
        .await?;
        Ok(())
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
