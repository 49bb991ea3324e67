//! Apps in the control plane: one row per app with its editable draft, and one row per
//! published version, immutable once written. Drafts and versions each record the
//! database they are bound to, so step 2 can bind copies to a test database.

use serde::Serialize;
use uplift_model::app::AppDef;
use uplift_model::{ColType, Value};

use super::{Control, now_text, text};
use crate::{Result, StoreError};

/// Tables behind apps; appended to the control plane's migration.
pub(super) const MIGRATION: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS {s}apps (env TEXT NOT NULL REFERENCES {s}environments(name) ON DELETE CASCADE, name TEXT NOT NULL, owner TEXT NOT NULL, editors TEXT NOT NULL, draft TEXT, draft_database TEXT, draft_saved_at TEXT, created_at TEXT NOT NULL, PRIMARY KEY (env, name))",
    "CREATE TABLE IF NOT EXISTS {s}app_versions (env TEXT NOT NULL, name TEXT NOT NULL, version BIGINT NOT NULL, definition TEXT NOT NULL, database TEXT NOT NULL, published_at TEXT NOT NULL, published_by TEXT NOT NULL, PRIMARY KEY (env, name, version), FOREIGN KEY (env, name) REFERENCES {s}apps(env, name) ON DELETE CASCADE)",
];

/// A definition together with the database it reads and writes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bound {
    pub definition: AppDef,
    pub database: String,
}

/// A published, immutable version of an app.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AppVersion {
    pub version: i64,
    #[serde(flatten)]
    pub bound: Bound,
    pub published_at: String,
    pub published_by: String,
}

/// An app: who may edit it, its draft, and its latest published version.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AppRecord {
    pub env: String,
    pub name: String,
    pub owner: String,
    pub editors: Vec<String>,
    pub draft: Option<Bound>,
    pub published: Option<AppVersion>,
}

impl AppRecord {
    /// Whether `user` may see the draft and change the app.
    pub fn editable_by(&self, user: &str) -> bool {
        self.owner.eq_ignore_ascii_case(user)
            || self.editors.iter().any(|e| e.eq_ignore_ascii_case(user))
    }
}

fn parse_def(s: &str) -> Result<AppDef> {
    serde_json::from_str(s)
        .map_err(|e| StoreError::Corrupt(format!("an app definition does not parse: {e}")))
}

fn to_json<T: Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Invalid(e.to_string()))
}

