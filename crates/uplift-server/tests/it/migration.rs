//! A data directory and a PostgreSQL control plane made by the code before the control
//! plane was versioned (`tests/fixtures/before-migrations`, see its README) open,
//! migrate and serve, with every row they held still there.

use std::collections::BTreeSet;
use std::path::Path;

use axum::http::StatusCode;
use serde_json::json;
use uplift_store::control::migrations::latest_version;
use uplift_store::{Backend, Store};

use crate::support::{PgDatabase, Platform, platform};

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/before-migrations"
);
/// The admin tokens `uplift demo` printed when it made each fixture.
const SQLITE_ADMIN: &str = "upl_ovLxRWXBzjPTRVk4CVWdls6YYp8o60VBrfaPZFmg5CI";
const POSTGRES_ADMIN: &str = "upl_0cHYfHlDVhxDFvsXjcjigL6mm2HLeh04_LcJdXMvwOQ";

/// The control-plane tables the old code made.
const TABLES: &[&str] = &[
    "environments",
    "users",
    "tokens",
    "roles",
    "role_members",
    "apps",
    "app_versions",
    "flows",
    "flow_runs",
    "approvals",
    "upgrades",
    "upgrade_events",
];

fn fixture(name: &str) -> String {
    std::fs::read_to_string(Path::new(FIXTURES).join(name)).expect("fixture")
}

/// Loads a dump, whose tables come in name order: references are checked once it
/// is all there.
fn load_sqlite(db: &Path, dump: &str) {
    let db = rusqlite::Connection::open(db).unwrap();
    db.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
    db.execute_batch(&fixture(dump)).unwrap();
    db.execute_batch("PRAGMA foreign_keys = ON").unwrap();
}

/// The columns of every old table, in table order, as the old code made them: rows
/// are compared on these, since later migrations may add columns.
type Columns = Vec<Vec<String>>;

fn sqlite_columns(control: &Path) -> Columns {
    let db = rusqlite::Connection::open(control).unwrap();
    TABLES
        .iter()
        .map(|t| {
            let stmt = db.prepare(&format!("SELECT * FROM {t}")).unwrap();
            stmt.column_names().iter().map(|c| c.to_string()).collect()
        })
        .collect()
}

/// Every row of every old table, as `table|col=value|…` text over `columns`.
fn sqlite_rows(control: &Path, columns: &Columns) -> BTreeSet<String> {
    let db = rusqlite::Connection::open(control).unwrap();
    let mut out = BTreeSet::new();
    for (t, names) in TABLES.iter().zip(columns) {
        let mut stmt = db
            .prepare(&format!("SELECT {} FROM {t}", names.join(", ")))
            .unwrap();
        let rows = stmt
            .query_map([], |r| {
                let cells = (0..names.len())
                    .map(|i| {
                        let v: rusqlite::types::Value = r.get(i)?;
                        Ok(format!("{}={v:?}", names[i]))
                    })
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(format!("{t}|{}", cells.join("|")))
            })
            .unwrap();
        out.extend(rows.map(Result::unwrap));
    }
    out
}

async fn pg_columns(client: &tokio_postgres::Client) -> Columns {
    let mut out = Vec::new();
    for t in TABLES {
        let rows = client
            .query(
                "SELECT column_name::text FROM information_schema.columns WHERE table_schema = 'uplift' AND table_name = $1 ORDER BY ordinal_position",
                &[t],
            )
            .await
            .unwrap();
        out.push(rows.iter().map(|r| r.get(0)).collect());
    }
    out
}

async fn pg_rows(client: &tokio_postgres::Client, columns: &Columns) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (t, names) in TABLES.iter().zip(columns) {
        let rows = client
            .query(
                &format!(
                    "SELECT row_to_json(x)::text FROM (SELECT {} FROM uplift.{t}) x",
                    names.join(", ")
                ),
                &[],
            )
            .await
            .unwrap();
        out.extend(
            rows.iter()
                .map(|r| format!("{t}|{}", r.get::<_, String>(0))),
        );
    }
    out
}

