//! The control plane's schema, as numbered migrations. Each is applied once, in its
//! own transaction (both engines run DDL transactionally), and recorded in
//! `schema_migrations`; a control plane written by a newer build is refused rather
//! than half-understood. A migration, once released, is never edited: a change is a
//! new migration at the end of the list.
//!
//! Migration 1 is the control plane as it was before it was versioned. Its statements
//! say `IF NOT EXISTS`, so a control plane made by that code adopts it: its tables
//! stay as they are, the later migrations bring it up to date.

use uplift_model::{ColType, Value};

use crate::engine::{Conn, Dialect, Pool, Tx};
use crate::{Result, StoreError};

/// One change of the schema.
pub(super) enum Step {
    Sql(&'static str),
    /// `ALTER TABLE … ADD COLUMN`, skipped when the column is there (a control plane
    /// made before versioning added it on open).
    AddColumn {
        table: &'static str,
        column: &'static str,
        ty: &'static str,
    },
}

pub(super) struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub steps: &'static [Step],
}

use Step::{AddColumn, Sql};

/// Every migration, in order; `{s}` is the schema prefix.
pub(super) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "environments, users, tokens, roles, upgrades, apps, flows, runs, approvals",
        steps: &[
            Sql(
                "CREATE TABLE IF NOT EXISTS {s}environments (name TEXT NOT NULL PRIMARY KEY, schema_version TEXT NOT NULL, security_mode TEXT NOT NULL, created_at TEXT NOT NULL, database TEXT NOT NULL)",
            ),
            Sql(
                "CREATE TABLE IF NOT EXISTS {s}users (email TEXT NOT NULL PRIMARY KEY, display_name TEXT NOT NULL, role TEXT NOT NULL, status TEXT NOT NULL, created_at TEXT NOT NULL)",
            ),
            Sql(
                "CREATE TABLE IF NOT EXISTS {s}tokens (hash TEXT NOT NULL PRIMARY KEY, user_email TEXT NOT NULL REFERENCES {s}users(email), label TEXT NOT NULL, created_at TEXT NOT NULL)",
            ),
            Sql(
                "CREATE TABLE IF NOT EXISTS {s}roles (env TEXT NOT NULL REFERENCES {s}environments(name) ON DELETE CASCADE, name TEXT NOT NULL, privileges TEXT NOT NULL, PRIMARY KEY (env, name))",
            ),
            Sql(
                "CREATE TABLE IF NOT EXISTS {s}upgrades (id TEXT NOT NULL PRIMARY KEY, env TEXT NOT NULL, created_at TEXT NOT NULL)",
            ),
            Sql(
                "CREATE TABLE IF NOT EXISTS {s}upgrade_events (upgrade_id TEXT NOT NULL REFERENCES {s}upgrades(id), seq INTEGER NOT NULL, at TEXT NOT NULL, event TEXT NOT NULL, PRIMARY KEY (upgrade_id, seq))",
            ),
            Sql(
                "CREATE TABLE IF NOT EXISTS {s}role_members (env TEXT NOT NULL, role TEXT NOT NULL, user_email TEXT NOT NULL REFERENCES {s}users(email), PRIMARY KEY (env, role, user_email), FOREIGN KEY (env, role) REFERENCES {s}roles(env, name) ON DELETE CASCADE)",
            ),
            Sql(
                "CREATE TABLE IF NOT EXISTS {s}apps (env TEXT NOT NULL REFERENCES {s}environments(name) ON DELETE CASCADE, name TEXT NOT NULL, owner TEXT NOT NULL, editors TEXT NOT NULL, draft TEXT, draft_database TEXT, draft_saved_at TEXT, created_at TEXT NOT NULL, PRIMARY KEY (env, name))",
            ),
            Sql(
                "CREATE TABLE IF NOT EXISTS {s}app_versions (env TEXT NOT NULL, name TEXT NOT NULL, version BIGINT NOT NULL, definition TEXT NOT NULL, database TEXT NOT NULL, published_at TEXT NOT NULL, published_by TEXT NOT NULL, PRIMARY KEY (env, name, version), FOREIGN KEY (env, name) REFERENCES {s}apps(env, name) ON DELETE CASCADE)",
            ),
            Sql(
                "CREATE TABLE IF NOT EXISTS {s}flows (env TEXT NOT NULL REFERENCES {s}environments(name) ON DELETE CASCADE, id TEXT NOT NULL, name TEXT NOT NULL, owner TEXT NOT NULL, editors TEXT NOT NULL, state TEXT NOT NULL, definition TEXT NOT NULL, database TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY (env, id))",
            ),
            Sql(
                "CREATE TABLE IF NOT EXISTS {s}flow_runs (id TEXT NOT NULL PRIMARY KEY, env TEXT NOT NULL, flow_id TEXT NOT NULL, trigger_key TEXT NOT NULL UNIQUE, status TEXT NOT NULL, depth BIGINT NOT NULL, trigger TEXT NOT NULL, steps TEXT NOT NULL, error TEXT, attempts BIGINT NOT NULL, created_at TEXT NOT NULL, started_at TEXT, finished_at TEXT)",
            ),
            Sql(
                "CREATE INDEX IF NOT EXISTS flow_runs_by_flow ON {s}flow_runs (env, flow_id, created_at)",
            ),
            Sql("CREATE INDEX IF NOT EXISTS flow_runs_by_status ON {s}flow_runs (status)"),
            Sql(
                "CREATE TABLE IF NOT EXISTS {s}approvals (id TEXT NOT NULL PRIMARY KEY, env TEXT NOT NULL, run_id TEXT NOT NULL, step TEXT NOT NULL, title TEXT NOT NULL, details TEXT NOT NULL, approvers TEXT NOT NULL, outcome TEXT, responder TEXT, comment TEXT, created_at TEXT NOT NULL, responded_at TEXT, UNIQUE (run_id, step))",
            ),
        ],
    },
    Migration {
        version: 2,
        name: "a run keeps the flow it started",
        steps: &[AddColumn {
            table: "flow_runs",
            column: "definition",
            ty: "TEXT",
        }],
    },
    Migration {
        version: 3,
        name: "indexes for the listings by environment and by user",
        steps: &[
            Sql(
                "CREATE INDEX IF NOT EXISTS approvals_by_env ON {s}approvals (env, created_at, id)",
            ),
            Sql("CREATE INDEX IF NOT EXISTS tokens_by_user ON {s}tokens (user_email)"),
            Sql("CREATE INDEX IF NOT EXISTS upgrades_by_env ON {s}upgrades (env, created_at, id)"),
            Sql("CREATE INDEX IF NOT EXISTS role_members_by_user ON {s}role_members (user_email)"),
        ],
    },
    Migration {
        version: 4,
        name: "upgrade plans uploaded through the API",
        steps: &[Sql(
            "CREATE TABLE {s}plans (name TEXT NOT NULL PRIMARY KEY, text TEXT NOT NULL, updated_by TEXT NOT NULL, updated_at TEXT NOT NULL)",
        )],
    },
    Migration {
        version: 5,
        name: "what flows bound to a test database sent, captured instead",
        steps: &[
            Sql(
                "CREATE TABLE {s}captures (env TEXT NOT NULL, id TEXT NOT NULL, database TEXT NOT NULL, kind TEXT NOT NULL, flow_id TEXT NOT NULL, run_id TEXT NOT NULL, payload TEXT NOT NULL, at TEXT NOT NULL, PRIMARY KEY (env, id))",
            ),
            Sql("CREATE INDEX captures_by_database ON {s}captures (env, database, at)"),
            Sql(
                "CREATE TABLE {s}capture_allowed_hosts (env TEXT NOT NULL, database TEXT NOT NULL, host TEXT NOT NULL, PRIMARY KEY (env, database, host))",
            ),
        ],
    },
    Migration {
        version: 6,
        name: "when each app was last played (step 2's usage column)",
        steps: &[AddColumn {
            table: "apps",
            column: "last_used_at",
            ty: "TEXT",
        }],
    },
    Migration {
        version: 7,
        name: "step 3's write pause, which every server's write gate follows",
        steps: &[Sql(
            "CREATE TABLE {s}write_pauses (env TEXT NOT NULL PRIMARY KEY, upgrade TEXT NOT NULL, attempt BIGINT NOT NULL, started_at TEXT NOT NULL)",
        )],
    },
    Migration {
        version: 8,
        name: "what each switch replaced, for a revert within the window",
        steps: &[Sql(
            "CREATE TABLE {s}switch_undo (env TEXT NOT NULL, to_database TEXT NOT NULL, undo TEXT NOT NULL, at TEXT NOT NULL, PRIMARY KEY (env, to_database))",
        )],
    },
    Migration {
        version: 9,
        name: "web UI sessions",
        steps: &[
            Sql(
                "CREATE TABLE {s}web_sessions (id_hash TEXT NOT NULL PRIMARY KEY, user_email TEXT NOT NULL REFERENCES {s}users(email), csrf TEXT NOT NULL, created_at TEXT NOT NULL, expires_at TEXT NOT NULL)",
            ),
            Sql("CREATE INDEX web_sessions_by_expiry ON {s}web_sessions (expires_at)"),
        ],
    },
];

