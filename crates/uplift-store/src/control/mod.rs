//! The control plane: environments, users, API tokens, security roles and their
//! members. One set of statements serves both engines (`?` placeholders, text
//! columns), since none of it is on a hot path that would profit from native types.

use std::collections::BTreeMap;

use serde::Serialize;
use uplift_model::security::{PlatformRole, Privileges, SecurityMode, UserStatus};
use uplift_model::{ColType, SchemaVersion, Value};

mod approvals;
mod apps;
mod captures;
mod flows;
pub mod migrations;
mod plans;
mod row;
mod runs;
mod sessions;
mod switch;

pub use approvals::Approval;
pub use apps::{AppRecord, AppVersion, Bound};
pub use captures::Capture;
pub use flows::FlowRecord;
pub use plans::PlanRecord;
pub use runs::{RunRecord, RunStatus};
pub use sessions::SessionRecord;
pub use switch::{FlowChange, PauseRecord, RunChange, Switch, Undo};

use crate::engine::{Dialect, Pool};
use crate::sql::{ident, placeholders};
use crate::{Result, StoreError};
use row::{Cols, Row};

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

/// A token as listed: never the token, and not its whole hash.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenRecord {
    pub id: String,
    pub user: String,
    pub label: String,
    pub created_at: String,
}

/// How many hex characters of a token's hash make its id (64 bits).
pub const TOKEN_ID_CHARS: usize = 16;

