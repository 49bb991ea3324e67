//! `uplift-bench step2`: step 2 on the demo with 1 000 generated apps and 1 000
//! generated flows, on each engine. The server discovers, rewrites and verifies every
//! item when step 1 ends; measured are items verified per second, the mean and the
//! slowest item (each item's `verification_ms`: its copy's and original's runs), the
//! server's peak RSS, and, side by side in this process, the pure part (discovery:
//! rewrite and static checks of the same definitions) per item.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value as Json, json};
use uplift_model::app::AppDef;
use uplift_model::flow::FlowDef;
use uplift_plan::rewrite::NameMap;
use uplift_upgrade::items::{self, SourceApp, SourceFlow};

use crate::api::{Args, ensure_pg_database, machine, serve};

const APPS: usize = 1000;
const FLOWS: usize = 1000;
const ENV: &str = "contoso";
const OWNERS: [&str; 4] = [
    "admin@uplift.local",
    "alice.maker@contoso.com",
    "bob.maker@contoso.com",
    "carol.maker@contoso.com",
];

struct Row {
    engine: String,
    step1_s: f64,
    verify_s: f64,
    items_per_sec: f64,
    slowest_ms: f64,
    mean_ms: f64,
    peak_rss_mib: f64,
}

/// App `i`: views with filters and orders over flattened and renamed fields, a form.
pub(crate) fn app(i: usize) -> Json {
    let contacts = match i % 3 {
        0 => json!({"name": "Paris contacts", "entity": "Contact",
            "columns": ["FullName", "Email", "Address"], "filter": "Address/city eq 'Paris'"}),
        1 => json!({"name": "Contacts", "entity": "Contact",
            "columns": ["FullName", "Email"], "orderby": "Email"}),
        _ => json!({"name": "Named contacts", "entity": "Contact",
            "columns": ["FullName", "JobTitle"], "filter": "FullName/last_name ne 'x'"}),
    };
    json!({"name": format!("Bench app {i:04}"), "owner": OWNERS[i % OWNERS.len()],
        "views": [contacts,
            {"name": "Accounts", "entity": "Account", "columns": ["Name", "Revenue"]}],
        "forms": [{"name": "Contact", "entity": "Contact", "fields": ["FullName", "Email", "Address"]}]})
}

/// Flow `i`: a record trigger with a flattened filter, or an app command; templates, a write,
/// an e-mail (captured in a dry run).
pub(crate) fn flow(i: usize) -> Json {
    let trigger = if i.is_multiple_of(2) {
        json!({"kind": "record_created", "entity": "Contact", "filter": "Address/city eq 'Oslo'"})
    } else {
        json!({"kind": "app_command", "entity": "Contact"})
    };
    json!({"name": format!("Bench flow {i:04}"), "owner": OWNERS[i % OWNERS.len()],
        "state": "off", "trigger": trigger,
        "steps": [
            {"kind": "create_record", "name": "acct", "entity": "Account",
             "values": {"Name": "Bench @{trigger.record.FullName/last_name}"}},
            {"kind": "send_email", "name": "tell", "to": ["someone@example.test"],
             "subject": "New @{trigger.record.FullName/first_name}"}]})
}

/// A call of the API as `s` = (base URL, admin token).
async fn call(
    c: &reqwest::Client,
    s: &(String, String),
    m: reqwest::Method,
    path: &str,
    body: Option<Json>,
) -> Result<Json> {
    crate::flows::call(c, &s.0, &s.1, m, path, body).await
}

/// Adds the generated apps (published) and flows, unless a previous run did.
async fn seed(c: &reqwest::Client, s: &(String, String)) -> Result<()> {
    let base = format!("/api/environments/{ENV}");
    let have = call(c, s, reqwest::Method::GET, &format!("{base}/flows"), None).await?;
    let n = have["value"].as_array().map_or(0, |v| v.len());
    if n >= FLOWS {
        return Ok(());
    }
    for i in 0..APPS {
        let path = format!("{base}/apps/Bench%20app%20{i:04}");
        call(c, s, reqwest::Method::PUT, &path, Some(app(i))).await?;
        call(
            c,
            s,
            reqwest::Method::POST,
            &format!("{path}/publish"),
            Some(json!({})),
        )
        .await?;
    }
    for i in 0..FLOWS {
        call(
            c,
            s,
            reqwest::Method::POST,
            &format!("{base}/flows"),
            Some(flow(i)),
        )
        .await?;
    }
    Ok(())
}

async fn upgrade(c: &reqwest::Client, s: &(String, String)) -> Result<Json> {
    call(
        c,
        s,
        reqwest::Method::GET,
        &format!("/api/environments/{ENV}/upgrade"),
        None,
    )
    .await
}

/// The server's peak resident set (VmHWM), in MiB.
fn peak_rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmHWM:"))?.to_string();
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

