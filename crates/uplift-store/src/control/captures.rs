//! What flows bound to a test database would have sent: their e-mail, and HTTP calls to
//! hosts the upgrade does not allow, kept here instead of reaching real people and
//! systems.

use serde::Serialize;
use serde_json::Value as Json;
use uplift_model::{ColType, Value};

use super::row::{Cols, Row};
use super::{Control, now_text};
use crate::{Result, StoreError};

/// One captured message or call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Capture {
    pub id: String,
    pub database: String,
    /// `email` or `http`.
    pub kind: String,
    pub flow_id: String,
    pub run_id: String,
    /// The message (`to`, `subject`, `body`) or the call (`method`, `url`, `headers`, `body`).
    pub payload: Json,
    pub at: String,
}

const COLS: Cols = &[
    ("id", ColType::Text),
    ("database", ColType::Text),
    ("kind", ColType::Text),
    ("flow_id", ColType::Text),
    ("run_id", ColType::Text),
    ("payload", ColType::Text),
    ("at", ColType::Text),
];

fn capture_from(r: &Row) -> Result<Capture> {
    Ok(Capture {
        id: r.text("id")?,
        database: r.text("database")?,
        kind: r.text("kind")?,
        flow_id: r.text("flow_id")?,
        run_id: r.text("run_id")?,
        payload: r.json("payload", "a captured payload")?,
        at: r.text("at")?,
    })
}

impl Control {
    /// Keeps what a run on `database` would have sent; returns the capture's id.
    pub async fn capture(
        &self,
        env: &str,
        database: &str,
        kind: &str,
        (flow_id, run_id): (&str, &str),
        payload: &Json,
    ) -> Result<String> {
        let id = uuid::Uuid::now_v7().to_string();
        let payload =
            serde_json::to_string(payload).map_err(|e| StoreError::Invalid(e.to_string()))?;
        self.execute(
            "INSERT INTO {s}captures (env, id, database, kind, flow_id, run_id, payload, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            &[env, &id, database, kind, flow_id, run_id, &payload, &now_text()]
                .map(|v| Value::Text(v.to_string())),
        )
        .await?;
        Ok(id)
    }

    /// What runs on `database` sent, oldest first.
    pub async fn captures(&self, env: &str, database: &str) -> Result<Vec<Capture>> {
        self.select(
            COLS,
            "FROM {s}captures WHERE env = ? AND database = ? ORDER BY at, id",
            &[Value::Text(env.into()), Value::Text(database.into())],
        )
        .await?
        .iter()
        .map(capture_from)
        .collect()
    }

    /// The hosts runs on `database` may call for real, replacing any set before.
    pub async fn set_allowed_hosts(
        &self,
        env: &str,
        database: &str,
        hosts: &[String],
    ) -> Result<()> {
        let key = [Value::Text(env.into()), Value::Text(database.into())];
        self.execute(
            "DELETE FROM {s}capture_allowed_hosts WHERE env = ? AND database = ?",
            &key,
        )
        .await?;
        for h in hosts {
            self.execute(
                "INSERT INTO {s}capture_allowed_hosts (env, database, host) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                &[key[0].clone(), key[1].clone(), Value::Text(h.to_lowercase())],
            )
            .await?;
        }
        Ok(())
    }

    pub async fn allowed_hosts(&self, env: &str, database: &str) -> Result<Vec<String>> {
        const HOST: Cols = &[("host", ColType::Text)];
        self.select(
            HOST,
            "FROM {s}capture_allowed_hosts WHERE env = ? AND database = ? ORDER BY host",
            &[Value::Text(env.into()), Value::Text(database.into())],
        )
        .await?
        .iter()
        .map(|r| r.text("host"))
        .collect()
    }
}
