//! `uplift-bench flows`: record-triggered flow runs end to end (an API write, its
//! outbox entry, the run, its step) on each engine: the most runs per second the
//! runtime finishes under a burst of writes, and the lag from commit to finished run
//! under a steady write load at half that rate.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde_json::{Value as Json, json};

use crate::api::{Args, ensure_pg_database, machine, percentile, serve};

/// Writes in the burst.
const BURST: usize = 2000;
/// Concurrent writers in the burst.
const WRITERS: usize = 16;
/// Seconds of steady load.
const STEADY_SECS: u64 = 10;
const ENV: &str = "flowbench";

struct Row {
    engine: String,
    runs_per_sec: f64,
    steady_rate: f64,
    lag_p50_ms: f64,
    lag_p99_ms: f64,
}

pub(crate) async fn call(
    c: &reqwest::Client,
    base: &str,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Json>,
) -> Result<Json> {
    let mut r = c
        .request(method, format!("{base}{path}"))
        .bearer_auth(token);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await?;
    let status = resp.status();
    let v: Json = resp.json().await.unwrap_or(Json::Null);
    if !status.is_success() {
        bail!("{path}: {status} {v}");
    }
    Ok(v)
}

fn instant(s: &str) -> Option<time::OffsetDateTime> {
    uplift_model::value::parse_instant(s)
}

/// Runs of the flow, up to `top`.
async fn runs(c: &reqwest::Client, base: &str, token: &str, flow: &str) -> Result<Vec<Json>> {
    let v = call(
        c,
        base,
        token,
        reqwest::Method::GET,
        &format!("/api/environments/{ENV}/flows/{flow}/runs?top=100000"),
        None,
    )
    .await?;
    Ok(v["value"].as_array().cloned().unwrap_or_default())
}

async fn wait_finished(
    c: &reqwest::Client,
    base: &str,
    token: &str,
    flow: &str,
    n: usize,
) -> Result<Vec<Json>> {
    for _ in 0..6000 {
        let r = runs(c, base, token, flow).await?;
        let done = r
            .iter()
            .filter(|r| r["status"] == "succeeded" || r["status"] == "failed")
            .count();
        if done >= n {
            return Ok(r);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bail!("the runs did not finish")
}

async fn bench(args: &Args, engine: &str) -> Result<Row> {
    let served = serve(args, engine)?;
    let c = reqwest::Client::new();
    let (base, token) = (served.url.clone(), served.token.clone());
    let _ = call(
        &c,
        &base,
        &token,
        reqwest::Method::DELETE,
        &format!("/api/environments/{ENV}"),
        None,
    )
    .await;
    call(
        &c,
        &base,
        &token,
        reqwest::Method::POST,
        "/api/environments",
        Some(json!({"name": ENV, "security_mode": "open"})),
    )
    .await?;
    let flow = call(
        &c,
        &base,
        &token,
        reqwest::Method::POST,
        &format!("/api/environments/{ENV}/flows"),
        Some(json!({
            "name": "Note the name", "owner": "admin@uplift.local",
            "trigger": {"kind": "record_created", "entity": "Account"},
            "steps": [{"kind": "set_variable", "name": "n", "variable": "name", "value": "@{trigger.record.Name}"}]
        })),
    )
    .await?;
    let flow = flow["id"].as_str().unwrap_or_default().to_string();
    let (wc, wbase, wtoken) = (c.clone(), base.clone(), token.clone());
    let write = move |i: usize| {
        let (c, base, token) = (wc.clone(), wbase.clone(), wtoken.clone());
        async move {
            call(
                &c,
                &base,
                &token,
                reqwest::Method::POST,
                &format!("/api/environments/{ENV}/data/accounts"),
                Some(json!({"Name": format!("Account {i}")})),
            )
            .await
        }
    };

    // Burst: as many writes as the writers manage; time until every run finished.
    let t0 = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..WRITERS {
        let next = next.clone();
        let write = write.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= BURST {
                    return Ok::<_, anyhow::Error>(());
                }
                write(i).await?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    wait_finished(&c, &base, &token, &flow, BURST).await?;
    let runs_per_sec = BURST as f64 / t0.elapsed().as_secs_f64();

    // Steady: half that rate, evenly spaced; lag from commit to finished run.
    let rate = (runs_per_sec / 2.0).max(1.0);
    let n = (rate * STEADY_SECS as f64) as usize;
    let gap = Duration::from_secs_f64(1.0 / rate);
    let start = Instant::now();
    let mut writers = Vec::new();
    for i in 0..n {
        let due = start + gap * i as u32;
        tokio::time::sleep_until(due.into()).await;
        writers.push(tokio::spawn(write(BURST + i)));
    }
    for w in writers {
        w.await??;
    }
    let all = wait_finished(&c, &base, &token, &flow, BURST + n).await?;
    let mut lags: Vec<Duration> = all
        .iter()
        .filter(|r| {
            r["trigger"]["record"]["Name"]
                .as_str()
                .and_then(|s| s.strip_prefix("Account "))
                .and_then(|i| i.parse::<usize>().ok())
                .is_some_and(|i| i >= BURST)
        })
        .filter_map(|r| {
            let from = instant(r["trigger"]["time"].as_str()?)?;
            let to = instant(r["finished_at"].as_str()?)?;
            Some(Duration::from_secs_f64(
                (to - from).as_seconds_f64().max(0.0),
            ))
        })
        .collect();
    lags.sort();
    Ok(Row {
        engine: engine.into(),
        runs_per_sec,
        steady_rate: rate,
        lag_p50_ms: percentile(&lags, 0.5),
        lag_p99_ms: percentile(&lags, 0.99),
    })
}

pub async fn run(args: Args) -> Result<()> {
    let mut rows = Vec::new();
    for engine in &args.engines {
        eprintln!("== flow runs on {engine}");
        if engine == "postgres" {
            ensure_pg_database(&args.postgres)?;
        }
        rows.push(bench(&args, engine).await?);
    }
    let mut t = String::new();
    let _ = writeln!(t, "### Record-triggered flow runs\n");
    let _ = writeln!(
        t,
        "Machine: {}. A flow on `Account` created with one step; {BURST} API writes from {WRITERS} concurrent clients, timed until every run finished (write → outbox → run → step recorded); then {STEADY_SECS} s of evenly spaced writes at half that rate, with the lag from the write (its outbox entry, stamped in the write's transaction) to its run's end, in whole milliseconds. Server and client share the machine. Command: `bench/flows.sh`.\n",
        machine()
    );
    t.push_str("| engine | runs/s (burst, end to end) | steady load writes/s | lag p50 ms | lag p99 ms |\n");
    t.push_str("| --- | --- | --- | --- | --- |\n");
    for r in &rows {
        let _ = writeln!(
            t,
            "| {} | {:.0} | {:.0} | {:.1} | {:.1} |",
            r.engine, r.runs_per_sec, r.steady_rate, r.lag_p50_ms, r.lag_p99_ms
        );
    }
    crate::write_section(&args.out, "flows-bench", &t)?;
    println!("{t}");
    Ok(())
}
