//! `uplift-bench api`: the data API benchmark of BENCHMARKS.md. For each engine it
//! serves the demo with `--rows` rows, drives `GET {set}({id})` and a filtered,
//! ordered 50-row list with wrk, then runs the very SQL the API runs directly against
//! the engine (a rusqlite prepared-statement loop for SQLite, pgbench with prepared
//! statements for PostgreSQL), and writes requests/s, p50/p99 and the ratio.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use uplift_model::filter::{parse_filter, parse_orderby};
use uplift_model::layout::entity_columns;
use uplift_model::{ColType, Value};
use uplift_store::records::{ListQuery, get_sql, list_sql};
use uplift_store::sql::SqlBuf;
use uplift_store::{Backend, Dialect, Store};

#[derive(clap::Args, Clone)]
pub struct Args {
    /// Demo rows (all entities together).
    #[arg(long, default_value_t = 1_000_000)]
    pub rows: u64,
    /// Rounds of step 1 against its anchor (the machine is noisy: the report gives
    /// the median round).
    #[arg(long, default_value_t = 3)]
    pub rounds: u32,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Concurrent connections of the load generators.
    #[arg(long, default_value_t = 16)]
    pub connections: u32,
    /// Where demo data is kept between runs (generation is the slow part).
    #[arg(long, default_value = "target/bench-data")]
    pub data_dir: PathBuf,
    /// PostgreSQL server; the benchmark uses (and keeps) a database `uplift_bench` on it.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    pub postgres: String,
    /// The uplift binary to serve with.
    #[arg(long, default_value = "target/release/uplift")]
    pub uplift: PathBuf,
    /// Output file.
    #[arg(long, default_value = "BENCHMARKS.md")]
    pub out: PathBuf,
    /// Engines to run.
    #[arg(long, value_delimiter = ',', default_value = "sqlite,postgres")]
    pub engines: Vec<String>,
}

/// The list request of the benchmark, as OData query options.
const LIST_FILTER: &str = "Address/city eq 'Paris'";
const LIST_ORDERBY: &str = "Name";
const LIST_TOP: u64 = 50;
/// How many distinct ids the GET-by-id load spreads over.
const SAMPLE_IDS: usize = 1000;

#[derive(Debug, Clone, Copy)]
struct Figures {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
}

pub(crate) struct Served {
    pub(crate) child: Child,
    pub(crate) url: String,
    pub(crate) token: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn serve(args: &Args, engine: &str) -> Result<Served> {
    let database = (engine == "postgres").then(|| pg_bench_url(&args.postgres));
    serve_at(
        args,
        &args.data_dir.join(engine),
        database.as_deref(),
        args.rows,
    )
}

/// Serves the demo of `rows` rows from `dir`, on PostgreSQL when `database` is given.
pub(crate) fn serve_at(
    args: &Args,
    dir: &Path,
    database: Option<&str>,
    rows: u64,
) -> Result<Served> {
    let mut cmd = Command::new(&args.uplift);
    cmd.args([
        "demo",
        "--rows",
        &rows.to_string(),
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
    ])
    .arg(dir)
    .env(
        "RUST_LOG",
        std::env::var("UPLIFT_BENCH_LOG").unwrap_or_else(|_| "warn".into()),
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit());
    if let Some(url) = database {
        cmd.args(["--database-url", url]);
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {}", args.uplift.display()))?;
    let out = BufReader::new(child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?);
    let mut url = None;
    for line in out.lines() {
        let line = line?;
        eprintln!("  {line}");
        if let Some(rest) = line.strip_prefix("Uplift is serving on ") {
            url = rest.split_whitespace().next().map(str::to_string);
        }
        if line.starts_with("Token file:") {
            break;
        }
    }
    let url = url.ok_or_else(|| anyhow!("the demo did not start"))?;
    let token = std::fs::read_to_string(dir.join("admin.token"))?
        .trim()
        .to_string();
    Ok(Served { child, url, token })
}

pub(crate) fn pg_bench_url(admin: &str) -> String {
    let base = admin.rsplit_once('/').map_or(admin, |(b, _)| b);
    format!("{base}/uplift_bench")
}

pub(crate) fn ensure_pg_database(admin: &str) -> Result<()> {
    let exists = Command::new("psql")
        .args([
            admin,
            "-tAc",
            "SELECT 1 FROM pg_database WHERE datname = 'uplift_bench'",
        ])
        .output()?;
    if String::from_utf8_lossy(&exists.stdout).trim() != "1" {
        let ok = Command::new("psql")
            .args([admin, "-qc", "CREATE DATABASE uplift_bench"])
            .status()?;
        if !ok.success() {
            bail!("cannot create database uplift_bench");
        }
    }
    Ok(())
}

/// Parses wrk's `--latency` report into figures.
fn parse_wrk(out: &str) -> Result<Figures> {
    let ms = |v: &str| -> Option<f64> {
        let (num, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic())?);
        let n: f64 = num.parse().ok()?;
        Some(match unit {
            "us" => n / 1000.0,
            "ms" => n,
            "s" => n * 1000.0,
            "m" => n * 60_000.0,
            _ => return None,
        })
    };
    let mut f = Figures {
        rps: 0.0,
        p50_ms: 0.0,
        p99_ms: 0.0,
    };
    for line in out.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        match w.as_slice() {
            ["Requests/sec:", v] => f.rps = v.parse()?,
            ["50%", v] => f.p50_ms = ms(v).ok_or_else(|| anyhow!("bad latency {v}"))?,
            ["99%", v] => f.p99_ms = ms(v).ok_or_else(|| anyhow!("bad latency {v}"))?,
            _ => {}
        }
    }
    if out.contains("Non-2xx") {
        bail!("wrk saw error responses:\n{out}");
    }
    Ok(f)
}