/// What the old platform held, read through the API with the old admin token.
async fn serves_what_it_held(p: &Platform, token: &str) {
    let me = p.get("/api/me", token).await;
    assert_eq!(me.status, StatusCode::OK, "{}: {}", p.engine, me.body);
    assert_eq!(me.body["role"], "admin", "{}", p.engine);
    let count = |path: &'static str| async move {
        let a = p.get(path, token).await;
        assert_eq!(a.status, StatusCode::OK, "{}: {path}: {}", p.engine, a.body);
        let list = a.body.get("value").unwrap_or(&a.body);
        list.as_array().map_or(0, Vec::len)
    };
    assert_eq!(count("/api/environments").await, 1, "{}", p.engine);
    assert_eq!(count("/api/users").await, 9, "{}", p.engine);
    assert_eq!(count("/api/environments/contoso/flows").await, 8);
    assert_eq!(count("/api/environments/contoso/roles").await, 4);
    let apps = p.get("/api/environments/contoso/apps", token).await.body;
    let published = apps
        .get("value")
        .unwrap_or(&apps)
        .as_array()
        .unwrap()
        .iter();
    assert_eq!(
        published.filter(|a| a["published"]["version"] == 1).count(),
        3
    );
    let approvals = p
        .get("/api/environments/contoso/approvals", token)
        .await
        .body;
    let approvals = approvals.get("value").unwrap_or(&approvals);
    assert_eq!(
        approvals[0]["status"], "pending",
        "{}: {approvals}",
        p.engine
    );
    let upgrade = p.get("/api/environments/contoso/upgrade", token).await.body;
    assert_eq!(
        upgrade["status"], "step2_verifying",
        "{}: {upgrade}",
        p.engine
    );
    let accounts = p
        .get(
            "/api/environments/contoso/data/accounts/$count?$filter=Name%20eq%20'Fixture%20Account'",
            token,
        )
        .await;
    assert_eq!(accounts.body, json!(1), "{}: {}", p.engine, accounts.body);
    let maker = p
        .post(
            "/api/users",
            token,
            json!({"email": "new@contoso.com", "display_name": "New", "role": "maker"}),
        )
        .await;
    assert_eq!(
        maker.status,
        StatusCode::CREATED,
        "{}: {}",
        p.engine,
        maker.body
    );
}

/// Applied migrations, one row each, and the version they reach.
fn check_versions(engine: &str, versions: &[i64]) {
    let expect: Vec<i64> = (1..=latest_version()).collect();
    assert_eq!(versions, expect, "{engine}: each migration applied once");
}

#[tokio::test]
async fn a_sqlite_data_directory_made_before_migrations_opens_with_nothing_lost() {
    let dir = tempfile::tempdir().unwrap();
    let control = dir.path().join("control.db");
    load_sqlite(&control, "sqlite-control.sql");
    let prod = dir.path().join("envs/contoso/prod.db");
    std::fs::create_dir_all(prod.parent().unwrap()).unwrap();
    load_sqlite(&prod, "sqlite-contoso-prod.sql");
    let columns = sqlite_columns(&control);
    let before = sqlite_rows(&control, &columns);
    assert!(before.len() > 60, "{} rows in the fixture", before.len());

    let backend = Backend::Sqlite {
        data_dir: dir.path().to_path_buf(),
    };
    // Opened twice: the second open finds nothing left to apply.
    drop(Store::open(backend.clone()).await.unwrap());
    let path = dir.path().to_path_buf();
    let p = platform("sqlite", backend, dir, None, true).await;
    let after = sqlite_rows(&control, &columns);
    let lost: Vec<_> = before.difference(&after).collect();
    assert!(lost.is_empty(), "rows lost or changed: {lost:#?}");
    let db = rusqlite::Connection::open(path.join("control.db")).unwrap();
    let versions: Vec<i64> = db
        .prepare("SELECT version FROM schema_migrations ORDER BY version")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    check_versions("sqlite", &versions);
    let indexes: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = 'approvals_by_env'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(indexes, 1, "the listing index of migration 3 exists");
    serves_what_it_held(&p, SQLITE_ADMIN).await;
}

