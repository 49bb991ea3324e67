//! `uplift-bench step1`: step 1 of the upgrade on the demo, against the fastest
//! hand-written SQL doing the same transform on the same engine, and against an
//! untransformed clone of the same database (the floor), all in one run.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value as Json, json};
use uplift_model::transform::{EntityTransform, EvalContext, Severity};
use uplift_model::{Catalog, ColType, SchemaVersion};
use uplift_store::copy::{any_of, source_types};
use uplift_store::engine::sqlite::SqlitePool;
use uplift_store::sql::{SqlBuf, ident};
use uplift_store::transform_sql::{self, SourceTypes};
use uplift_store::{Backend, Dialect, EnvDb, Pool, Store};

use crate::api::{Args, ensure_pg_database, machine, pg_bench_url, serve};

pub(crate) const RATES: &str = r#"{"EUR":1.08,"GBP":1.27,"JPY":0.0067}"#;

struct Result1 {
    engine: String,
    rows: u64,
    bytes: u64,
    /// Per round: step 1, and the fastest hand-written SQL right after it.
    rounds: Vec<(Duration, Duration)>,
    peak_rss_kb: u64,
    insert_select: Duration,
    clone: Duration,
}

impl Result1 {
    /// The round with the median ratio of hand-written SQL to step 1.
    fn median(&self) -> (Duration, Duration, f64) {
        let mut r: Vec<_> = self
            .rounds
            .iter()
            .map(|(s, b)| (*s, *b, b.as_secs_f64() / s.as_secs_f64()))
            .collect();
        r.sort_by(|a, b| a.2.total_cmp(&b.2));
        r[r.len() / 2]
    }
}

/// One API call. In-process, so polling the status costs step 1 no CPU for process
/// start-ups (a `curl` every poll took a tenth of a core).
pub(crate) async fn http(
    client: &reqwest::Client,
    served: &crate::api::Served,
    method: reqwest::Method,
    path: &str,
    body: &str,
) -> Result<Json> {
    let resp = client
        .request(method.clone(), format!("{}{path}", served.url))
        .bearer_auth(&served.token)
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await?;
    if !resp.status().is_success() {
        bail!("{method} {path} failed: {}", resp.status());
    }
    Ok(resp.json().await.unwrap_or(Json::Null))
}

fn peak_rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Runs step 1 through the server and returns its wall time and the source rows.
async fn step1_through_server(args: &Args, engine: &str) -> Result<(Duration, u64, u64)> {
    let served = serve(args, engine)?;
    let client = reqwest::Client::new();
    use reqwest::Method;
    let _ = http(
        &client,
        &served,
        Method::POST,
        "/api/environments/contoso/upgrade/cancel",
        "{}",
    )
    .await;
    let body = json!({"plan":"classic-to-modern","language":"en","currency":"USD","exchange_rates": serde_json::from_str::<Json>(RATES)?});
    let t0 = Instant::now();
    http(
        &client,
        &served,
        Method::POST,
        "/api/environments/contoso/upgrade",
        &body.to_string(),
    )
    .await?;
    loop {
        let v = http(
            &client,
            &served,
            Method::GET,
            "/api/environments/contoso/upgrade",
            "",
        )
        .await?;
        match v["status"].as_str() {
            Some("step1_running") => tokio::time::sleep(Duration::from_millis(50)).await,
            Some("step2_verifying") => {
                // Where the time went, phase by phase.
                for p in v["phases"].as_array().into_iter().flatten() {
                    eprintln!(
                        "    {:<22} {} → {}",
                        p["phase"].as_str().unwrap_or("?"),
                        p["started_at"].as_str().unwrap_or("-"),
                        p["finished_at"].as_str().unwrap_or("-")
                    );
                }
                break;
            }
            other => bail!("step 1 ended as {other:?}: {v}"),
        }
    }
    let wall = t0.elapsed();
    let report = http(
        &client,
        &served,
        Method::GET,
        "/api/environments/contoso/upgrade/report",
        "",
    )
    .await?;
    let rows: u64 = report["entities"].as_array().map_or(0, |es| {
        es.iter().filter_map(|e| e["exported"].as_u64()).sum()
    });
    if report["entities"]
        .as_array()
        .is_some_and(|es| es.iter().any(|e| e["checksum_match"] == false))
    {
        bail!("a checksum did not match: {report}");
    }
    let rss = peak_rss_kb(served.child.id());
    http(
        &client,
        &served,
        Method::POST,
        "/api/environments/contoso/upgrade/cancel",
        "{}",
    )
    .await?;
    Ok((wall, rows, rss))
}