fn wrk(args: &Args, served: &Served, lua: &Path) -> Result<Figures> {
    let out = Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{}", args.connections),
            &format!("-d{}s", args.seconds),
            "--latency",
            "-s",
        ])
        .arg(lua)
        .args(["-H", &format!("Authorization: Bearer {}", served.token)])
        .arg(&served.url)
        .output()
        .context("running wrk (apt-get install wrk)")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    parse_wrk(&text).with_context(|| format!("wrk output:\n{text}"))
}

pub(crate) fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// The engine's own limit on SQLite: one prepared statement per thread, as fast as the
/// loop can go, over the same ids.
fn sqlite_anchor(
    db: &Path,
    statements: &[SqlBuf],
    types: &[ColType],
    seconds: u64,
) -> Result<Figures> {
    let threads = 2;
    let stop = Instant::now() + Duration::from_secs(seconds);
    let results: Vec<Result<Vec<Duration>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || -> Result<Vec<Duration>> {
                    let conn = rusqlite::Connection::open(db)?;
                    let mut lat = Vec::new();
                    let mut i = t;
                    while Instant::now() < stop {
                        let st = &statements[i % statements.len()];
                        let t0 = Instant::now();
                        let mut stmt = conn.prepare_cached(&st.sql)?;
                        let mut rows = stmt.query(rusqlite::params_from_iter(
                            st.params.iter().map(uplift_store::engine::sqlite::Param),
                        ))?;
                        while let Some(r) = rows.next()? {
                            uplift_store::engine::sqlite::read_row(r, types)?;
                        }
                        lat.push(t0.elapsed());
                        i += 7;
                    }
                    Ok(lat)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(anyhow!("thread panicked"))))
            .collect()
    });
    let mut all = Vec::new();
    for r in results {
        all.extend(r?);
    }
    all.sort();
    Ok(Figures {
        rps: all.len() as f64 / seconds as f64,
        p50_ms: percentile(&all, 0.5),
        p99_ms: percentile(&all, 0.99),
    })
}

/// Inlines a statement's parameters as literals, for pgbench script files.
fn inline_pg(buf: &SqlBuf) -> String {
    let mut sql = buf.sql.clone();
    for (i, v) in buf.params.iter().enumerate().rev() {
        let lit = match v {
            Value::Text(s) => format!("'{}'", s.replace('\'', "''")),
            Value::Int(n) => n.to_string(),
            Value::Decimal(d) => d.to_string(),
            Value::Bool(b) => b.to_string(),
            other => format!("'{other:?}'"),
        };
        sql = sql.replace(&format!("${}", i + 1), &lit);
    }
    sql
}

