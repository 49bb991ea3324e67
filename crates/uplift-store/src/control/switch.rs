//! Step 3's switch-over in the control plane: the environment's production database and
//! schema version, the apps' new published versions, the promoted and archived flows
//! and the upgraded roles change in one transaction, so a crash leaves either the old
//! environment or the new one, never a mixture. Also the write pause record the gate
//! follows (see [`crate::gate`]): a pause is written here before the gate closes, so
//! every server sharing this control plane can see it.

use serde::{Deserialize, Serialize};
use uplift_model::security::{Privileges, SecurityMode};
use uplift_model::{ColType, SchemaVersion, Value};

use super::row::Cols;
use super::{Control, now_text};
use crate::engine::Tx;
use crate::{Result, StoreError};

/// What a switch replaced, recorded in the switch's own transaction so that a revert
/// can put it back whenever it comes (a restart included).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Undo {
    pub from_database: String,
    pub schema_version: SchemaVersion,
    pub security_mode: SecurityMode,
    /// Each app's latest version before the switch: (name, definition JSON, database).
    pub apps: Vec<(String, String, String)>,
    /// Each flow the switch rewrote, as it was: (id, definition JSON, database).
    pub flows: Vec<(String, String, String)>,
    /// Each role's privileges before the switch; a role the switch made is absent.
    pub roles: Vec<(String, Privileges)>,
}

/// Everything the switch changes.
#[derive(Debug, Clone)]
pub struct Switch {
    pub env: String,
    /// The database production is on now; the switch is refused if it is not.
    pub from_database: String,
    pub to_database: String,
    pub schema_version: SchemaVersion,
    pub security_mode: SecurityMode,
    /// Each app's next published version: (app name, definition as JSON).
    pub apps: Vec<(String, String)>,
    /// Each flow rewritten in place: (flow id, name, definition as JSON, database).
    pub flows: Vec<FlowChange>,
    /// Each role's privileges afterwards (keyed by the new entity names); members stay.
    pub roles: Vec<(String, Privileges)>,
    /// Runs still queued for a flow the switch replaces, handed to its successor.
    pub runs: Vec<RunChange>,
    pub by: String,
}

/// A queued run handed to the flow that replaces its own at the switch: it runs that
/// flow's definition on the new production, its trigger's record in the new schema.
/// Applied only if the run is still queued (none starts during a pause).
#[derive(Debug, Clone)]
pub struct RunChange {
    pub run_id: String,
    pub flow_id: String,
    /// The definition (JSON) it runs with.
    pub definition: String,
    /// Its trigger (JSON), the record translated.
    pub trigger: String,
}

/// One flow as the switch leaves it.
#[derive(Debug, Clone)]
pub struct FlowChange {
    pub id: String,
    pub name: String,
    pub owner: String,
    pub editors: String,
    pub state: &'static str,
    pub definition: String,
    pub database: String,
}

/// A write pause under way, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PauseRecord {
    pub env: String,
    pub upgrade: String,
    pub attempt: i64,
    pub started_at: String,
}