/// The transform as one hand-written statement: `SELECT <columns> FROM src s [WHERE NOT refused]`.
fn select(
    dialect: Dialect,
    t: &EntityTransform,
    types: &SourceTypes,
    ctx: &EvalContext,
    src: &str,
) -> Result<SqlBuf> {
    let mut b = SqlBuf::new(dialect);
    b.push("SELECT ");
    for (i, c) in t.columns.iter().enumerate() {
        if i > 0 {
            b.push(", ");
        }
        transform_sql::column(&mut b, c, types, ctx)?;
        b.push(" AS ").push(&ident(&c.name));
    }
    b.push(" FROM ").push(src).push(" s");
    let mut refused = SqlBuf::new(dialect);
    if any_of(&mut refused, t, types, Severity::Error)? {
        b.push(" WHERE NOT ").append(&refused);
    }
    Ok(b)
}

/// A connection that sees the source (as `src` on SQLite) and the target.
fn pair(prod: &EnvDb, target: &EnvDb) -> Result<(Pool, String, String)> {
    Ok(match (prod.pool(), target.pool()) {
        (Pool::Sqlite(s), Pool::Sqlite(t)) => (
            Pool::Sqlite(SqlitePool::open_with(
                t.path(),
                vec![("src".into(), s.path().to_path_buf())],
            )?),
            "\"src\".".into(),
            "\"main\".".into(),
        ),
        _ => (
            target.pool().clone(),
            format!("{}.", ident(prod.schema().unwrap_or("public"))),
            format!("{}.", ident(target.schema().unwrap_or("public"))),
        ),
    })
}