/// Whether `id` could be a token's id: anything else names no token.
fn is_token_id(id: &str) -> bool {
    id.len() == TOKEN_ID_CHARS && id.bytes().all(|b| b.is_ascii_hexdigit())
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

/// Repository over the control-plane tables.
pub struct Control {
    pool: Pool,
    prefix: String,
}

fn now_text() -> String {
    uplift_model::value::format_instant(time::OffsetDateTime::now_utc())
}

fn corrupt(what: &str, v: &str) -> StoreError {
    StoreError::Corrupt(format!("unknown {what} '{v}' in the control plane"))
}

impl Control {
    /// Opens the control plane, creating or migrating its tables (see
    /// [`migrations`]). On PostgreSQL they live in `schema`.
    pub async fn open(pool: Pool, schema: Option<&str>) -> Result<Control> {
        let prefix = schema.map(|s| format!("{}.", ident(s))).unwrap_or_default();
        migrations::migrate(&pool, &prefix, schema).await?;
        Ok(Control { pool, prefix })
    }

    /// The schema version of the control plane (the last migration applied).
    pub async fn schema_version(&self) -> Result<i64> {
        let mut conn = self.pool.conn().await?;
        migrations::current(&mut conn, &self.prefix).await
    }

    pub fn dialect(&self) -> Dialect {
        self.pool.dialect()
    }

    fn sql(&self, s: &str) -> String {
        placeholders(self.dialect(), &s.replace("{s}", &self.prefix))
    }

    /// Runs `SELECT <cols> <rest>` and returns rows read by column name.
    async fn select(&self, cols: Cols, rest: &str, params: &[Value]) -> Result<Vec<Row>> {
        let mut conn = self.pool.conn().await?;
        self.select_on(&mut conn, cols, rest, params).await
    }

    /// [`Control::select`] on a given connection (inside a transaction).
    async fn select_on(
        &self,
        conn: &mut crate::engine::Conn,
        cols: Cols,
        rest: &str,
        params: &[Value],
    ) -> Result<Vec<Row>> {
        let sql = self.sql(&format!("SELECT {} {rest}", row::select_list(cols)));
        let rows = conn.query(&sql, params, &row::types(cols)).await?;
        Ok(rows.into_iter().map(|v| Row::new(cols, v)).collect())
    }

    async fn execute(&self, sql: &str, params: &[Value]) -> Result<u64> {
        let mut conn = self.pool.conn().await?;
        conn.execute(&self.sql(sql), params).await
    }

    // ---- environments

    const ENV_COLS: Cols = &[
        ("name", ColType::Text),
        ("schema_version", ColType::Text),
        ("security_mode", ColType::Text),
        ("created_at", ColType::Text),
        ("database", ColType::Text),
    ];

    fn env_from(r: &Row) -> Result<EnvRecord> {
        let v = r.text("schema_version")?;
        let m = r.text("security_mode")?;
        Ok(EnvRecord {
            name: r.text("name")?,
            schema_version: SchemaVersion::parse(&v)
                .ok_or_else(|| corrupt("schema version", &v))?,
            security_mode: SecurityMode::parse(&m).ok_or_else(|| corrupt("security mode", &m))?,
            created_at: r.text("created_at")?,
            database: r.text("database")?,
        })
    }

    /// Records a new environment; a second record of one name is a conflict.
    pub async fn insert_env(&self, e: &EnvRecord) -> Result<()> {
        let n = self.execute(
            "INSERT INTO {s}environments (name, schema_version, security_mode, created_at, database) VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING",
            &[
                Value::Text(e.name.clone()),
                Value::Text(e.schema_version.as_str().into()),
                Value::Text(e.security_mode.as_str().into()),
                Value::Text(e.created_at.clone()),
                Value::Text(e.database.clone()),
            ],
        )
        .await?;
        if n == 0 {
            return Err(StoreError::Conflict(format!(
                "environment '{}' already exists",
                e.name
            )));
        }
        Ok(())
    }

    pub async fn list_envs(&self) -> Result<Vec<EnvRecord>> {
        self.select(Self::ENV_COLS, "FROM {s}environments ORDER BY name", &[])
            .await?
            .iter()
            .map(Self::env_from)
            .collect()
    }

    pub async fn get_env(&self, name: &str) -> Result<Option<EnvRecord>> {
        let rows = self
            .select(
                Self::ENV_COLS,
                "FROM {s}environments WHERE name = ?",
                &[Value::Text(name.into())],
            )
            .await?;
        rows.first().map(Self::env_from).transpose()
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
        tx.execute(&self.sql("DELETE FROM {s}captures WHERE env = ?"), &p)
            .await?;
        tx.execute(
            &self.sql("DELETE FROM {s}capture_allowed_hosts WHERE env = ?"),
            &p,
        )
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

    const USER_COLS: Cols = &[
        ("email", ColType::Text),
        ("display_name", ColType::Text),
        ("role", ColType::Text),
        ("status", ColType::Text),
        ("created_at", ColType::Text),
    ];

    fn user_from(r: &Row) -> Result<User> {
        let role = r.text("role")?;
        let status = r.text("status")?;
        Ok(User {
            email: r.text("email")?,
            display_name: r.text("display_name")?,
            role: PlatformRole::parse(&role).ok_or_else(|| corrupt("platform role", &role))?,
            status: UserStatus::parse(&status).ok_or_else(|| corrupt("user status", &status))?,
            created_at: r.text("created_at")?,
        })
    }

    /// Adds a user; e-mail addresses are compared without regard to case. The key
    /// decides a race between two adds of one address: one wins, the other conflicts.
    pub async fn insert_user(
        &self,
        email: &str,
        display_name: &str,
        role: PlatformRole,
    ) -> Result<User> {
        let u = User {
            email: email.to_lowercase(),
            display_name: display_name.into(),
            role,
            status: UserStatus::Active,
            created_at: now_text(),
        };
        let n = self.execute(
            "INSERT INTO {s}users (email, display_name, role, status, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (email) DO NOTHING",
            &[
                Value::Text(u.email.clone()),
                Value::Text(u.display_name.clone()),
                Value::Text(role.as_str().into()),
                Value::Text(u.status.as_str().into()),
                Value::Text(u.created_at.clone()),
            ],
        )
        .await?;
        if n == 0 {
            return Err(StoreError::Conflict(format!(
                "user {} already exists",
                u.email
            )));
        }
        Ok(u)
    }

    pub async fn get_user(&self, email: &str) -> Result<Option<User>> {
        let rows = self
            .select(
                Self::USER_COLS,
                "FROM {s}users WHERE email = ?",
                &[Value::Text(email.to_lowercase())],
            )
            .await?;
        rows.first().map(Self::user_from).transpose()
    }

    pub async fn list_users(&self) -> Result<Vec<User>> {
        self.select(Self::USER_COLS, "FROM {s}users ORDER BY email", &[])
            .await?
            .iter()
            .map(Self::user_from)
            .collect()
    }

    /// Changes the given attributes of a user in one statement; `None` keeps one.
    pub async fn update_user(
        &self,
        email: &str,
        status: Option<UserStatus>,
        role: Option<PlatformRole>,
        display_name: Option<&str>,
    ) -> Result<User> {
        let or_keep = |v: Option<&str>| v.map_or(Value::Null, |v| Value::Text(v.into()));
        self.execute(
            "UPDATE {s}users SET status = COALESCE(?, status), role = COALESCE(?, role), display_name = COALESCE(?, display_name) WHERE email = ?",
            &[
                or_keep(status.map(UserStatus::as_str)),
                or_keep(role.map(PlatformRole::as_str)),
                or_keep(display_name),
                Value::Text(email.to_lowercase()),
            ],
        )
        .await?;
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

    const TOKEN_COLS: Cols = &[
        ("hash", ColType::Text),
        ("user_email", ColType::Text),
        ("label", ColType::Text),
        ("created_at", ColType::Text),
    ];

    fn token_from(r: &Row) -> Result<TokenRecord> {
        Ok(TokenRecord {
            id: r.text("hash")?.chars().take(TOKEN_ID_CHARS).collect(),
            user: r.text("user_email")?,
            label: r.text("label")?,
            created_at: r.text("created_at")?,
        })
    }

    /// Tokens, newest first: every user's, or one user's. A token's id is the start
    /// of its hash: enough to name it, nothing to authenticate with.
    pub async fn tokens(&self, user: Option<&str>) -> Result<Vec<TokenRecord>> {
        let (rest, params) = match user {
            Some(u) => (
                "FROM {s}tokens WHERE user_email = ? ORDER BY created_at DESC, hash",
                vec![Value::Text(u.to_lowercase())],
            ),
            None => ("FROM {s}tokens ORDER BY created_at DESC, hash", vec![]),
        };
        self.select(Self::TOKEN_COLS, rest, &params)
            .await?
            .iter()
            .map(Self::token_from)
            .collect()
    }

    /// The token whose id is `id`.
    pub async fn token(&self, id: &str) -> Result<Option<TokenRecord>> {
        if !is_token_id(id) {
            return Ok(None);
        }
        let rows = self
            .select(
                Self::TOKEN_COLS,
                &format!("FROM {{s}}tokens WHERE substr(hash, 1, {TOKEN_ID_CHARS}) = ?"),
                &[Value::Text(id.to_lowercase())],
            )
            .await?;
        rows.first().map(Self::token_from).transpose()
    }

    /// Removes the token whose id is `id`; false when there is none.
    pub async fn delete_token(&self, id: &str) -> Result<bool> {
        if !is_token_id(id) {
            return Ok(false);
        }
        let n = self
            .execute(
                &format!("DELETE FROM {{s}}tokens WHERE substr(hash, 1, {TOKEN_ID_CHARS}) = ?"),
                &[Value::Text(id.to_lowercase())],
            )
            .await?;
        Ok(n > 0)
    }

    pub async fn user_by_token_hash(&self, hash: &str) -> Result<Option<User>> {
        const COLS: Cols = &[
            ("u.email", ColType::Text),
            ("u.display_name", ColType::Text),
            ("u.role", ColType::Text),
            ("u.status", ColType::Text),
            ("u.created_at", ColType::Text),
        ];
        let rows = self
            .select(
                COLS,
                "FROM {s}tokens t JOIN {s}users u ON u.email = t.user_email WHERE t.hash = ?",
                &[Value::Text(hash.into())],
            )
            .await?;
        rows.first().map(Self::user_from).transpose()
    }

    // ---- roles

    /// Creates a role or replaces its privileges, in one statement.
    pub async fn put_role(&self, env: &str, name: &str, privileges: &Privileges) -> Result<()> {
        let json =
            serde_json::to_string(privileges).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.execute(
            "INSERT INTO {s}roles (env, name, privileges) VALUES (?, ?, ?) ON CONFLICT (env, name) DO UPDATE SET privileges = excluded.privileges",
            &[Value::Text(env.into()), Value::Text(name.into()), Value::Text(json)],
        )
        .await?;
        Ok(())
    }

    const ROLE_COLS: Cols = &[
        ("r.env", ColType::Text),
        ("r.name", ColType::Text),
        ("r.privileges", ColType::Text),
    ];

    fn role_from(r: &Row) -> Result<Role> {
        Ok(Role {
            env: r.text("env")?,
            name: r.text("name")?,
            privileges: r.json("privileges", "role privileges")?,
        })
    }

    pub async fn list_roles(&self, env: &str) -> Result<Vec<Role>> {
        self.select(
            Self::ROLE_COLS,
            "FROM {s}roles r WHERE r.env = ? ORDER BY r.name",
            &[Value::Text(env.into())],
        )
        .await?
        .iter()
        .map(Self::role_from)
        .collect()
    }

    pub async fn get_role(&self, env: &str, name: &str) -> Result<Option<Role>> {
        let rows = self
            .select(
                Self::ROLE_COLS,
                "FROM {s}roles r WHERE r.env = ? AND r.name = ?",
                &[Value::Text(env.into()), Value::Text(name.into())],
            )
            .await?;
        rows.first().map(Self::role_from).transpose()
    }

    /// The roles a user holds in an environment.
    pub async fn roles_of(&self, env: &str, email: &str) -> Result<Vec<Role>> {
        self.select(
            Self::ROLE_COLS,
            "FROM {s}role_members m JOIN {s}roles r ON r.env = m.env AND r.name = m.role WHERE m.env = ? AND m.user_email = ? ORDER BY r.name",
            &[Value::Text(env.into()), Value::Text(email.to_lowercase())],
        )
        .await?
        .iter()
        .map(Self::role_from)
        .collect()
    }

    /// Assigns a role; assigning it again is a no-op.
    pub async fn add_member(&self, env: &str, role: &str, email: &str) -> Result<()> {
        self.execute(
            "INSERT INTO {s}role_members (env, role, user_email) VALUES (?, ?, ?) ON CONFLICT (env, role, user_email) DO NOTHING",
            &[
                Value::Text(env.into()),
                Value::Text(role.into()),
                Value::Text(email.to_lowercase()),
            ],
        )
        .await?;
        Ok(())
    }

    pub async fn list_members(&self, env: &str) -> Result<Vec<Membership>> {
        const COLS: Cols = &[("role", ColType::Text), ("user_email", ColType::Text)];
        self.select(
            COLS,
            "FROM {s}role_members WHERE env = ? ORDER BY role, user_email",
            &[Value::Text(env.into())],
        )
        .await?
        .iter()
        .map(|r| {
            Ok(Membership {
                role: r.text("role")?,
                user: r.text("user_email")?,
            })
        })
        .collect()
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
        self.select(
            &[("id", ColType::Text)],
            "FROM {s}upgrades WHERE env = ? ORDER BY created_at, id",
            &[Value::Text(env.into())],
        )
        .await?
        .iter()
        .map(|r| r.text("id"))
        .collect()
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
    /// The events of an upgrade after sequence number `seq`, with theirs, in order.
    pub async fn events_after(&self, upgrade: &str, seq: i64) -> Result<Vec<(i64, String)>> {
        self.select(
            &[("seq", ColType::Int), ("event", ColType::Text)],
            "FROM {s}upgrade_events WHERE upgrade_id = ? AND seq > ? ORDER BY seq",
            &[Value::Text(upgrade.into()), Value::Int(seq)],
        )
        .await?
        .iter()
        .map(|r| Ok((r.opt_int("seq")?.unwrap_or(0), r.text("event")?)))
        .collect()
    }

    pub async fn events(&self, upgrade: &str) -> Result<Vec<String>> {
        self.select(
            &[("event", ColType::Text)],
            "FROM {s}upgrade_events WHERE upgrade_id = ? ORDER BY seq",
            &[Value::Text(upgrade.into())],
        )
        .await?
        .iter()
        .map(|r| r.text("event"))
        .collect()
    }
}