/// The engine's own limit on PostgreSQL: pgbench, prepared statements, same SQL.
fn pgbench(args: &Args, statements: &[SqlBuf], dir: &Path) -> Result<Figures> {
    std::fs::create_dir_all(dir)?;
    let mut cmd = Command::new("pgbench");
    cmd.args([
        "-n",
        "-M",
        "prepared",
        "-j",
        "2",
        "-c",
        &args.connections.to_string(),
        "-T",
        &args.seconds.to_string(),
    ]);
    cmd.args(["-l", "--log-prefix"]).arg(dir.join("log"));
    for (i, st) in statements.iter().take(100).enumerate() {
        let f = dir.join(format!("q{i}.sql"));
        std::fs::write(&f, format!("{};\n", inline_pg(st)))?;
        cmd.arg("-f").arg(format!("{}@1", f.display()));
    }
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("log"))
        {
            std::fs::remove_file(p)?;
        }
    }
    cmd.arg(pg_bench_url(&args.postgres)).current_dir(dir);
    let out = cmd.output().context("running pgbench")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "pgbench failed: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let tps: f64 = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("tps = ")
                .and_then(|r| r.split_whitespace().next())
                .and_then(|n| n.parse().ok())
        })
        .ok_or_else(|| anyhow!("no tps in pgbench output:\n{text}"))?;
    let mut lat = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("log"))
        {
            for line in std::fs::read_to_string(&p)?.lines() {
                if let Some(us) = line
                    .split_whitespace()
                    .nth(2)
                    .and_then(|v| v.parse::<u64>().ok())
                {
                    lat.push(Duration::from_micros(us));
                }
            }
        }
    }
    lat.sort();
    Ok(Figures {
        rps: tps,
        p50_ms: percentile(&lat, 0.5),
        p99_ms: percentile(&lat, 0.99),
    })
}

struct EngineResult {
    engine: String,
    get_api: Figures,
    get_db: Figures,
    list_api: Figures,
    list_db: Figures,
    ordered_api: Figures,
    ordered_db: Figures,
    /// The ordered page as the code before issue 8 ordered and indexed it.
    ordered_before_db: Figures,
}

/// The ordered list request: the first page by the business key.
const ORDERED: &str = "$orderby=Name&$top=50";

/// The ORDER BY the code generated before the orderings and indexes were made to
/// agree: every key with an explicit null ordering, `id` ascending.
fn ordering_before(sql: &str) -> String {
    match sql.split_once(" ORDER BY ") {
        Some((head, tail)) => {
            let (order, rest) = tail.split_once(" LIMIT ").unwrap_or((tail, ""));
            let order = order
                .replace(" ASC NULLS FIRST", " ASC")
                .replace(" ASC", " ASC NULLS FIRST");
            format!("{head} ORDER BY {order} LIMIT {rest}")
        }
        None => sql.to_string(),
    }
}

/// Times `before` against the key index as it was declared before (PostgreSQL:
/// `lower(name), id`, nulls last), restoring today's index afterwards; SQLite's index
/// did not change.
async fn time_before(
    args: &Args,
    db: &uplift_store::EnvDb,
    table: &str,
    before: &SqlBuf,
    types: &[ColType],
    work: &Path,
) -> Result<Figures> {
    if db.dialect() == Dialect::Sqlite {
        let file = args.data_dir.join("sqlite/envs/contoso/prod.db");
        return sqlite_anchor(&file, std::slice::from_ref(before), types, args.seconds);
    }
    let mut conn = db.pool().conn().await?;
    let restore: Vec<String> = conn
        .query(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = 'env_contoso' AND indexname = 'ix_account_name'",
            &[],
            &[ColType::Text],
        )
        .await?
        .iter()
        .filter_map(|r| r[0].as_text().map(str::to_string))
        .collect();
    conn.batch(&format!(
        "DROP INDEX IF EXISTS env_contoso.ix_account_name; CREATE INDEX ix_account_name ON {table} (lower(\"name\"), \"id\"); ANALYZE {table}"
    ))
    .await?;
    let figures = pgbench(
        args,
        std::slice::from_ref(before),
        &work.join("pgbench-before"),
    );
    conn.batch("DROP INDEX IF EXISTS env_contoso.ix_account_name")
        .await?;
    for def in restore {
        conn.batch(&def).await?;
    }
    conn.batch(&format!("ANALYZE {table}")).await?;
    figures
}