/// The version this build writes.
pub fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// A lock key all servers sharing one PostgreSQL control plane agree on, so two
/// starting at once apply each migration once.
const PG_LOCK_KEY: i64 = 0x7570_6c69_6674; // "uplift"

/// Brings the control plane to [`latest_version`]; returns the version it was at.
pub(super) async fn migrate(pool: &Pool, prefix: &str, schema: Option<&str>) -> Result<i64> {
    let mut tx = locked(pool).await?;
    if let Some(s) = schema {
        tx.batch(&format!(
            "CREATE SCHEMA IF NOT EXISTS {}",
            crate::sql::ident(s)
        ))
        .await?;
    }
    tx.batch(&format!("CREATE TABLE IF NOT EXISTS {prefix}schema_migrations (version BIGINT NOT NULL PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)")).await?;
    let found = current(&mut tx, prefix).await?;
    tx.commit().await?;
    if found > latest_version() {
        return Err(StoreError::Invalid(format!(
            "the control plane is at schema version {found}, newer than this build knows ({}); run a newer uplift",
            latest_version()
        )));
    }
    for m in MIGRATIONS.iter().filter(|m| m.version > found) {
        apply(pool, prefix, schema, m).await?;
    }
    Ok(found)
}

/// A write transaction that, on PostgreSQL, also holds the migration lock.
async fn locked(pool: &Pool) -> Result<Tx> {
    let mut tx = pool.begin().await?;
    if pool.dialect() == Dialect::Postgres {
        tx.execute(
            "SELECT pg_advisory_xact_lock($1)",
            &[Value::Int(PG_LOCK_KEY)],
        )
        .await?;
    }
    Ok(tx)
}

