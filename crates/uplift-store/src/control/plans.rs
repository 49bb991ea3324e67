//! Upgrade plans uploaded through the API (`PUT /api/plans/{name}`): kept in the
//! control plane, so every server sharing it sees the same plans and no upgrade ever
//! reads a path it was given.

use serde::Serialize;
use uplift_model::{ColType, Value};

use super::row::{Cols, Row};
use super::{Control, now_text};
use crate::Result;

/// An uploaded plan as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanRecord {
    pub name: String,
    /// The plan's TOML, as uploaded (validated before it is stored).
    pub text: String,
    pub updated_by: String,
    pub updated_at: String,
}

const COLS: Cols = &[
    ("name", ColType::Text),
    ("text", ColType::Text),
    ("updated_by", ColType::Text),
    ("updated_at", ColType::Text),
];

fn plan_from(r: &Row) -> Result<PlanRecord> {
    Ok(PlanRecord {
        name: r.text("name")?,
        text: r.text("text")?,
        updated_by: r.text("updated_by")?,
        updated_at: r.text("updated_at")?,
    })
}

impl Control {
    /// Stores a plan under `name`, replacing one of that name; true when it is new.
    pub async fn put_plan(&self, name: &str, text: &str, by: &str) -> Result<bool> {
        let existed = self.plan(name).await?.is_some();
        self.execute(
            "INSERT INTO {s}plans (name, text, updated_by, updated_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (name) DO UPDATE SET text = excluded.text, updated_by = excluded.updated_by, updated_at = excluded.updated_at",
            &[
                Value::Text(name.into()),
                Value::Text(text.into()),
                Value::Text(by.into()),
                Value::Text(now_text()),
            ],
        )
        .await?;
        Ok(!existed)
    }

    pub async fn plan(&self, name: &str) -> Result<Option<PlanRecord>> {
        let rows = self
            .select(
                COLS,
                "FROM {s}plans WHERE name = ?",
                &[Value::Text(name.into())],
            )
            .await?;
        rows.first().map(plan_from).transpose()
    }

    /// Every uploaded plan, by name.
    pub async fn plans(&self) -> Result<Vec<PlanRecord>> {
        self.select(COLS, "FROM {s}plans ORDER BY name", &[])
            .await?
            .iter()
            .map(plan_from)
            .collect()
    }
}
