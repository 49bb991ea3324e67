//! The control plane: environments, users, API tokens, security roles and their
//! members. One set of statements serves both engines (`?` placeholders, text
//! columns), since none of it is on a hot path that would profit from native types.

use std::collections::BTreeMap;

use serde::Serialize;
use uplift_model::security::{PlatformRole, Privileges, SecurityMode, UserStatus};
use uplift_model::{ColType, SchemaVersion, Value};

mod approvals;
mod apps;
mod flows;
mod runs;

pub use approvals::Approval;
pub use apps::{AppRecord, AppVersion, Bound};
pub use flows::FlowRecord;
pub use runs::{RunRecord, RunStatus};

use crate::engine::{Dialect, Pool};
use crate::sql::{ident, placeholders};
use crate::{Result, StoreError};

/// An environment as the control plane records it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EnvRecord {
    pub name: String,
    pub schema_version: SchemaVersion,
    pub security_mode: SecurityMode,
    pub created_at: String,
    /// Which database serves as production (the pointer an upgrade switches).
    pub database: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct User {
    pub email: String,
    pub display_name: String,
    pub role: PlatformRole,
    pub status: UserStatus,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Role {
    pub env: String,
    pub name: String,
    pub privileges: Privileges,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Membership {
    pub role: String,
    pub user: String,
}

const MIGRATION: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS {s}environments (name TEXT NOT NULL PRIMARY KEY, schema_version TEXT NOT NULL, security_mode TEXT NOT NULL, created_at TEXT NOT NULL, database TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS {s}users (email TEXT NOT NULL PRIMARY KEY, display_name TEXT NOT NULL, role TEXT NOT NULL, status TEXT NOT NULL, created_at TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS {s}tokens (hash TEXT NOT NULL PRIMARY KEY, user_email TEXT NOT NULL REFERENCES {s}users(email), label TEXT NOT NULL, created_at TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS {s}roles (env TEXT NOT NULL REFERENCES {s}environments(name) ON DELETE CASCADE, name TEXT NOT NULL, privileges TEXT NOT NULL, PRIMARY KEY (env, name))",
    "CREATE TABLE IF NOT EXISTS {s}upgrades (id TEXT NOT NULL PRIMARY KEY, env TEXT NOT NULL, created_at TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS {s}upgrade_events (upgrade_id TEXT NOT NULL REFERENCES {s}upgrades(id), seq INTEGER NOT NULL, at TEXT NOT NULL, event TEXT NOT NULL, PRIMARY KEY (upgrade_id, seq))",
    "CREATE TABLE IF NOT EXISTS {s}role_members (env TEXT NOT NULL, role TEXT NOT NULL, user_email TEXT NOT NULL REFERENCES {s}users(email), PRIMARY KEY (env, role, user_email), FOREIGN KEY (env, role) REFERENCES {s}roles(env, name) ON DELETE CASCADE)",
];

/// Repository over the control-plane tables.
pub struct Control {
    pool: Pool,
    prefix: String,
}

fn now_text() -> String {
    uplift_model::value::format_instant(time::OffsetDateTime::now_utc())
}

fn text(v: &Value) -> String {
    v.as_text().unwrap_or_default().to_string()
}

fn corrupt(what: &str, v: &str) -> StoreError {
    StoreError::Corrupt(format!("unknown {what} '{v}' in the control plane"))
}

impl Control {
    /// Opens the control plane, creating its tables on first use. On PostgreSQL they
    /// live in `schema`.
    pub async fn open(pool: Pool, schema: Option<&str>) -> Result<Control> {
        let prefix = schema.map(|s| format!("{}.", ident(s))).unwrap_or_default();
        let mut conn = pool.conn().await?;
        if let Some(s) = schema {
            conn.batch(&format!("CREATE SCHEMA IF NOT EXISTS {}", ident(s)))
                .await?;
        }
        for stmt in MIGRATION
            .iter()
            .chain(apps::MIGRATION)
            .chain(flows::MIGRATION)
            .chain(runs::MIGRATION)
            .chain(approvals::MIGRATION)
        {
            conn.batch(&stmt.replace("{s}", &prefix)).await?;
        }
        // Columns added after a table was first made: added to tables that lack them.
        for (table, column, ty) in runs::ADDED_COLUMNS {
            let present = match pool.dialect() {
                Dialect::Sqlite => !conn
                    .query(
                        "SELECT name FROM pragma_table_info(?) WHERE name = ?",
                        &[Value::Text((*table).into()), Value::Text((*column).into())],
                        &[ColType::Text],
                    )
                    .await?
                    .is_empty(),
                Dialect::Postgres => !conn
                    .query(
                        "SELECT column_name::text FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 AND column_name = $3",
                        &[
                            Value::Text(schema.unwrap_or("public").into()),
                            Value::Text((*table).into()),
                            Value::Text((*column).into()),
                        ],
                        &[ColType::Text],
                    )
                    .await?
                    .is_empty(),
            };
            if !present {
                conn.batch(&format!(
                    "ALTER TABLE {prefix}{table} ADD COLUMN {column} {ty}"
                ))
                .await?;
            }
        }
        Ok(Control { pool, prefix })
    }

    pub fn dialect(&self) -> Dialect {
        self.pool.dialect()
    }

    fn sql(&self, s: &str) -> String {
        placeholders(self.dialect(), &s.replace("{s}", &self.prefix))
    }

    async fn query(&self, sql: &str, params: &[Value], n: usize) -> Result<Vec<Vec<Value>>> {
        let mut conn = self.pool.conn().await?;
        conn.query(&self.sql(sql), params, &vec![ColType::Text; n])
            .await
    }

    async fn execute(&self, sql: &str, params: &[Value]) -> Result<u64> {
        let mut conn = self.pool.conn().await?;
        conn.execute(&self.sql(sql), params).await
    }

    // ---- environments

    fn env_from(row: &[Value]) -> Result<EnvRecord> {
        let v = text(&row[1]);
        let m = text(&row[2]);
        Ok(EnvRecord {
            name: text(&row[0]),
            schema_version: SchemaVersion::parse(&v)
                .ok_or_else(|| corrupt("schema version", &v))?,
            security_mode: SecurityMode::parse(&m).ok_or_else(|| corrupt("security mode", &m))?,
            created_at: text(&row[3]),
            database: text(&row[4]),
        })
    }

    pub async fn insert_env(&self, e: &EnvRecord) -> Result<()> {
        self.execute(
            "INSERT INTO {s}environments (name, schema_version, security_mode, created_at, database) VALUES (?, ?, ?, ?, ?)",
            &[
                Value::Text(e.name.clone()),
                Value::Text(e.schema_version.as_str().into()),
                Value::Text(e.security_mode.as_str().into()),
                Value::Text(e.created_at.clone()),
                Value::Text(e.database.clone()),
            ],
        )
        .await?;
        Ok(())
    }

    pub async fn list_envs(&self) -> Result<Vec<EnvRecord>> {
        self.query("SELECT name, schema_version, security_mode, created_at, database FROM {s}environments ORDER BY name", &[], 5)
            .await?
            .iter()
            .map(|r| Self::env_from(r))
            .collect()
    }

    pub async fn get_env(&self, name: &str) -> Result<Option<EnvRecord>> {
        let rows = self
            .query(
                "SELECT name, schema_version, security_mode, created_at, database FROM {s}environments WHERE name = ?",
                &[Value::Text(name.into())],
                5,
            )
            .await?;
        rows.first().map(|r| Self::env_from(r)).transpose()
    }

    /// Removes an environment with its roles and memberships.
    pub async fn delete_env(&self, name: &str) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let p = [Value::Text(name.into())];
        tx.execute(&self.sql("DELETE FROM {s}role_members WHERE env = ?"), &p)
            .await?;
        tx.execute(&self.sql("DELETE FROM {s}roles WHERE env = ?"), &p)
            .await?;
        tx.execute(&self.sql("DELETE FROM {s}app_versions WHERE env = ?"), &p)
            .await?;
        tx.execute(&self.sql("DELETE FROM {s}apps WHERE env = ?"), &p)
            .await?;
        tx.execute(&self.sql("DELETE FROM {s}flows WHERE env = ?"), &p)
            .await?;
        tx.execute(&self.sql("DELETE FROM {s}flow_runs WHERE env = ?"), &p)
            .await?;
        tx.execute(&self.sql("DELETE FROM {s}approvals WHERE env = ?"), &p)
            .await?;
        let n = tx
            .execute(&self.sql("DELETE FROM {s}environments WHERE name = ?"), &p)
            .await?;
        tx.commit().await?;
        Ok(n > 0)
    }

    // ---- users

    fn user_from(row: &[Value]) -> Result<User> {
        let r = text(&row[2]);
        let s = text(&row[3]);
        Ok(User {
            email: text(&row[0]),
            display_name: text(&row[1]),
            role: PlatformRole::parse(&r).ok_or_else(|| corrupt("platform role", &r))?,
            status: UserStatus::parse(&s).ok_or_else(|| corrupt("user status", &s))?,
            created_at: text(&row[4]),
        })
    }

    /// Adds a user; e-mail addresses are compared without regard to case.
    pub async fn insert_user(
        &self,
        email: &str,
        display_name: &str,
        role: PlatformRole,
    ) -> Result<User> {
        let email = email.to_lowercase();
        if self.get_user(&email).await?.is_some() {
            return Err(StoreError::Conflict(format!("user {email} already exists")));
        }
        let u = User {
            email,
            display_name: display_name.into(),
            role,
            status: UserStatus::Active,
            created_at: now_text(),
        };
        self.execute(
            "INSERT INTO {s}users (email, display_name, role, status, created_at) VALUES (?, ?, ?, ?, ?)",
            &[
                Value::Text(u.email.clone()),
                Value::Text(u.display_name.clone()),
                Value::Text(role.as_str().into()),
                Value::Text(u.status.as_str().into()),
                Value::Text(u.created_at.clone()),
            ],
        )
        .await?;
        Ok(u)
    }

    pub async fn get_user(&self, email: &str) -> Result<Option<User>> {
        let rows = self
            .query(
                "SELECT email, display_name, role, status, created_at FROM {s}users WHERE email = ?",
                &[Value::Text(email.to_lowercase())],
                5,
            )
            .await?;
        rows.first().map(|r| Self::user_from(r)).transpose()
    }

    pub async fn list_users(&self) -> Result<Vec<User>> {
        self.query(
            "SELECT email, display_name, role, status, created_at FROM {s}users ORDER BY email",
            &[],
            5,
        )
        .await?
        .iter()
        .map(|r| Self::user_from(r))
        .collect()
    }

    pub async fn update_user(
        &self,
        email: &str,
        status: Option<UserStatus>,
        role: Option<PlatformRole>,
        display_name: Option<&str>,
    ) -> Result<User> {
        let e = Value::Text(email.to_lowercase());
        if let Some(s) = status {
            self.execute(
                "UPDATE {s}users SET status = ? WHERE email = ?",
                &[Value::Text(s.as_str().into()), e.clone()],
            )
            .await?;
        }
        if let Some(r) = role {
            self.execute(
                "UPDATE {s}users SET role = ? WHERE email = ?",
                &[Value::Text(r.as_str().into()), e.clone()],
            )
            .await?;
        }
        if let Some(d) = display_name {
            self.execute(
                "UPDATE {s}users SET display_name = ? WHERE email = ?",
                &[Value::Text(d.into()), e.clone()],
            )
            .await?;
        }
        self.get_user(email)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("no user {email}")))
    }

    pub async fn count_users(&self) -> Result<u64> {
        let mut conn = self.pool.conn().await?;
        let row = conn
            .query_opt(
                &self.sql("SELECT COUNT(*) FROM {s}users"),
                &[],
                &[ColType::Int],
            )
            .await?;
        Ok(row.and_then(|r| r[0].as_int()).unwrap_or(0) as u64)
    }

    // ---- tokens

    /// Records a token by its hash; the token itself is never stored.
    pub async fn insert_token(&self, email: &str, hash: &str, label: &str) -> Result<()> {
        self.execute(
            "INSERT INTO {s}tokens (hash, user_email, label, created_at) VALUES (?, ?, ?, ?)",
            &[
                Value::Text(hash.into()),
                Value::Text(email.to_lowercase()),
                Value::Text(label.into()),
                Value::Text(now_text()),
            ],
        )
        .await?;
        Ok(())
    }

    pub async fn user_by_token_hash(&self, hash: &str) -> Result<Option<User>> {
        let rows = self
            .query(
                "SELECT u.email, u.display_name, u.role, u.status, u.created_at FROM {s}tokens t JOIN {s}users u ON u.email = t.user_email WHERE t.hash = ?",
                &[Value::Text(hash.into())],
                5,
            )
            .await?;
        rows.first().map(|r| Self::user_from(r)).transpose()
    }

    // ---- roles

    pub async fn put_role(&self, env: &str, name: &str, privileges: &Privileges) -> Result<()> {
        let json =
            serde_json::to_string(privileges).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut tx = self.pool.begin().await?;
        let p = [Value::Text(env.into()), Value::Text(name.into())];
        let exists = tx
            .query_opt(
                &self.sql("SELECT name FROM {s}roles WHERE env = ? AND name = ?"),
                &p,
                &[ColType::Text],
            )
            .await?
            .is_some();
        let sql = if exists {
            "UPDATE {s}roles SET privileges = ? WHERE env = ? AND name = ?"
        } else {
            "INSERT INTO {s}roles (privileges, env, name) VALUES (?, ?, ?)"
        };
        tx.execute(
            &self.sql(sql),
            &[Value::Text(json), p[0].clone(), p[1].clone()],
        )
        .await?;
        tx.commit().await
    }

    fn role_from(row: &[Value]) -> Result<Role> {
        let privileges: Privileges = serde_json::from_str(&text(&row[2]))
            .map_err(|e| StoreError::Corrupt(format!("role privileges: {e}")))?;
        Ok(Role {
            env: text(&row[0]),
            name: text(&row[1]),
            privileges,
        })
    }

    pub async fn list_roles(&self, env: &str) -> Result<Vec<Role>> {
        self.query(
            "SELECT env, name, privileges FROM {s}roles WHERE env = ? ORDER BY name",
            &[Value::Text(env.into())],
            3,
        )
        .await?
        .iter()
        .map(|r| Self::role_from(r))
        .collect()
    }

    pub async fn get_role(&self, env: &str, name: &str) -> Result<Option<Role>> {
        let rows = self
            .query(
                "SELECT env, name, privileges FROM {s}roles WHERE env = ? AND name = ?",
                &[Value::Text(env.into()), Value::Text(name.into())],
                3,
            )
            .await?;
        rows.first().map(|r| Self::role_from(r)).transpose()
    }

    /// The roles a user holds in an environment.
    pub async fn roles_of(&self, env: &str, email: &str) -> Result<Vec<Role>> {
        self.query(
            "SELECT r.env, r.name, r.privileges FROM {s}role_members m JOIN {s}roles r ON r.env = m.env AND r.name = m.role WHERE m.env = ? AND m.user_email = ? ORDER BY r.name",
            &[Value::Text(env.into()), Value::Text(email.to_lowercase())],
            3,
        )
        .await?
        .iter()
        .map(|r| Self::role_from(r))
        .collect()
    }

    /// Assigns a role; assigning it again is a no-op.
    pub async fn add_member(&self, env: &str, role: &str, email: &str) -> Result<()> {
        let p = [
            Value::Text(env.into()),
            Value::Text(role.into()),
            Value::Text(email.to_lowercase()),
        ];
        let mut tx = self.pool.begin().await?;
        let exists = tx
            .query_opt(&self.sql("SELECT role FROM {s}role_members WHERE env = ? AND role = ? AND user_email = ?"), &p, &[ColType::Text])
            .await?
            .is_some();
        if !exists {
            tx.execute(
                &self.sql("INSERT INTO {s}role_members (env, role, user_email) VALUES (?, ?, ?)"),
                &p,
            )
            .await?;
        }
        tx.commit().await
    }

    pub async fn list_members(&self, env: &str) -> Result<Vec<Membership>> {
        Ok(self
            .query("SELECT role, user_email FROM {s}role_members WHERE env = ? ORDER BY role, user_email", &[Value::Text(env.into())], 2)
            .await?
            .iter()
            .map(|r| Membership { role: text(&r[0]), user: text(&r[1]) })
            .collect())
    }

    /// Every role with its members, for reports.
    pub async fn roles_with_members(&self, env: &str) -> Result<BTreeMap<String, Vec<String>>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for r in self.list_roles(env).await? {
            out.entry(r.name).or_default();
        }
        for m in self.list_members(env).await? {
            out.entry(m.role).or_default().push(m.user);
        }
        Ok(out)
    }

    // ---- upgrades: an append-only event log per upgrade

    /// Registers a new upgrade of `env`.
    pub async fn insert_upgrade(&self, id: &str, env: &str) -> Result<()> {
        self.execute(
            "INSERT INTO {s}upgrades (id, env, created_at) VALUES (?, ?, ?)",
            &[
                Value::Text(id.into()),
                Value::Text(env.into()),
                Value::Text(now_text()),
            ],
        )
        .await?;
        Ok(())
    }

    /// The upgrades of an environment, oldest first.
    pub async fn upgrades(&self, env: &str) -> Result<Vec<String>> {
        Ok(self
            .query(
                "SELECT id FROM {s}upgrades WHERE env = ? ORDER BY created_at, id",
                &[Value::Text(env.into())],
                1,
            )
            .await?
            .iter()
            .map(|r| text(&r[0]))
            .collect())
    }

    /// Appends an event (JSON) to an upgrade's log and returns its sequence number.
    /// The number is taken inside the writing transaction, so concurrent appends
    /// cannot share one.
    pub async fn append_event(&self, upgrade: &str, at: &str, event: &str) -> Result<i64> {
        let mut tx = self.pool.begin().await?;
        let row = tx
            .query_opt(
                &self.sql(
                    "SELECT COALESCE(MAX(seq), 0) + 1 FROM {s}upgrade_events WHERE upgrade_id = ?",
                ),
                &[Value::Text(upgrade.into())],
                &[ColType::Int],
            )
            .await?;
        let seq = row.and_then(|r| r[0].as_int()).unwrap_or(1);
        tx.execute(
            &self.sql(
                "INSERT INTO {s}upgrade_events (upgrade_id, seq, at, event) VALUES (?, ?, ?, ?)",
            ),
            &[
                Value::Text(upgrade.into()),
                Value::Int(seq),
                Value::Text(at.into()),
                Value::Text(event.into()),
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(seq)
    }

    /// An upgrade's events (JSON), in order.
    pub async fn events(&self, upgrade: &str) -> Result<Vec<String>> {
        Ok(self
            .query(
                "SELECT event FROM {s}upgrade_events WHERE upgrade_id = ? ORDER BY seq",
                &[Value::Text(upgrade.into())],
                1,
            )
            .await?
            .iter()
            .map(|r| text(&r[0]))
            .collect())
    }
}