/// The last migration applied (0 for none), read on `conn`.
pub(super) async fn current(conn: &mut Conn, prefix: &str) -> Result<i64> {
    let row = conn
        .query_opt(
            &format!("SELECT COALESCE(MAX(version), 0) FROM {prefix}schema_migrations"),
            &[],
            &[ColType::Int],
        )
        .await?;
    Ok(row.and_then(|r| r[0].as_int()).unwrap_or(0))
}

/// Applies one migration unless another server did while this one waited.
async fn apply(pool: &Pool, prefix: &str, schema: Option<&str>, m: &Migration) -> Result<()> {
    let mut tx = locked(pool).await?;
    if current(&mut tx, prefix).await? >= m.version {
        return tx.rollback().await;
    }
    for step in m.steps {
        match step {
            Sql(sql) => tx.batch(&sql.replace("{s}", prefix)).await?,
            AddColumn { table, column, ty } => {
                if !has_column(&mut tx, schema, table, column).await? {
                    tx.batch(&format!(
                        "ALTER TABLE {prefix}{table} ADD COLUMN {column} {ty}"
                    ))
                    .await?;
                }
            }
        }
    }
    tx.execute(
        &crate::sql::placeholders(
            pool.dialect(),
            &format!(
                "INSERT INTO {prefix}schema_migrations (version, name, applied_at) VALUES (?, ?, ?)"
            ),
        ),
        &[
            Value::Int(m.version),
            Value::Text(m.name.into()),
            Value::Text(super::now_text()),
        ],
    )
    .await?;
    tracing::info!(version = m.version, name = m.name, "control plane migrated");
    tx.commit().await
}

async fn has_column(tx: &mut Tx, schema: Option<&str>, table: &str, column: &str) -> Result<bool> {
    let (sql, params) = match tx.dialect() {
        Dialect::Sqlite => (
            "SELECT name FROM pragma_table_info(?) WHERE name = ?",
            vec![Value::Text(table.into()), Value::Text(column.into())],
        ),
        Dialect::Postgres => (
            "SELECT column_name::text FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 AND column_name = $3",
            vec![
                Value::Text(schema.unwrap_or("public").into()),
                Value::Text(table.into()),
                Value::Text(column.into()),
            ],
        ),
    };
    Ok(!tx.query(sql, &params, &[ColType::Text]).await?.is_empty())
}
