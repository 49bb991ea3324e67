//! `uplift-bench step3`: the lost-write checker of BENCHMARKS.md. For each engine and
//! demo size it takes a fresh copy of the demo, runs steps 1 and 2 through the API, then
//! drives an open-loop load of writes (creates, updates with `If-Match`, deletes, over
//! accounts and products) at a fixed rate through idle time and the whole of step 3.
//! It reports every pause attempt, the held writes' worst wait, write latency during
//! step 3 against idle, and the writes acknowledged against those found afterwards. Then
//! it measures write throughput with change capture on and off, on the same database, in
//! alternating rounds.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use reqwest::{Method, StatusCode};
use serde_json::{Value as Json, json};

use crate::api::{Args, Served, serve_at};
use crate::step1::{RATES, http};

#[derive(clap::Args, Clone)]
pub struct Step3Args {
    #[command(flatten)]
    pub common: Args,
    /// Demo sizes (rows over every entity) to run step 3 on.
    #[arg(long, value_delimiter = ',', default_value = "100000,1000000,5000000")]
    pub sizes: Vec<u64>,
    /// The write load's rate, writes per second.
    #[arg(long, default_value_t = 200)]
    pub writes_per_second: u64,
    /// Seconds of load before step 3 starts (the idle figures).
    #[arg(long, default_value_t = 5)]
    pub idle_seconds: u64,
}

/// The entities the load writes: the set, the field it changes, and a field a create
/// also needs (with a value per write).
const ENTITIES: [(&str, &str, Option<&str>); 2] = [
    ("accounts", "Name", None),
    ("products", "Name", Some("ProductNumber")),
];

/// One record the load made, as it was last acknowledged.
#[derive(Debug, Clone)]
struct Known {
    entity: usize,
    etag: String,
    value: String,
    deleted: bool,
    /// A write to it is under way: no other may take it (its ETag would be stale).
    busy: bool,
}

/// What the load saw.
#[derive(Default, Clone)]
struct Load {
    records: BTreeMap<String, Known>,
    /// (when it started, how long it took) of every acknowledged write.
    latencies: Vec<(Instant, Duration)>,
    refused: Vec<String>,
    acknowledged: u64,
    /// Current names, learnt from the answers after the switch renamed them: each
    /// entity's set, and its fields by their first name.
    sets: Vec<String>,
    fields: Vec<BTreeMap<String, String>>,
}

impl Load {
    fn field(&self, entity: usize, name: &str) -> String {
        self.fields[entity]
            .get(name)
            .cloned()
            .unwrap_or_else(|| name.to_string())
    }

    /// The body of a write of `value` (a create also sets the entity's other field).
    fn body(&self, entity: usize, value: &str, create: bool) -> Json {
        let (_, field, extra) = ENTITIES[entity];
        let mut b = serde_json::Map::new();
        b.insert(self.field(entity, field), json!(value));
        if let (true, Some(extra)) = (create, extra) {
            b.insert(self.field(entity, extra), json!(format!("P-{value}")));
        }
        Json::Object(b)
    }
}

struct Figures {
    engine: String,
    rows: u64,
    pauses: Vec<(u64, String)>,
    writes_held: u64,
    max_write_wait_ms: u64,
    idle: (f64, f64),
    during: (f64, f64),
    step3_s: f64,
    /// Writes acknowledged; records they left, looked up; those found as acknowledged.
    acknowledged: u64,
    records: u64,
    found: u64,
    lost: u64,
    refused: usize,
    capture_ratio: f64,
    revert: RevertFigures,
}

/// The revert of the completed upgrade under the same load.
#[derive(Default)]
struct RevertFigures {
    pauses: Vec<(u64, String)>,
    writes_held: u64,
    max_write_wait_ms: u64,
    during: (f64, f64),
    revert_s: f64,
    records: u64,
    found: u64,
    lost: u64,
    refused: usize,
}