impl Control {
    /// Saves `def` as the draft of its app (creating the app), bound to `database`.
    /// The owner and editors follow the draft.
    pub async fn save_app_draft(&self, env: &str, def: &AppDef, database: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let key = [Value::Text(env.into()), Value::Text(def.name.clone())];
        let exists = tx
            .query_opt(
                &self.sql("SELECT name FROM {s}apps WHERE env = ? AND name = ?"),
                &key,
                &[ColType::Text],
            )
            .await?
            .is_some();
        let (body, editors, now) = (to_json(def)?, to_json(&def.editors)?, now_text());
        if exists {
            tx.execute(
                &self.sql("UPDATE {s}apps SET owner = ?, editors = ?, draft = ?, draft_database = ?, draft_saved_at = ? WHERE env = ? AND name = ?"),
                &[
                    Value::Text(def.owner.clone()),
                    Value::Text(editors),
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
                &self.sql("INSERT INTO {s}apps (env, name, owner, editors, draft, draft_database, draft_saved_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
                &[
                    key[0].clone(),
                    key[1].clone(),
                    Value::Text(def.owner.clone()),
                    Value::Text(editors),
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

    /// Publishes the app's draft as the next version and clears the draft; editing
    /// starts a new one. Returns the version.
    pub async fn publish_app(&self, env: &str, name: &str, by: &str) -> Result<i64> {
        let mut tx = self.pool.begin().await?;
        let key = [Value::Text(env.into()), Value::Text(name.into())];
        let row = tx
            .query_opt(
                &self.sql("SELECT draft, draft_database FROM {s}apps WHERE env = ? AND name = ?"),
                &key,
                &[ColType::Text, ColType::Text],
            )
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("no app '{name}' in '{env}'")))?;
        let Some(draft) = row[0].as_text().map(str::to_string) else {
            return Err(StoreError::Conflict(format!(
                "app '{name}' has no draft to publish"
            )));
        };
        let last = tx
            .query_opt(
                &self.sql("SELECT COALESCE(MAX(version), 0) FROM {s}app_versions WHERE env = ? AND name = ?"),
                &key,
                &[ColType::Int],
            )
            .await?
            .and_then(|r| r[0].as_int())
            .unwrap_or(0);
        let version = last + 1;
        tx.execute(
            &self.sql("INSERT INTO {s}app_versions (env, name, version, definition, database, published_at, published_by) VALUES (?, ?, ?, ?, ?, ?, ?)"),
            &[
                key[0].clone(),
                key[1].clone(),
                Value::Int(version),
                Value::Text(draft),
                Value::Text(text(&row[1])),
                Value::Text(now_text()),
                Value::Text(by.into()),
            ],
        )
        .await?;
        tx.execute(
            &self.sql("UPDATE {s}apps SET draft = NULL, draft_database = NULL, draft_saved_at = NULL WHERE env = ? AND name = ?"),
            &key,
        )
        .await?;
        tx.commit().await?;
        Ok(version)
    }

    /// One published version, or the latest when `version` is `None`.
    pub async fn app_version(
        &self,
        env: &str,
        name: &str,
        version: Option<i64>,
    ) -> Result<Option<AppVersion>> {
        let mut params = vec![Value::Text(env.into()), Value::Text(name.into())];
        let which = match version {
            Some(v) => {
                params.push(Value::Int(v));
                "AND version = ?"
            }
            None => "ORDER BY version DESC LIMIT 1",
        };
        let sql = format!(
            "SELECT version, definition, database, published_at, published_by FROM {{s}}app_versions WHERE env = ? AND name = ? {which}"
        );
        let mut conn = self.pool.conn().await?;
        let row = conn
            .query_opt(
                &self.sql(&sql),
                &params,
                &[
                    ColType::Int,
                    ColType::Text,
                    ColType::Text,
                    ColType::Text,
                    ColType::Text,
                ],
            )
            .await?;
        row.map(|r| {
            Ok(AppVersion {
                version: r[0].as_int().unwrap_or(0),
                bound: Bound {
                    definition: parse_def(&text(&r[1]))?,
                    database: text(&r[2]),
                },
                published_at: text(&r[3]),
                published_by: text(&r[4]),
            })
        })
        .transpose()
    }

    /// An app with its draft and latest version.
    pub async fn app(&self, env: &str, name: &str) -> Result<Option<AppRecord>> {
        let rows = self
            .query(
                "SELECT name, owner, editors, draft, draft_database FROM {s}apps WHERE env = ? AND name = ?",
                &[Value::Text(env.into()), Value::Text(name.into())],
                5,
            )
            .await?;
        let Some(r) = rows.into_iter().next() else {
            return Ok(None);
        };
        Ok(Some(self.app_from(env, &r).await?))
    }

    /// Every app of an environment, by name.
    pub async fn apps(&self, env: &str) -> Result<Vec<AppRecord>> {
        let rows = self
            .query(
                "SELECT name, owner, editors, draft, draft_database FROM {s}apps WHERE env = ? ORDER BY name",
                &[Value::Text(env.into())],
                5,
            )
            .await?;
        let mut out = Vec::new();
        for r in rows {
            out.push(self.app_from(env, &r).await?);
        }
        Ok(out)
    }

    async fn app_from(&self, env: &str, r: &[Value]) -> Result<AppRecord> {
        let name = text(&r[0]);
        let editors: Vec<String> = serde_json::from_str(&text(&r[2]))
            .map_err(|e| StoreError::Corrupt(format!("app editors do not parse: {e}")))?;
        let draft = match r[3].as_text() {
            Some(d) => Some(Bound {
                definition: parse_def(d)?,
                database: text(&r[4]),
            }),
            None => None,
        };
        Ok(AppRecord {
            env: env.into(),
            published: self.app_version(env, &name, None).await?,
            owner: text(&r[1]),
            editors,
            draft,
            name,
        })
    }
}
