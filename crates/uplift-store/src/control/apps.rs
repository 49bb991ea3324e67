//! Apps in the control plane: one row per app with its editable draft, and one row per
//! published version, immutable once written. Drafts and versions each record the
//! database they are bound to, so step 2 can bind copies to a test database.

use serde::Serialize;
use uplift_model::app::AppDef;
use uplift_model::{ColType, Value};

use super::row::{Cols, Row};
use super::{Control, now_text};
use crate::{Result, StoreError};

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
    /// When the draft was last saved (RFC 3339, UTC).
    pub draft_saved_at: Option<String>,
    pub published: Option<AppVersion>,
    /// When its published version was last played (RFC 3339, UTC, to the
    /// [`Control::app_used`] caller's granularity), or `None` if never.
    pub last_used_at: Option<String>,
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
    /// Saves `def` as the draft of its app (creating the app), bound to `database`,
    /// in one statement. The owner and editors follow the draft.
    pub async fn save_app_draft(&self, env: &str, def: &AppDef, database: &str) -> Result<()> {
        let now = now_text();
        self.execute(
            "INSERT INTO {s}apps (env, name, owner, editors, draft, draft_database, draft_saved_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (env, name) DO UPDATE SET owner = excluded.owner, editors = excluded.editors, draft = excluded.draft, draft_database = excluded.draft_database, draft_saved_at = excluded.draft_saved_at",
            &[
                Value::Text(env.into()),
                Value::Text(def.name.clone()),
                Value::Text(def.owner.clone()),
                Value::Text(to_json(&def.editors)?),
                Value::Text(to_json(def)?),
                Value::Text(database.into()),
                Value::Text(now.clone()),
                Value::Text(now),
            ],
        )
        .await?;
        Ok(())
    }

    /// Publishes the app's draft as the next version and clears the draft; editing
    /// starts a new one. Returns the version.
    pub async fn publish_app(&self, env: &str, name: &str, by: &str) -> Result<i64> {
        let mut tx = self.pool.begin().await?;
        let key = [Value::Text(env.into()), Value::Text(name.into())];
        const COLS: Cols = &[("draft", ColType::Text), ("draft_database", ColType::Text)];
        let row = self
            .select_on(
                &mut tx,
                COLS,
                "FROM {s}apps WHERE env = ? AND name = ?",
                &key,
            )
            .await?
            .pop()
            .ok_or_else(|| StoreError::NotFound(format!("no app '{name}' in '{env}'")))?;
        let Some(draft) = row.opt_text("draft")? else {
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
                Value::Text(row.text("draft_database")?),
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

    /// Records that the app was played now. An app that does not exist (deleted while
    /// it played) is no error: there is nothing left to record it on.
    pub async fn app_used(&self, env: &str, name: &str) -> Result<()> {
        self.execute(
            "UPDATE {s}apps SET last_used_at = ? WHERE env = ? AND name = ?",
            &[
                Value::Text(now_text()),
                Value::Text(env.into()),
                Value::Text(name.into()),
            ],
        )
        .await?;
        Ok(())
    }

    /// One published version, or the latest when `version` is `None`.
    pub async fn app_version(
        &self,
        env: &str,
        name: &str,
        version: Option<i64>,
    ) -> Result<Option<AppVersion>> {
        const COLS: Cols = &[
            ("version", ColType::Int),
            ("definition", ColType::Text),
            ("database", ColType::Text),
            ("published_at", ColType::Text),
            ("published_by", ColType::Text),
        ];
        let mut params = vec![Value::Text(env.into()), Value::Text(name.into())];
        let which = match version {
            Some(v) => {
                params.push(Value::Int(v));
                "AND version = ?"
            }
            None => "ORDER BY version DESC LIMIT 1",
        };
        let rest = format!("FROM {{s}}app_versions WHERE env = ? AND name = ? {which}");
        let rows = self.select(COLS, &rest, &params).await?;
        rows.first().map(|r| version_from(r, "")).transpose()
    }

    /// An app with its draft and latest version.
    pub async fn app(&self, env: &str, name: &str) -> Result<Option<AppRecord>> {
        let rows = self
            .select(
                APP_COLS,
                &format!("{APP_FROM} WHERE a.env = ? AND a.name = ?"),
                &[Value::Text(env.into()), Value::Text(name.into())],
            )
            .await?;
        rows.first().map(|r| app_from(env, r)).transpose()
    }

    /// Every app of an environment, by name, each with its latest version: one query.
    pub async fn apps(&self, env: &str) -> Result<Vec<AppRecord>> {
        self.select(
            APP_COLS,
            &format!("{APP_FROM} WHERE a.env = ? ORDER BY a.name"),
            &[Value::Text(env.into())],
        )
        .await?
        .iter()
        .map(|r| app_from(env, r))
        .collect()
    }
}

/// An app's row joined with its latest version, if it has one.
const APP_COLS: Cols = &[
    ("a.name", ColType::Text),
    ("a.owner", ColType::Text),
    ("a.editors", ColType::Text),
    ("a.draft", ColType::Text),
    ("a.draft_database", ColType::Text),
    ("a.draft_saved_at", ColType::Text),
    ("a.last_used_at", ColType::Text),
    ("v.version AS v_version", ColType::Int),
    ("v.definition AS v_definition", ColType::Text),
    ("v.database AS v_database", ColType::Text),
    ("v.published_at AS v_published_at", ColType::Text),
    ("v.published_by AS v_published_by", ColType::Text),
];

const APP_FROM: &str = "FROM {s}apps a LEFT JOIN {s}app_versions v ON v.env = a.env AND v.name = a.name \
     AND v.version = (SELECT MAX(m.version) FROM {s}app_versions m WHERE m.env = a.env AND m.name = a.name)";

/// A published version from columns named `<prefix>version`, `<prefix>definition`…;
/// `None` columns (no version joined) are the caller's to check.
fn version_from(r: &Row, prefix: &str) -> Result<AppVersion> {
    let col = |c: &str| format!("{prefix}{c}");
    Ok(AppVersion {
        version: r.opt_int(&col("version"))?.unwrap_or(0),
        bound: Bound {
            definition: parse_def(&r.text(&col("definition"))?)?,
            database: r.text(&col("database"))?,
        },
        published_at: r.text(&col("published_at"))?,
        published_by: r.text(&col("published_by"))?,
    })
}

fn app_from(env: &str, r: &Row) -> Result<AppRecord> {
    let draft = match r.opt_text("draft")? {
        Some(d) => Some(Bound {
            definition: parse_def(&d)?,
            database: r.text("draft_database")?,
        }),
        None => None,
    };
    let published = match r.opt_int("v_version")? {
        Some(_) => Some(version_from(r, "v_")?),
        None => None,
    };
    Ok(AppRecord {
        env: env.into(),
        name: r.text("name")?,
        owner: r.text("owner")?,
        editors: r.json("editors", "app editors")?,
        draft,
        draft_saved_at: r.opt_text("draft_saved_at")?,
        published,
        last_used_at: r.opt_text("last_used_at")?,
    })
}