async fn bench(args: &Args, engine: &str) -> Result<Row> {
    let served = serve(args, engine)?;
    let c = reqwest::Client::new();
    let s = (served.url.clone(), served.token.clone());
    let base = format!("/api/environments/{ENV}/upgrade");
    if upgrade(&c, &s)
        .await
        .is_ok_and(|u| u["status"] != "cancelled")
    {
        let _ = call(
            &c,
            &s,
            reqwest::Method::POST,
            &format!("{base}/cancel"),
            Some(json!({})),
        )
        .await;
    }
    eprintln!("  seeding {APPS} apps and {FLOWS} flows");
    seed(&c, &s).await?;
    let start = json!({"plan": "classic-to-modern", "language": "en", "currency": "USD",
        "exchange_rates": {"EUR": 1.08, "GBP": 1.27, "JPY": 0.0067}});
    let t0 = Instant::now();
    call(&c, &s, reqwest::Method::POST, &base, Some(start)).await?;
    loop {
        let u = upgrade(&c, &s).await?;
        if u["status"] == "step2_verifying" {
            break;
        }
        if u["status"] != "step1_running" {
            bail!("step 1 ended as {}", u["status"]);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let step1_s = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let total = loop {
        let u = upgrade(&c, &s).await?;
        if u["items"]["verifying"] == 0 {
            break u["items"]["total"].as_u64().unwrap_or(0);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let verify_s = t1.elapsed().as_secs_f64();
    let list = call(&c, &s, reqwest::Method::GET, &format!("{base}/items"), None).await?;
    let took: Vec<u64> = list["value"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["verification_ms"].as_u64())
        .collect();
    let slowest_ms = took.iter().copied().max().unwrap_or(0) as f64;
    let mean_ms = took.iter().sum::<u64>() as f64 / took.len().max(1) as f64;
    let row = Row {
        engine: engine.into(),
        step1_s,
        verify_s,
        items_per_sec: total as f64 / verify_s,
        slowest_ms,
        mean_ms,
        peak_rss_mib: peak_rss_mib(served.child.id()),
    };
    let _ = call(
        &c,
        &s,
        reqwest::Method::POST,
        &format!("{base}/cancel"),
        Some(json!({})),
    )
    .await;
    Ok(row)
}

/// Discovery of the same definitions in this process: rewrite and static checks only.
fn pure_micros_per_item() -> Result<f64> {
    let source = uplift_model::standard::classic_catalog();
    let text = uplift_plan::builtin("classic-to-modern").context("the shipped plan")?;
    let plan = uplift_plan::parse_plan(text)?;
    let opts = uplift_plan::Options {
        language: "en".into(),
        currency: "USD".into(),
        exchange_rates: [("EUR", "1.08"), ("GBP", "1.27"), ("JPY", "0.0067")]
            .into_iter()
            .map(|(k, v)| Ok((k.to_string(), v.parse()?)))
            .collect::<Result<_>>()?,
    };
    let upgrade = uplift_plan::apply(&plan, &source, &opts)?;
    let apps: Vec<SourceApp> = (0..APPS)
        .map(|i| {
            Ok(SourceApp {
                definition: serde_json::from_value::<AppDef>(app(i))?,
                note: None,
                last_used_at: None,
            })
        })
        .collect::<Result<_>>()?;
    let flows: Vec<SourceFlow> = (0..FLOWS)
        .map(|i| {
            Ok(SourceFlow {
                id: format!("flow-{i}"),
                definition: serde_json::from_value::<FlowDef>(flow(i))?,
                last_run_at: None,
            })
        })
        .collect::<Result<_>>()?;
    let t = Instant::now();
    let map = NameMap::new(&source, &upgrade.target, &upgrade.changes);
    let found = items::discover(
        "00000000-0000-0000-0000-000000000001",
        &apps,
        &flows,
        &map,
        &upgrade.target,
    );
    let micros = t.elapsed().as_secs_f64() * 1e6;
    Ok(micros / found.items.len().max(1) as f64)
}

pub async fn run(args: Args) -> Result<()> {
    let pure = pure_micros_per_item()?;
    let mut rows = Vec::new();
    for engine in &args.engines {
        eprintln!("== step 2 on {engine}");
        if engine == "postgres" {
            ensure_pg_database(&args.postgres)?;
        }
        rows.push(bench(&args, engine).await?);
    }
    let mut t = String::new();
    let _ = writeln!(t, "### Step 2: discovery, rewrite and verification\n");
    let _ = writeln!(
        t,
        "Machine: {}. The demo ({} rows) with {APPS} generated apps (two views, one with a flattened filter, and a form) and {FLOWS} generated flows (a record trigger with a flattened filter or an app command, a write and an e-mail), plus the demo's own 10. Step 1 is timed from the start to `step2_verifying` (discovery included); verification from there until no item is owed one: each app's views run and form loaded, each flow dry-run, the copy on the test database and the original on production, by the server's step 2 worker, two items at a time, each item's copy and original side by side. Mean and slowest item: the items' `verification_ms` (one item's whole verification). Verification ÷ pure: the mean item over the pure part per item. Pure part, in this process on the same definitions: discovery (rewrite and static checks) per item. Command: `bench/step2.sh`.\n",
        machine(),
        args.rows
    );
    t.push_str("| engine | step 1 s | verification s | items/s | mean item ms | slowest item ms | peak RSS MiB | rewrite + static check µs/item | verification ÷ pure |\n");
    t.push_str("| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
    for r in &rows {
        let _ = writeln!(
            t,
            "| {} | {:.1} | {:.1} | {:.1} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0}× |",
            r.engine,
            r.step1_s,
            r.verify_s,
            r.items_per_sec,
            r.mean_ms,
            r.slowest_ms,
            r.peak_rss_mib,
            pure,
            r.mean_ms * 1000.0 / pure
        );
    }
    crate::write_section(&args.out, "step2-bench", &t)?;
    println!("{t}");
    Ok(())
}