/// A control plane older still, from before runs kept the flow they started (the
/// column migration 2 adds), gains the column with its runs kept.
#[tokio::test]
async fn runs_recorded_before_they_kept_their_flow_gain_the_column() {
    let dir = tempfile::tempdir().unwrap();
    let control = dir.path().join("control.db");
    load_sqlite(&control, "sqlite-control.sql");
    rusqlite::Connection::open(&control)
        .unwrap()
        .execute_batch("ALTER TABLE flow_runs DROP COLUMN definition")
        .unwrap();
    let before = sqlite_rows(&control, &sqlite_columns(&control));
    let backend = Backend::Sqlite {
        data_dir: dir.path().to_path_buf(),
    };
    let store = Store::open(backend).await.unwrap();
    let after = sqlite_rows(&control, &sqlite_columns(&control));
    let runs: Vec<&String> = after
        .iter()
        .filter(|r| r.starts_with("flow_runs|"))
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert!(runs[0].ends_with("|definition=Null"), "{}", runs[0]);
    // Every row is its old row, plus the columns later migrations appended.
    let kept = |r: &&String| {
        after
            .iter()
            .any(|a| a == *r || a.starts_with(&format!("{r}|")))
    };
    let lost: Vec<_> = before.iter().filter(|r| !kept(r)).collect();
    assert!(lost.is_empty(), "rows lost or changed: {lost:#?}");
    let waiting = store.control().unfinished_runs(10).await.unwrap();
    assert!(
        waiting.is_empty(),
        "the waiting run stays waiting: {waiting:?}"
    );
}

#[tokio::test]
async fn a_postgres_control_plane_made_before_migrations_opens_with_nothing_lost() {
    let Some(pg) = PgDatabase::create().await else {
        return;
    };
    let (client, conn) = tokio_postgres::connect(&pg.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .batch_execute(&fixture("postgres.sql"))
        .await
        .unwrap();
    let columns = pg_columns(&client).await;
    let before = pg_rows(&client, &columns).await;
    assert!(before.len() > 60, "{} rows in the fixture", before.len());

    let backend = Backend::Postgres {
        url: pg.url.clone(),
    };
    drop(Store::open(backend.clone()).await.unwrap());
    let dir = tempfile::tempdir().unwrap();
    let p = platform("postgres", backend, dir, Some(pg), true).await;
    let after = pg_rows(&client, &columns).await;
    let lost: Vec<_> = before.difference(&after).collect();
    assert!(lost.is_empty(), "rows lost or changed: {lost:#?}");
    let versions: Vec<i64> = client
        .query(
            "SELECT version FROM uplift.schema_migrations ORDER BY version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    check_versions("postgres", &versions);
    let index = client
        .query_opt("SELECT to_regclass('uplift.approvals_by_env')::text", &[])
        .await
        .unwrap()
        .and_then(|r| r.get::<_, Option<String>>(0));
    assert!(index.is_some(), "the listing index of migration 3 exists");
    serves_what_it_held(&p, POSTGRES_ADMIN).await;
    let def: String = client
        .query_one(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = 'env_contoso' AND indexname = 'ix_account_name'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        def.contains("lower(name) NULLS FIRST, id"),
        "the key index is rebuilt: {def}"
    );
}

/// A control plane a newer build migrated further is refused, not half-understood.
#[uplift_test_macros::engine_test]
async fn a_control_plane_from_a_newer_build_is_refused(p: Platform) {
    let newer = latest_version() + 1;
    let sql = format!(
        "INSERT INTO {{s}}schema_migrations (version, name, applied_at) VALUES ({newer}, 'from the future', '2099-01-01T00:00:00.000Z')"
    );
    let backend = match p.pg_url().map(str::to_string) {
        None => {
            let db = rusqlite::Connection::open(p.data_dir().join("control.db")).unwrap();
            db.execute_batch(&sql.replace("{s}", "")).unwrap();
            Backend::Sqlite {
                data_dir: p.data_dir().to_path_buf(),
            }
        }
        Some(url) => {
            let client = p.pg_client().await.unwrap();
            client
                .batch_execute(&sql.replace("{s}", "uplift."))
                .await
                .unwrap();
            Backend::Postgres { url }
        }
    };
    let Err(e) = Store::open(backend).await else {
        panic!("{}: a newer control plane opened", p.engine);
    };
    assert!(
        matches!(e, uplift_store::StoreError::Invalid(_)),
        "{}: {e:?}",
        p.engine
    );
    assert!(e.to_string().contains(&format!("version {newer}")), "{e}");
}