impl Control {
    /// Applies `s` in one transaction.
    pub async fn switch(&self, s: &Switch) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        self.record_undo(&mut tx, s).await?;
        let n = tx
            .execute(
                &self.sql("UPDATE {s}environments SET database = ?, schema_version = ?, security_mode = ? WHERE name = ? AND database = ?"),
                &[
                    Value::Text(s.to_database.clone()),
                    Value::Text(s.schema_version.as_str().into()),
                    Value::Text(s.security_mode.as_str().into()),
                    Value::Text(s.env.clone()),
                    Value::Text(s.from_database.clone()),
                ],
            )
            .await?;
        if n != 1 {
            return Err(StoreError::Conflict(format!(
                "'{}' is no longer on database '{}'",
                s.env, s.from_database
            )));
        }
        let now = now_text();
        for (name, definition) in &s.apps {
            let key = [Value::Text(s.env.clone()), Value::Text(name.clone())];
            tx.execute(
                &self.sql("INSERT INTO {s}app_versions (env, name, version, definition, database, published_at, published_by) SELECT ?, ?, COALESCE(MAX(version), 0) + 1, ?, ?, ?, ? FROM {s}app_versions WHERE env = ? AND name = ?"),
                &[
                    key[0].clone(),
                    key[1].clone(),
                    Value::Text(definition.clone()),
                    Value::Text(s.to_database.clone()),
                    Value::Text(now.clone()),
                    Value::Text(s.by.clone()),
                    key[0].clone(),
                    key[1].clone(),
                ],
            )
            .await?;
        }
        for f in &s.flows {
            tx.execute(
                &self.sql("UPDATE {s}flows SET name = ?, owner = ?, editors = ?, state = ?, definition = ?, database = ?, updated_at = ? WHERE env = ? AND id = ?"),
                &[
                    Value::Text(f.name.clone()),
                    Value::Text(f.owner.clone()),
                    Value::Text(f.editors.clone()),
                    Value::Text(f.state.into()),
                    Value::Text(f.definition.clone()),
                    Value::Text(f.database.clone()),
                    Value::Text(now.clone()),
                    Value::Text(s.env.clone()),
                    Value::Text(f.id.clone()),
                ],
            )
            .await?;
        }
        for r in &s.runs {
            tx.execute(
                &self.sql("UPDATE {s}flow_runs SET flow_id = ?, definition = ?, trigger = ? WHERE env = ? AND id = ? AND status = 'queued'"),
                &[
                    Value::Text(r.flow_id.clone()),
                    Value::Text(r.definition.clone()),
                    Value::Text(r.trigger.clone()),
                    Value::Text(s.env.clone()),
                    Value::Text(r.run_id.clone()),
                ],
            )
            .await?;
        }
        for (name, privileges) in &s.roles {
            let json = serde_json::to_string(privileges)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            tx.execute(
                &self.sql("INSERT INTO {s}roles (env, name, privileges) VALUES (?, ?, ?) ON CONFLICT (env, name) DO UPDATE SET privileges = excluded.privileges"),
                &[Value::Text(s.env.clone()), Value::Text(name.clone()), Value::Text(json)],
            )
            .await?;
        }
        tx.commit().await
    }

    /// Reads what `s` is about to replace and records it, inside the switch.
    async fn record_undo(&self, tx: &mut Tx, s: &Switch) -> Result<()> {
        const ENV: Cols = &[
            ("schema_version", ColType::Text),
            ("security_mode", ColType::Text),
        ];
        let env = Value::Text(s.env.clone());
        let rows = self
            .select_on(
                tx,
                ENV,
                "FROM {s}environments WHERE name = ?",
                std::slice::from_ref(&env),
            )
            .await?;
        let row = rows
            .first()
            .ok_or_else(|| StoreError::NotFound(format!("no environment '{}'", s.env)))?;
        let corrupt = |what: &str| StoreError::Corrupt(format!("the environment's {what}"));
        let schema_version = SchemaVersion::parse(&row.text("schema_version")?)
            .ok_or_else(|| corrupt("schema version"))?;
        let security_mode = SecurityMode::parse(&row.text("security_mode")?)
            .ok_or_else(|| corrupt("security mode"))?;
        // One query each for the apps and the flows, whatever their number: this runs
        // inside the write pause.
        const APPS: Cols = &[
            ("v.name", ColType::Text),
            ("v.definition", ColType::Text),
            ("v.database", ColType::Text),
        ];
        let latest = self
            .select_on(
                tx,
                APPS,
                "FROM {s}app_versions v WHERE v.env = ? AND v.version = (SELECT MAX(w.version) FROM {s}app_versions w WHERE w.env = v.env AND w.name = v.name)",
                std::slice::from_ref(&env),
            )
            .await?;
        let mut apps = Vec::new();
        for r in &latest {
            let name = r.text("name")?;
            if s.apps.iter().any(|(n, _)| *n == name) {
                apps.push((name, r.text("definition")?, r.text("database")?));
            }
        }
        const FLOWS: Cols = &[
            ("id", ColType::Text),
            ("definition", ColType::Text),
            ("database", ColType::Text),
        ];
        let mut flows = Vec::new();
        for r in &self
            .select_on(
                tx,
                FLOWS,
                "FROM {s}flows WHERE env = ?",
                std::slice::from_ref(&env),
            )
            .await?
        {
            let id = r.text("id")?;
            if s.flows.iter().any(|f| f.id == id) {
                flows.push((id, r.text("definition")?, r.text("database")?));
            }
        }
        const ROLES: Cols = &[("name", ColType::Text), ("privileges", ColType::Text)];
        let mut roles = Vec::new();
        for r in self
            .select_on(
                tx,
                ROLES,
                "FROM {s}roles WHERE env = ?",
                std::slice::from_ref(&env),
            )
            .await?
        {
            roles.push((
                r.text("name")?,
                r.json("privileges", "a role's privileges")?,
            ));
        }
        let undo = Undo {
            from_database: s.from_database.clone(),
            schema_version,
            security_mode,
            apps,
            flows,
            roles,
        };
        let json = serde_json::to_string(&undo).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        tx.execute(
            &self.sql("INSERT INTO {s}switch_undo (env, to_database, undo, at) VALUES (?, ?, ?, ?) ON CONFLICT (env, to_database) DO UPDATE SET undo = excluded.undo, at = excluded.at"),
            &[env, Value::Text(s.to_database.clone()), Value::Text(json), Value::Text(now_text())],
        )
        .await?;
        Ok(())
    }

    /// What the switch of `env` to `to_database` replaced, if it recorded it.
    pub async fn undo_of(&self, env: &str, to_database: &str) -> Result<Option<Undo>> {
        const COLS: Cols = &[("undo", ColType::Text)];
        let rows = self
            .select(
                COLS,
                "FROM {s}switch_undo WHERE env = ? AND to_database = ?",
                &[Value::Text(env.into()), Value::Text(to_database.into())],
            )
            .await?;
        rows.first()
            .map(|r| r.json("undo", "a switch's undo record"))
            .transpose()
    }

    /// Records a write pause of `env` (one at a time per environment).
    pub async fn begin_pause(&self, p: &PauseRecord) -> Result<()> {
        self.execute(
            "INSERT INTO {s}write_pauses (env, upgrade, attempt, started_at) VALUES (?, ?, ?, ?) ON CONFLICT (env) DO UPDATE SET upgrade = excluded.upgrade, attempt = excluded.attempt, started_at = excluded.started_at",
            &[
                Value::Text(p.env.clone()),
                Value::Text(p.upgrade.clone()),
                Value::Int(p.attempt),
                Value::Text(p.started_at.clone()),
            ],
        )
        .await?;
        Ok(())
    }

    /// Clears `env`'s pause record: writes flow again.
    pub async fn end_pause(&self, env: &str) -> Result<()> {
        self.execute(
            "DELETE FROM {s}write_pauses WHERE env = ?",
            &[Value::Text(env.into())],
        )
        .await?;
        Ok(())
    }

    /// The pause recorded for `env`, if any (one a killed server left is cleared when
    /// its step 3 resumes).
    pub async fn pause(&self, env: &str) -> Result<Option<PauseRecord>> {
        const COLS: Cols = &[
            ("upgrade", uplift_model::ColType::Text),
            ("attempt", uplift_model::ColType::Int),
            ("started_at", uplift_model::ColType::Text),
        ];
        let rows = self
            .select(
                COLS,
                "FROM {s}write_pauses WHERE env = ?",
                &[Value::Text(env.into())],
            )
            .await?;
        rows.first()
            .map(|r| {
                Ok(PauseRecord {
                    env: env.into(),
                    upgrade: r.text("upgrade")?,
                    attempt: r.opt_int("attempt")?.unwrap_or(0),
                    started_at: r.text("started_at")?,
                })
            })
            .transpose()
    }
}