/// Each pause attempt of a `pause` report: (ms, outcome).
fn pauses_of(pause: &Json) -> Vec<(u64, String)> {
    pause["attempts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            (
                p["ms"].as_u64().unwrap_or(0),
                p["outcome"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect()
}

/// Reverts the completed upgrade while the load writes again (2 s before, 1 s after),
/// then looks up every record the load ever wrote, on the old production.
async fn revert_under_load(
    a: &Step3Args,
    client: &reqwest::Client,
    served: &Arc<Served>,
    load: &Arc<Mutex<Load>>,
) -> Result<RevertFigures> {
    let refused_before = load.lock().unwrap().refused.len();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let driver = tokio::spawn(drive(
        served.clone(),
        load.clone(),
        a.writes_per_second,
        stop.clone(),
    ));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let began = Instant::now();
    let body = json!({"reason": "the lost-write checker", "pause_budget_ms": 2000});
    let path = "/api/environments/contoso/upgrade/revert";
    http(client, served, Method::POST, path, &body.to_string())
        .await
        .context("starting the revert")?;
    let end = wait_status(client, served, |v| v["status"] != "revert_running").await?;
    let ended = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    driver.await?;
    if end["status"] != "reverted" {
        bail!(
            "the revert ended as {}: {}",
            end["status"],
            end["step3"]["revert"]["failure"]
        );
    }
    let l = load.lock().unwrap().clone();
    let (records, found) = verify(client, served, &l).await?;
    let r = &end["step3"]["revert"];
    let during = l
        .latencies
        .iter()
        .filter(|(at, _)| *at >= began && *at < ended)
        .map(|(_, d)| *d)
        .collect();
    Ok(RevertFigures {
        pauses: pauses_of(&r["pause"]),
        writes_held: r["pause"]["writes_held"].as_u64().unwrap_or(0),
        max_write_wait_ms: r["pause"]["max_write_wait_ms"].as_u64().unwrap_or(0),
        during: percentiles(during),
        revert_s: (ended - began).as_secs_f64(),
        records,
        found,
        lost: records - found,
        refused: l.refused.len() - refused_before,
    })
}

async fn call(
    client: &reqwest::Client,
    s: &Served,
    method: Method,
    path: &str,
    body: Option<&Json>,
    if_match: Option<&str>,
) -> Result<(StatusCode, Option<String>, Json)> {
    let mut req = client
        .request(method, format!("{}{path}", s.url))
        .bearer_auth(&s.token);
    if let Some(b) = body {
        req = req.json(b);
    }
    if let Some(tag) = if_match {
        req = req.header("If-Match", tag);
    }
    let resp = req.send().await?;
    let status = resp.status();
    let etag = resp
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = resp.json().await.unwrap_or(Json::Null);
    Ok((status, etag, body))
}

/// The old and new name an answer gives (`'tickets' is now 'cr_tickets'`, `property
/// 'Name' of accounts is now 'name'`).
fn renamed(body: &Json) -> Option<(String, String)> {
    let msg = body["error"]["message"].as_str()?;
    let quoted = |s: &str| -> Option<String> {
        let rest = &s[s.find('\'')? + 1..];
        Some(rest[..rest.find('\'')?].to_string())
    };
    let now = msg.find("is now ")?;
    Some((quoted(msg)?, quoted(&msg[now..])?))
}

/// One write of the load, chosen by `n`: creates, updates of a live record with its
/// ETag, and deletes, over both entities. A write told an entity set or field was
/// renamed by the switch learns the new name and is sent again.
async fn one_write(client: &reqwest::Client, s: &Served, load: &Mutex<Load>, n: u64) {
    let entity = (n as usize / 4) % ENTITIES.len();
    let target = (n % 4 >= 2)
        .then(|| take(&mut load.lock().unwrap(), entity, n))
        .flatten();
    let kind = match (n % 4, &target) {
        (2, Some(_)) => Method::PATCH,
        (3, Some(_)) => Method::DELETE,
        _ => Method::POST,
    };
    let value = format!("w{n}");
    for _ in 0..3 {
        let (set, body) = {
            let l = load.lock().unwrap();
            let body =
                (kind != Method::DELETE).then(|| l.body(entity, &value, kind == Method::POST));
            (l.sets[entity].clone(), body)
        };
        let path = match &target {
            Some((id, _)) if kind != Method::POST => format!("{set}({id})"),
            _ => set.clone(),
        };
        let path = format!("/api/environments/contoso/data/{path}");
        let tag = target
            .as_ref()
            .filter(|_| kind != Method::POST)
            .map(|(_, t)| t.as_str());
        let t0 = Instant::now();
        let answer = call(client, s, kind.clone(), &path, body.as_ref(), tag).await;
        let took = t0.elapsed();
        let mut l = load.lock().unwrap();
        let (status, etag, answer) = match answer {
            Ok(a) => a,
            Err(e) => {
                l.refused.push(format!("{kind} {path}: {e}"));
                break;
            }
        };
        if matches!(status, StatusCode::NOT_FOUND | StatusCode::BAD_REQUEST)
            && let Some((old, new)) = renamed(&answer)
        {
            match status {
                StatusCode::NOT_FOUND => l.sets[entity] = new,
                _ => {
                    let first = l.fields[entity]
                        .iter()
                        .find(|(_, now)| **now == old)
                        .map(|(f, _)| f.clone());
                    l.fields[entity].insert(first.unwrap_or(old), new);
                }
            }
            continue;
        }
        if !status.is_success() {
            l.refused.push(format!("{kind} {path}: {status} {answer}"));
            break;
        }
        l.acknowledged += 1;
        l.latencies.push((t0, took));
        let etag = etag.unwrap_or_default();
        match (&kind, &target) {
            (&Method::POST, _) => {
                let id = answer["id"].as_str().unwrap_or_default().to_string();
                let k = Known {
                    entity,
                    etag,
                    value: value.clone(),
                    deleted: false,
                    busy: false,
                };
                l.records.insert(id, k);
            }
            (_, Some((id, _))) => {
                if let Some(k) = l.records.get_mut(id) {
                    match kind == Method::DELETE {
                        true => k.deleted = true,
                        false => (k.etag, k.value) = (etag, value.clone()),
                    }
                }
            }
            _ => {}
        }
        break;
    }
    if let Some((id, _)) = &target
        && let Some(k) = load.lock().unwrap().records.get_mut(id)
    {
        k.busy = false;
    }
}

/// A live record of `entity` no other write holds, marked as held: (id, its ETag).
fn take(l: &mut Load, entity: usize, n: u64) -> Option<(String, String)> {
    let free: Vec<&String> = l
        .records
        .iter()
        .filter(|(_, k)| k.entity == entity && !k.deleted && !k.busy)
        .map(|(id, _)| id)
        .collect();
    let id = (*free.get((n as usize * 7919) % free.len().max(1))?).clone();
    let k = l.records.get_mut(&id)?;
    k.busy = true;
    Some((id, k.etag.clone()))
}

/// Sends writes at `per_second` until `stop`, each in its own task (open loop: a slow
/// write does not slow the rate).
async fn drive(
    s: Arc<Served>,
    load: Arc<Mutex<Load>>,
    per_second: u64,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    let client = reqwest::Client::new();
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / per_second.max(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = tokio::task::JoinSet::new();
    let mut n = 0u64;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        tick.tick().await;
        let (c, s, l) = (client.clone(), s.clone(), load.clone());
        tasks.spawn(async move { one_write(&c, &s, &l, n).await });
        n += 1;
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
}

/// p50 and p99 of `samples`, in milliseconds.
fn percentiles(mut samples: Vec<Duration>) -> (f64, f64) {
    if samples.is_empty() {
        return (0.0, 0.0);
    }
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize].as_secs_f64() * 1000.0;
    (at(0.50), at(0.99))
}

async fn wait_status(
    client: &reqwest::Client,
    s: &Served,
    done: impl Fn(&Json) -> bool,
) -> Result<Json> {
    loop {
        let v = http(
            client,
            s,
            Method::GET,
            "/api/environments/contoso/upgrade",
            "",
        )
        .await?;
        if done(&v) {
            return Ok(v);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every record the load made, looked up now: (acknowledged, found as acknowledged).
async fn verify(client: &reqwest::Client, s: &Served, load: &Load) -> Result<(u64, u64)> {
    let (mut expected, mut found) = (0, 0);
    for (id, k) in &load.records {
        expected += 1;
        let path = format!(
            "/api/environments/contoso/data/{}({id})",
            load.sets[k.entity]
        );
        let (status, _, body) = call(client, s, Method::GET, &path, None, None).await?;
        let ok = match k.deleted {
            true => status == StatusCode::NOT_FOUND,
            false => {
                status.is_success()
                    && body[load.field(k.entity, ENTITIES[k.entity].1)] == json!(k.value)
            }
        };
        found += u64::from(ok);
        if !ok {
            eprintln!("  LOST {path}: expected {k:?}, got {status} {body}");
        }
    }
    Ok((expected, found))
}

/// A fresh copy of the demo of `rows` rows (made once and kept; generation is slow):
/// the data directory, and on PostgreSQL a database made from it as a template.
fn fresh_copy(args: &Args, engine: &str, rows: u64) -> Result<(PathBuf, Option<String>)> {
    let root = args.data_dir.join("step3");
    let pristine = root.join(format!("{engine}-{rows}"));
    let base = args
        .postgres
        .rsplit_once('/')
        .map_or(args.postgres.as_str(), |(b, _)| b)
        .to_string();
    let pristine_db = format!("uplift_bench_s3_{rows}");
    let url = |db: &str| format!("{base}/{db}");
    let psql = |sql: &str| -> Result<()> {
        let ok = Command::new("psql")
            .args([args.postgres.as_str(), "-qc", sql])
            .status()?;
        if !ok.success() {
            bail!("psql: {sql}");
        }
        Ok(())
    };
    if !pristine.join("admin.token").exists() {
        eprintln!(
            "  generating the {rows}-row demo on {engine} (kept in {})",
            pristine.display()
        );
        let _ = std::fs::remove_dir_all(&pristine);
        if engine == "postgres" {
            psql(&format!(
                "DROP DATABASE IF EXISTS {pristine_db} WITH (FORCE)"
            ))?;
            psql(&format!("CREATE DATABASE {pristine_db}"))?;
        }
        let db = (engine == "postgres").then(|| url(&pristine_db));
        drop(serve_at(args, &pristine, db.as_deref(), rows)?);
    }
    let run = root.join(format!("{engine}-run"));
    let _ = std::fs::remove_dir_all(&run);
    let ok = Command::new("cp")
        .arg("-a")
        .arg(&pristine)
        .arg(&run)
        .status()?;
    if !ok.success() {
        bail!("copying {}", pristine.display());
    }
    if engine != "postgres" {
        return Ok((run, None));
    }
    psql("DROP DATABASE IF EXISTS uplift_bench_s3_run WITH (FORCE)")?;
    psql(&format!(
        "CREATE DATABASE uplift_bench_s3_run TEMPLATE {pristine_db}"
    ))?;
    Ok((run, Some(url("uplift_bench_s3_run"))))
}

/// Record creates per second through the store's write path, `CAPTURE_WRITERS` at a
/// time, for `seconds`.
async fn creates_per_second(db: &Arc<uplift_store::EnvDb>, seconds: f64) -> Result<f64> {
    const CAPTURE_WRITERS: usize = 4;
    let entity = db
        .catalog()
        .entities
        .iter()
        .find(|e| e.set_name == "accounts")
        .cloned()
        .context("the demo has accounts")?;
    let actor = uplift_store::records::Actor::person("bench@uplift.local");
    let field = entity
        .fields
        .iter()
        .find(|f| f.name.eq_ignore_ascii_case("name"))
        .map(|f| f.name.clone())
        .unwrap_or_else(|| "name".into());
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    let count = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..CAPTURE_WRITERS {
        let (db, entity, actor, field, count) = (
            db.clone(),
            entity.clone(),
            actor.clone(),
            field.clone(),
            count.clone(),
        );
        tasks.spawn(async move {
            let mut i = 0u64;
            while Instant::now() < until {
                let mut input = serde_json::Map::new();
                input.insert(field.clone(), json!(format!("capture {w} {i}")));
                uplift_store::records::insert(&db, &entity, &input, &actor).await?;
                count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                i += 1;
            }
            anyhow::Ok(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    Ok(count.load(std::sync::atomic::Ordering::Relaxed) as f64 / seconds)
}

/// Write throughput with change capture on against off, on the same database, in
/// alternating rounds (off, on, off, on): the median of on over the median of off.
async fn capture_ratio(dir: &Path, database: Option<&str>) -> Result<f64> {
    let backend = match database {
        Some(url) => uplift_store::Backend::Postgres {
            url: url.to_string(),
        },
        None => uplift_store::Backend::Sqlite {
            data_dir: dir.to_path_buf(),
        },
    };
    let store = uplift_store::Store::open(backend).await?;
    let db = store.env_db("contoso").await?;
    let (mut off, mut on) = (Vec::new(), Vec::new());
    for round in 0..4 {
        let capture = round % 2 == 1;
        match capture {
            true => uplift_store::capture::install(&db).await?,
            false => uplift_store::capture::remove(&db).await?,
        }
        let rate = creates_per_second(&db, 3.0).await?;
        eprintln!(
            "  capture {}: {rate:.0} creates/s",
            if capture { "on" } else { "off" }
        );
        if capture {
            on.push(rate)
        } else {
            off.push(rate)
        }
    }
    uplift_store::capture::remove(&db).await?;
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (v[(v.len() - 1) / 2] + v[v.len() / 2]) / 2.0
    };
    Ok(median(on) / median(off))
}

/// Steps 1 and 2, then step 3 under the load, on a fresh copy of the demo.
async fn one_run(a: &Step3Args, engine: &str, rows: u64) -> Result<Figures> {
    let (dir, database) = fresh_copy(&a.common, engine, rows)?;
    let served = Arc::new(serve_at(&a.common, &dir, database.as_deref(), rows)?);
    let client = reqwest::Client::new();
    let start = json!({"plan": "classic-to-modern", "language": "en", "currency": "USD",
        "exchange_rates": serde_json::from_str::<Json>(RATES)?});
    let upgrade = "/api/environments/contoso/upgrade";
    http(&client, &served, Method::POST, upgrade, &start.to_string())
        .await
        .context("starting step 1")?;
    wait_status(&client, &served, |v| {
        v["status"] == "step2_verifying" && v["items"]["verifying"] == 0
    })
    .await?;
    let load = Arc::new(Mutex::new(Load {
        sets: ENTITIES.iter().map(|(s, _, _)| s.to_string()).collect(),
        fields: vec![BTreeMap::new(); ENTITIES.len()],
        ..Load::default()
    }));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let driver = tokio::spawn(drive(
        served.clone(),
        load.clone(),
        a.writes_per_second,
        stop.clone(),
    ));
    tokio::time::sleep(Duration::from_secs(a.idle_seconds)).await;
    let began = Instant::now();
    let complete =
        json!({"pause_budget_ms": 2000, "override": {"reason": "the lost-write checker"}});
    let path = "/api/environments/contoso/upgrade/complete";
    http(&client, &served, Method::POST, path, &complete.to_string())
        .await
        .context("starting step 3")?;
    let end = wait_status(&client, &served, |v| v["status"] != "step3_running").await?;
    let ended = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    driver.await?;
    if end["status"] != "completed" {
        bail!(
            "step 3 ended as {}: {}",
            end["status"],
            end["step3"]["failure"]
        );
    }
    let l = load.lock().unwrap().clone();
    let (expected, found) = verify(&client, &served, &l).await?;
    let t = &end["step3"];
    let pauses = pauses_of(&t["pause"]);
    let window = |from: Instant, to: Instant| {
        l.latencies
            .iter()
            .filter(|(at, _)| *at >= from && *at < to)
            .map(|(_, d)| *d)
            .collect::<Vec<_>>()
    };
    let figures = Figures {
        engine: engine.to_string(),
        rows,
        pauses,
        writes_held: t["pause"]["writes_held"].as_u64().unwrap_or(0),
        max_write_wait_ms: t["pause"]["max_write_wait_ms"].as_u64().unwrap_or(0),
        idle: percentiles(window(began - Duration::from_secs(a.idle_seconds), began)),
        during: percentiles(window(began, ended)),
        step3_s: (ended - began).as_secs_f64(),
        acknowledged: l.acknowledged,
        records: expected,
        found,
        lost: expected - found,
        refused: l.refused.len(),
        capture_ratio: 0.0,
        revert: RevertFigures::default(),
    };
    for r in l.refused.iter().take(5) {
        eprintln!("  REFUSED {r}");
    }
    let revert = revert_under_load(a, &client, &served, &load).await?;
    drop(served);
    let capture_ratio = capture_ratio(&dir, database.as_deref()).await?;
    Ok(Figures {
        capture_ratio,
        revert,
        ..figures
    })
}

/// Runs every engine and size and writes the section of the report.
pub async fn run(a: Step3Args) -> Result<()> {
    let mut all = Vec::new();
    for engine in &a.common.engines {
        for &rows in &a.sizes {
            eprintln!(
                "== step 3 on {engine}, {rows} demo rows, {} writes/s",
                a.writes_per_second
            );
            let f = one_run(&a, engine, rows)
                .await
                .with_context(|| format!("step 3 on {engine} at {rows} rows"))?;
            eprintln!(
                "  pauses {:?}, held {} (worst {} ms), lost {}, refused {}; revert pauses {:?}, lost {}, refused {}",
                f.pauses,
                f.writes_held,
                f.max_write_wait_ms,
                f.lost,
                f.refused,
                f.revert.pauses,
                f.revert.lost,
                f.revert.refused
            );
            all.push(f);
        }
    }
    crate::write_section(&a.common.out, "step3-bench", &report(&a, &all))
}

fn report(a: &Step3Args, all: &[Figures]) -> String {
    let mut s = format!(
        "### Step 3 under load ({} writes/s)\n\nMachine: {}. Each run takes a fresh copy of the demo, runs steps 1 and 2 through the API, then sends {} writes/s (creates, updates with `If-Match`, deletes, over accounts and products; each write its own request, open loop) for {} s idle and through the whole of step 3 (pause budget 2000 ms), then looks up every record it wrote. Capture on/off: record creates through the store's write path, 4 writers, 3 s rounds off, on, off, on, on the same database; the median of on over off. Command: `bench/step3.sh`.\n\n",
        a.writes_per_second,
        crate::api::machine(),
        a.writes_per_second,
        a.idle_seconds
    );
    s.push_str("| engine | demo rows | pause ms (each attempt) | writes held | worst held wait ms | write p50/p99 ms idle | write p50/p99 ms in step 3 | step 3 s | writes acknowledged | records checked | found as acknowledged | lost | refused | creates/s capture on / off |\n");
    s.push_str(
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    for f in all {
        let pauses: Vec<String> = f
            .pauses
            .iter()
            .map(|(ms, o)| format!("{ms} ({o})"))
            .collect();
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {:.1} / {:.1} | {:.1} / {:.1} | {:.1} | {} | {} | {} | {} | {} | {:.2} |",
            f.engine,
            f.rows,
            pauses.join(", "),
            f.writes_held,
            f.max_write_wait_ms,
            f.idle.0,
            f.idle.1,
            f.during.0,
            f.during.1,
            f.step3_s,
            f.acknowledged,
            f.records,
            f.found,
            f.lost,
            f.refused,
            f.capture_ratio
        );
    }
    s.push_str("\n#### The revert, under the same load\n\nAfter the table's run, the load writes again for 2 s, the completed upgrade is reverted (pause budget 2000 ms), the load goes on 1 s, and every record it ever wrote is looked up on the old production with the classic names (the load learns them back from the answers).\n\n");
    s.push_str("| engine | demo rows | revert pause ms (each attempt) | writes held | worst held wait ms | write p50/p99 ms in the revert | revert s | records checked | found as acknowledged | lost | refused |\n");
    s.push_str("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
    for f in all {
        let r = &f.revert;
        let pauses: Vec<String> = r
            .pauses
            .iter()
            .map(|(ms, o)| format!("{ms} ({o})"))
            .collect();
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {:.1} / {:.1} | {:.1} | {} | {} | {} | {} |",
            f.engine,
            f.rows,
            pauses.join(", "),
            r.writes_held,
            r.max_write_wait_ms,
            r.during.0,
            r.during.1,
            r.revert_s,
            r.records,
            r.found,
            r.lost,
            r.refused
        );
    }
    s
}