async fn run_engine(args: &Args, engine: &str) -> Result<EngineResult> {
    eprintln!("== {engine}: serving the demo with {} rows", args.rows);
    if engine == "postgres" {
        ensure_pg_database(&args.postgres)?;
    }
    let served = serve(args, engine)?;
    let backend = match engine {
        "sqlite" => Backend::Sqlite {
            data_dir: args.data_dir.join(engine),
        },
        _ => Backend::Postgres {
            url: pg_bench_url(&args.postgres),
        },
    };
    let store = Store::open(backend).await?;
    let db = store.env_db("contoso").await?;
    let catalog = db.catalog();
    let account = catalog
        .entity("Account")
        .ok_or_else(|| anyhow!("no Account"))?
        .clone();
    let table = db.table(&account);
    let dialect = db.dialect();

    // Ids spread over the table, the same for the API and the engine.
    let mut conn = db.pool().conn().await?;
    let all_ids = conn
        .query(
            &format!("SELECT id FROM {table} ORDER BY id"),
            &[],
            &[ColType::Text],
        )
        .await?;
    let step = (all_ids.len() / SAMPLE_IDS).max(1);
    let ids: Vec<String> = all_ids
        .iter()
        .step_by(step)
        .filter_map(|r| r[0].as_text().map(str::to_string))
        .collect();
    drop(conn);
    let work = args.data_dir.join(format!("{engine}-work"));
    std::fs::create_dir_all(&work)?;
    let work = std::fs::canonicalize(&work)?;
    let ids_file = work.join("ids.txt");
    std::fs::write(&ids_file, ids.join("\n") + "\n")?;

    let base = "/api/environments/contoso/data/accounts";
    let get_lua = work.join("get.lua");
    std::fs::write(
        &get_lua,
        format!(
            "local ids = {{}}\nfor line in io.lines(\"{}\") do ids[#ids + 1] = line end\nlocal n = 0\nrequest = function()\n  n = n + 1\n  return wrk.format(\"GET\", \"{base}(\" .. ids[(n * 7) % #ids + 1] .. \")\")\nend\n",
            ids_file.display()
        ),
    )?;
    let list_path = format!(
        "{base}?$filter={}&$orderby={LIST_ORDERBY}&$top={LIST_TOP}",
        LIST_FILTER.replace(' ', "%20")
    );
    let list_lua = work.join("list.lua");
    std::fs::write(
        &list_lua,
        format!("request = function() return wrk.format(\"GET\", \"{list_path}\") end\n"),
    )?;

    let ordered_lua = work.join("ordered.lua");
    std::fs::write(
        &ordered_lua,
        format!("request = function() return wrk.format(\"GET\", \"{base}?{ORDERED}\") end\n"),
    )?;

    let version = catalog.version;
    let get_statements: Vec<SqlBuf> = ids
        .iter()
        .map(|id| get_sql(dialect, &table, &account, version, id).0)
        .collect();
    let get_types = get_sql(dialect, &table, &account, version, "x").1;
    let q = ListQuery {
        filter: Some(parse_filter(LIST_FILTER)?),
        orderby: parse_orderby(LIST_ORDERBY)?,
        skip: 0,
        limit: LIST_TOP,
        after: None,
    };
    let (list_stmt, list_types) = list_sql(
        dialect,
        &table,
        &account,
        version,
        &entity_columns(&account, version),
        &q,
    )?;
    eprintln!("   list SQL: {}", list_stmt.sql);
    let ordered_q = ListQuery {
        filter: None,
        orderby: parse_orderby(LIST_ORDERBY)?,
        skip: 0,
        limit: LIST_TOP,
        after: None,
    };
    let cols = entity_columns(&account, version);
    let (ordered_stmt, ordered_types) =
        list_sql(dialect, &table, &account, version, &cols, &ordered_q)?;
    let mut before_stmt = ordered_stmt.clone();
    before_stmt.sql = ordering_before(&ordered_stmt.sql);
    eprintln!(
        "   ordered SQL: {}\n   before: {}",
        ordered_stmt.sql, before_stmt.sql
    );

    // Warm caches once, then measure API and engine back to back.
    wrk(
        &Args {
            seconds: 2,
            ..args.clone()
        },
        &served,
        &get_lua,
    )?;
    eprintln!("   GET by id through the API");
    let get_api = wrk(args, &served, &get_lua)?;
    eprintln!("   GET by id in the engine");
    let get_db = match dialect {
        Dialect::Sqlite => sqlite_anchor(
            &args.data_dir.join("sqlite/envs/contoso/prod.db"),
            &get_statements,
            &get_types,
            args.seconds,
        )?,
        Dialect::Postgres => pgbench(args, &get_statements, &work.join("pgbench-get"))?,
    };
    eprintln!("   list through the API");
    let list_api = wrk(args, &served, &list_lua)?;
    eprintln!("   list in the engine");
    let list_db = match dialect {
        Dialect::Sqlite => sqlite_anchor(
            &args.data_dir.join("sqlite/envs/contoso/prod.db"),
            std::slice::from_ref(&list_stmt),
            &list_types,
            args.seconds,
        )?,
        Dialect::Postgres => pgbench(
            args,
            std::slice::from_ref(&list_stmt),
            &work.join("pgbench-list"),
        )?,
    };
    eprintln!("   ordered list through the API");
    let ordered_api = wrk(args, &served, &ordered_lua)?;
    eprintln!("   ordered list in the engine");
    let ordered_db = match dialect {
        Dialect::Sqlite => sqlite_anchor(
            &args.data_dir.join("sqlite/envs/contoso/prod.db"),
            std::slice::from_ref(&ordered_stmt),
            &ordered_types,
            args.seconds,
        )?,
        Dialect::Postgres => pgbench(
            args,
            std::slice::from_ref(&ordered_stmt),
            &work.join("pgbench-ordered"),
        )?,
    };
    eprintln!("   ordered list in the engine, as ordered and indexed before");
    let ordered_before_db =
        time_before(args, &db, &table, &before_stmt, &ordered_types, &work).await?;
    Ok(EngineResult {
        engine: engine.to_string(),
        get_api,
        get_db,
        list_api,
        list_db,
        ordered_api,
        ordered_db,
        ordered_before_db,
    })
}