/// Times the hand-written SQL: `INSERT … SELECT` and the clone only when `full` (they
/// do not change between rounds), `CREATE TABLE … AS SELECT` always.
async fn anchors(
    args: &Args,
    engine: &str,
    full: bool,
) -> Result<(Duration, Duration, Duration, u64)> {
    let backend = match engine {
        "sqlite" => Backend::Sqlite {
            data_dir: args.data_dir.join(engine),
        },
        _ => Backend::Postgres {
            url: pg_bench_url(&args.postgres),
        },
    };
    let store = Store::open(backend).await?;
    let prod = store.env_db("contoso").await?;
    let catalog = prod.catalog();
    let plan = uplift_plan::parse_plan(
        uplift_plan::builtin("classic-to-modern").ok_or_else(|| anyhow!("no plan"))?,
    )?;
    let rates: std::collections::BTreeMap<String, uplift_model::Decimal> =
        serde_json::from_str(RATES)?;
    let upgrade = uplift_plan::apply(
        &plan,
        &catalog,
        &uplift_plan::Options {
            language: "en".into(),
            currency: "USD".into(),
            exchange_rates: rates,
        },
    )?;
    let ctx = EvalContext {
        upgrade_time: time::OffsetDateTime::now_utc().replace_nanosecond(0)?,
        actor: "bench@uplift.local".into(),
    };
    let work: Vec<(EntityTransform, SourceTypes)> = upgrade
        .entities
        .iter()
        .filter_map(|t| {
            catalog
                .entity(&t.source_entity)
                .map(|e| (t.clone(), source_types(&prod, e)))
        })
        .collect();

    // A: INSERT … SELECT into keyed, indexed tables.
    let mut insert_select = Duration::MAX;
    if full {
        let a = store
            .create_database("contoso", "bench-a", upgrade.target.clone())
            .await?;
        let (pool, s, d) = pair(&prod, &a)?;
        let t0 = Instant::now();
        let mut tx = pool.begin_snapshot().await?;
        for (t, types) in &work {
            let sel = select(
                pool.dialect(),
                t,
                types,
                &ctx,
                &format!("{s}{}", ident(&t.source_table)),
            )?;
            tx.execute(
                &format!("INSERT INTO {d}{} {}", ident(&t.target_table), sel.sql),
                &sel.params,
            )
            .await?;
        }
        tx.commit().await?;
        insert_select = t0.elapsed();
        drop(pool);
        store.remove_database("contoso", "bench-a").await?;
    }

    // B: CREATE TABLE … AS SELECT, then the key and the indexes.
    let b = store
        .create_database("contoso", "bench-b", Catalog::empty(SchemaVersion::Modern))
        .await?;
    let (pool, s, d) = pair(&prod, &b)?;
    let t0 = Instant::now();
    let mut tx = pool.begin_snapshot().await?;
    for (t, types) in &work {
        let sel = select(
            pool.dialect(),
            t,
            types,
            &ctx,
            &format!("{s}{}", ident(&t.source_table)),
        )?;
        let table = format!("{d}{}", ident(&t.target_table));
        tx.execute(&format!("CREATE TABLE {table} AS {}", sel.sql), &sel.params)
            .await?;
        let key = match pool.dialect() {
            Dialect::Sqlite => format!(
                "CREATE UNIQUE INDEX {d}{} ON {} (id)",
                ident(&format!("pk_{}", t.target_table)),
                ident(&t.target_table)
            ),
            Dialect::Postgres => format!("ALTER TABLE {table} ADD PRIMARY KEY (id)"),
        };
        tx.batch(&key).await?;
        if let Some(e) = upgrade.target.entity(&t.target_entity) {
            let qualify = |x: &str| match pool.dialect() {
                Dialect::Sqlite => ident(x),
                Dialect::Postgres => format!("{d}{}", ident(x)),
            };
            for stmt in
                uplift_store::ddl::create_entity(pool.dialect(), &qualify, e, SchemaVersion::Modern)
                    .into_iter()
                    .skip(1)
            {
                let stmt = match pool.dialect() {
                    // Index names live in the index's schema on SQLite: qualify them.
                    Dialect::Sqlite => stmt.replacen(
                        "CREATE INDEX IF NOT EXISTS \"",
                        &format!("CREATE INDEX IF NOT EXISTS {d}\""),
                        1,
                    ),
                    Dialect::Postgres => stmt,
                };
                tx.batch(&stmt).await?;
            }
        }
    }
    tx.commit().await?;
    let ctas = t0.elapsed();
    drop(pool);
    store.remove_database("contoso", "bench-b").await?;

    if !full {
        return Ok((insert_select, ctas, Duration::MAX, 0));
    }
    // The floor: the same database cloned without any transform.
    let (clone, bytes) = match prod.pool() {
        Pool::Sqlite(p) => {
            let to = args.data_dir.join("sqlite-clone.db");
            let _ = std::fs::remove_file(&to);
            let src = p.path().to_path_buf();
            let bytes = std::fs::metadata(&src)?.len();
            let t0 = Instant::now();
            let from = rusqlite::Connection::open(&src)?;
            // Decimal columns compare by the platform's collation, which VACUUM needs.
            uplift_store::decimal_sql::register(&from)?;
            from.execute("VACUUM INTO ?1", [to.to_string_lossy()])?;
            let d = t0.elapsed();
            std::fs::remove_file(&to)?;
            (d, bytes)
        }
        Pool::Postgres(_) => {
            let mut conn = prod.pool().conn().await?;
            let size = conn
                .query_opt(
                    "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'env_contoso' AND c.relkind = 'r'",
                    &[],
                    &[ColType::Int],
                )
                .await?
                .and_then(|r| r[0].as_int())
                .unwrap_or(0) as u64;
            drop(conn);
            drop(prod);
            drop(b);
            drop(store);
            let admin = &args.postgres;
            let run = |sql: &str| {
                std::process::Command::new("psql")
                    .args([admin.as_str(), "-qc", sql])
                    .status()
            };
            run("DROP DATABASE IF EXISTS uplift_bench_clone")?;
            let t0 = Instant::now();
            if !run("CREATE DATABASE uplift_bench_clone TEMPLATE uplift_bench")?.success() {
                bail!("cloning the database failed (is a connection still open?)");
            }
            let d = t0.elapsed();
            run("DROP DATABASE IF EXISTS uplift_bench_clone")?;
            (d, size)
        }
    };
    Ok((insert_select, ctas, clone, bytes))
}