pub(crate) fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<u64>().ok())
        })
        .map_or("?".into(), |kb| format!("{} GiB", kb / 1024 / 1024));
    format!("{cpu}, {cores} cores, {mem}")
}

fn row(out: &mut String, engine: &str, what: &str, api: Figures, db: Figures, anchor: &str) {
    let _ = writeln!(
        out,
        "| {engine} | {what} | {:.0} | {:.2} | {:.2} | {anchor} | {:.0} | {:.2} | {:.2} | **{:.2}** |",
        api.rps,
        api.p50_ms,
        api.p99_ms,
        db.rps,
        db.p50_ms,
        db.p99_ms,
        api.rps / db.rps
    );
}

fn write_report(args: &Args, results: &[EngineResult]) -> Result<()> {
    let mut t = String::new();
    let _ = writeln!(t, "### Data API ({} demo rows)\n", args.rows);
    let _ = writeln!(
        t,
        "Machine: {}. Load: wrk, 2 threads, {} connections, {} s per figure; the engine's limit measured in the same run on the same SQL. Command: `bench/api.sh` (`uplift-bench --rows {} --seconds {} --connections {}`).\n",
        machine(),
        args.connections,
        args.seconds,
        args.rows,
        args.seconds,
        args.connections
    );
    t.push_str("| engine | request | API req/s | API p50 ms | API p99 ms | engine limit by | engine req/s | engine p50 ms | engine p99 ms | API / engine |\n");
    t.push_str("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
    for r in results {
        let anchor = if r.engine == "sqlite" {
            "rusqlite prepared loop, 2 threads"
        } else {
            "pgbench -M prepared"
        };
        row(
            &mut t,
            &r.engine,
            "GET accounts({id})",
            r.get_api,
            r.get_db,
            anchor,
        );
        row(
            &mut t,
            &r.engine,
            &format!("GET accounts?$filter={LIST_FILTER}&$orderby={LIST_ORDERBY}&$top={LIST_TOP}"),
            r.list_api,
            r.list_db,
            anchor,
        );
        row(
            &mut t,
            &r.engine,
            &format!("GET accounts?{ORDERED}"),
            r.ordered_api,
            r.ordered_db,
            anchor,
        );
    }
    t.push_str("\nThe ordered page in the engine, as the SQL was ordered and the key index declared before the two were made to agree (PostgreSQL: `ORDER BY lower(name) ASC NULLS FIRST, id ASC NULLS FIRST` on an index `(lower(name), id)`, nulls last; SQLite: the same `NULLS FIRST` spelling on its unchanged index), against today's, measured in the same run:\n\n");
    t.push_str("| engine | before: req/s | p50 ms | after: req/s | p50 ms | after / before |\n| --- | --- | --- | --- | --- | --- |\n");
    for r in results {
        let _ = writeln!(
            t,
            "| {} | {:.0} | {:.2} | {:.0} | {:.2} | **{:.1}** |",
            r.engine,
            r.ordered_before_db.rps,
            r.ordered_before_db.p50_ms,
            r.ordered_db.rps,
            r.ordered_db.p50_ms,
            r.ordered_db.rps / r.ordered_before_db.rps
        );
    }
    crate::write_section(&args.out, "api-bench", &t)?;
    println!("{t}");
    Ok(())
}

/// Runs the API benchmark on each engine and writes its section of the report.
pub async fn run(args: Args) -> Result<()> {
    let mut results = Vec::new();
    for e in &args.engines {
        results.push(
            run_engine(&args, e)
                .await
                .with_context(|| format!("benchmarking {e}"))?,
        );
    }
    write_report(&args, &results)
}