/// Runs the step 1 benchmark on each engine and writes its section of the report.
pub async fn run(args: Args) -> Result<()> {
    let mut results = Vec::new();
    for engine in &args.engines {
        eprintln!("== step 1 on {engine}, {} demo rows", args.rows);
        if engine == "postgres" {
            ensure_pg_database(&args.postgres)?;
        }
        let mut rounds = Vec::new();
        let (mut rows, mut peak_rss_kb) = (0, 0);
        let (mut insert_select, mut clone, mut bytes) = (Duration::MAX, Duration::MAX, 0);
        for round in 0..args.rounds.max(1) {
            let (step1, r, rss) = step1_through_server(&args, engine)
                .await
                .with_context(|| format!("step 1 on {engine}"))?;
            let (is, ctas, cl, b) = anchors(&args, engine, round == 0)
                .await
                .with_context(|| format!("anchors on {engine}"))?;
            if round == 0 {
                (insert_select, clone, bytes) = (is, cl, b);
            }
            (rows, peak_rss_kb) = (r, peak_rss_kb.max(rss));
            eprintln!(
                "  round {}: step 1 {:.2} s, CTAS + keys {:.2} s",
                round + 1,
                step1.as_secs_f64(),
                ctas.as_secs_f64()
            );
            rounds.push((step1, ctas.min(insert_select)));
        }
        results.push(Result1 {
            engine: engine.clone(),
            rows,
            bytes,
            rounds,
            peak_rss_kb,
            insert_select,
            clone,
        });
    }
    let mut t = String::new();
    let _ = writeln!(t, "### Step 1 ({} demo rows)\n", args.rows);
    let _ = writeln!(
        t,
        "Machine: {}. Step 1 is timed from `POST …/upgrade` to `step2_verifying` (plan, test database, copy with error/warning counts and samples, keys, checksums, check); the hand-written SQL runs the same transform (the compiled expressions, error rows left out) as one statement per entity in one transaction. Each of {} rounds runs step 1 and then `CREATE TABLE … AS SELECT` + keys back to back; the table shows the round with the median ratio, and every round's ratio. `INSERT … SELECT` and the clone run once. Command: `bench/step1.sh`.\n",
        machine(),
        args.rounds.max(1)
    );
    t.push_str("| engine | source rows | source MB | step 1 s | rows/s | MB/s | peak RSS MB | INSERT…SELECT s | CTAS + keys s | clone (floor) s | fastest hand-written / step 1 | every round |\n");
    t.push_str("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
    for r in &results {
        let (step1, best, ratio) = r.median();
        let s = step1.as_secs_f64();
        let every: Vec<String> = r
            .rounds
            .iter()
            .map(|(s, b)| format!("{:.2}", b.as_secs_f64() / s.as_secs_f64()))
            .collect();
        let _ = writeln!(
            t,
            "| {} | {} | {:.0} | {:.2} | {:.0} | {:.1} | {:.0} | {:.2} | {:.2} | {:.2} | **{:.2}** | {} |",
            r.engine,
            r.rows,
            r.bytes as f64 / 1e6,
            s,
            r.rows as f64 / s,
            r.bytes as f64 / 1e6 / s,
            r.peak_rss_kb as f64 / 1024.0,
            r.insert_select.as_secs_f64(),
            best.as_secs_f64(),
            r.clone.as_secs_f64(),
            ratio,
            every.join(", ")
        );
    }
    crate::write_section(&args.out, "step1-bench", &t)?;
    println!("{t}");
    Ok(())
}
