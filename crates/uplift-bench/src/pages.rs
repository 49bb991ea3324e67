//! `uplift-bench pages`: how long each page of the web UI takes to answer on the demo
//! at its default size, on each engine, through a signed-in session as a browser
//! sends it: the admin center, the wizard and its preview, the upgrade page in each
//! state (step 1 running, step 2's report and dashboard, completed with the revert's
//! preview), the audit log, a maker's items and item page, the app player (views,
//! a form, the copy on the test database), flows and approvals. Each page is asked
//! for `SAMPLES` times in turn; the table gives the median, the 95th percentile and
//! the slowest, against the 100 ms target.

use std::fmt::Write as _;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use reqwest::{Client, Method, StatusCode, redirect};
use serde_json::{Value as Json, json};

use crate::api::{Args, machine, percentile, serve_at};
use crate::flows::call;

/// Requests per page.
const SAMPLES: usize = 20;
/// The target every page is held to.
const TARGET_MS: f64 = 100.0;
const ENV: &str = "contoso";
const DATABASE: &str = "uplift_bench_pages";

struct Row {
    engine: String,
    page: String,
    median_ms: f64,
    p95_ms: f64,
    max_ms: f64,
    kib: f64,
}

/// A signed-in browser: the session cookie of one user.
struct Browser {
    client: Client,
    base: String,
    cookie: String,
}

impl Browser {
    async fn sign_in(base: &str, token: &str) -> Result<Browser> {
        let client = Client::builder()
            .redirect(redirect::Policy::none())
            .build()?;
        let resp = client
            .post(format!("{base}/signin"))
            .form(&[("token", token), ("next", "/")])
            .send()
            .await?;
        let cookie = resp
            .headers()
            .get(reqwest::header::SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .and_then(|c| c.split(';').next())
            .context("no session cookie from /signin")?
            .to_string();
        Ok(Browser {
            client,
            base: base.into(),
            cookie,
        })
    }

    /// One page: its time and size; anything but a 200 fails the run.
    async fn get(&self, path: &str) -> Result<(Duration, usize)> {
        let t = Instant::now();
        let resp = (self.client.get(format!("{}{path}", self.base)))
            .header(reqwest::header::COOKIE, &self.cookie)
            .send()
            .await?;
        let status = resp.status();
        let body = resp.bytes().await?;
        let took = t.elapsed();
        if status != StatusCode::OK {
            bail!("{path}: {status}: {}", String::from_utf8_lossy(&body));
        }
        Ok((took, body.len()))
    }

    /// `SAMPLES` requests of `path`, in turn, as a table row.
    async fn measure(&self, engine: &str, label: &str, path: &str) -> Result<Row> {
        let mut times = Vec::with_capacity(SAMPLES);
        let mut size = 0;
        for _ in 0..SAMPLES {
            let (t, n) = self.get(path).await?;
            times.push(t);
            size = n;
        }
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        Ok(Row {
            engine: engine.into(),
            page: label.into(),
            median_ms: percentile(&times, 0.5),
            p95_ms: percentile(&times, 0.95),
            max_ms: times.last().copied().map_or(0.0, ms),
            kib: size as f64 / 1024.0,
        })
    }
}

/// A fresh PostgreSQL database for the pages' demo.
fn fresh_pg_database(admin: &str) -> Result<String> {
    for sql in [
        format!("DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"),
        format!("CREATE DATABASE {DATABASE}"),
    ] {
        let ok = Command::new("psql").args([admin, "-qc", &sql]).status()?;
        if !ok.success() {
            bail!("psql: {sql} failed");
        }
    }
    let base = admin.rsplit_once('/').map_or(admin, |(b, _)| b);
    Ok(format!("{base}/{DATABASE}"))
}

async fn status(c: &Client, s: &(String, String)) -> Result<Json> {
    let path = format!("/api/environments/{ENV}/upgrade");
    call(c, &s.0, &s.1, Method::GET, &path, None).await
}

/// Waits until the upgrade's status is `want`.
async fn until(c: &Client, s: &(String, String), want: &str) -> Result<()> {
    for _ in 0..3000 {
        let u = status(c, s).await?;
        if u["status"] == want && u["items"]["verifying"].as_u64().unwrap_or(0) == 0 {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the upgrade never reached {want}")
}

async fn bench(args: &Args, engine: &str) -> Result<Vec<Row>> {
    let dir = args.data_dir.join(format!("pages-{engine}"));
    let _ = std::fs::remove_dir_all(&dir);
    let database = match engine {
        "postgres" => Some(fresh_pg_database(&args.postgres)?),
        _ => None,
    };
    let served = serve_at(args, &dir, database.as_deref(), args.rows)?;
    let c = Client::new();
    let s = (served.url.clone(), served.token.clone());
    let token_of = |user: &str| {
        let (c, s) = (c.clone(), s.clone());
        let body = json!({"user": user});
        async move {
            let t = call(&c, &s.0, &s.1, Method::POST, "/api/tokens", Some(body)).await?;
            Ok::<_, anyhow::Error>(t["token"].as_str().unwrap_or_default().to_string())
        }
    };
    let admin = Browser::sign_in(&s.0, &s.1).await?;
    let alice = Browser::sign_in(&s.0, &token_of("alice.maker@contoso.com").await?).await?;
    let dave = Browser::sign_in(&s.0, &token_of("dave@contoso.com").await?).await?;
    let contact = call(
        &c,
        &s.0,
        &s.1,
        Method::GET,
        &format!("/api/environments/{ENV}/data/contacts?$top=1&$select=id"),
        None,
    )
    .await?["value"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let upgrade = format!("/admin/environments/{ENV}/upgrade");
    let hub = format!("/apps/{ENV}/Sales%20Hub");
    let mut rows = Vec::new();
    let pages: [(&Browser, &str, String); 11] = [
        (&admin, "admin center", "/admin".into()),
        (&admin, "environment", format!("/admin/environments/{ENV}")),
        (&admin, "wizard", upgrade.clone()),
        (
            &admin,
            "wizard preview",
            format!("{upgrade}?plan=classic-to-modern&language=en&currency=USD"),
        ),
        (&dave, "apps", "/apps".into()),
        (&dave, "app", hub.clone()),
        (
            &dave,
            "view: accounts by city",
            format!("{hub}/views/Accounts%20by%20city"),
        ),
        (
            &dave,
            "view: sorted, page 1",
            format!("{hub}/views/Contacts?sort=Email&desc=true"),
        ),
        (&dave, "form", format!("{hub}/forms/Contact/{contact}")),
        (&alice, "my flows", "/maker/flows".into()),
        (&dave, "approvals", "/approvals".into()),
    ];
    for (who, label, path) in &pages {
        rows.push(who.measure(engine, label, path).await?);
    }

    let start = json!({"plan": "classic-to-modern", "language": "en", "currency": "USD",
        "exchange_rates": {"EUR": 1.08, "GBP": 1.27, "JPY": 0.0067}});
    let base = format!("/api/environments/{ENV}/upgrade");
    call(&c, &s.0, &s.1, Method::POST, &base, Some(start)).await?;
    rows.push(admin.measure(engine, "step 1 running", &upgrade).await?);
    until(&c, &s, "step2_verifying").await?;
    let items = call(&c, &s.0, &s.1, Method::GET, &format!("{base}/items"), None).await?;
    let hub_item = (items["value"].as_array().into_iter().flatten())
        .find(|i| i["name"] == "Sales Hub")
        .and_then(|i| i["id"].as_str())
        .unwrap_or_default()
        .to_string();
    let step2: [(&Browser, &str, String); 6] = [
        (&admin, "step 2: report and dashboard", upgrade.clone()),
        (&admin, "audit log", format!("{upgrade}/log")),
        (&alice, "my items", "/maker".into()),
        (
            &alice,
            "item",
            format!("/maker/environments/{ENV}/items/{hub_item}"),
        ),
        (
            &alice,
            "app copy (test database)",
            format!("{hub}?copy=true"),
        ),
        (
            &alice,
            "copy's view (test database)",
            format!("{hub}/views/Contacts?copy=true"),
        ),
    ];
    for (who, label, path) in &step2 {
        rows.push(who.measure(engine, label, path).await?);
    }
    let complete = json!({"override": {"reason": "page bench"}});
    call(
        &c,
        &s.0,
        &s.1,
        Method::POST,
        &format!("{base}/complete"),
        Some(complete),
    )
    .await?;
    until(&c, &s, "completed").await?;
    rows.push(
        admin
            .measure(engine, "completed, with the revert's preview", &upgrade)
            .await?,
    );
    rows.push(
        dave.measure(
            engine,
            "view after the upgrade",
            &format!("{hub}/views/Contacts"),
        )
        .await?,
    );
    drop(served);
    Ok(rows)
}

fn table(rows: &[Row]) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "\nMachine: {}. Demo rows: the demo's default; {SAMPLES} requests per page, one at a time; `bench/pages.sh`.\n",
        machine()
    );
    let _ = writeln!(
        t,
        "| engine | page | median ms | p95 ms | slowest ms | KiB | under {TARGET_MS:.0} ms |"
    );
    let _ = writeln!(t, "| --- | --- | --- | --- | --- | --- | --- |");
    for r in rows {
        let ok = if r.max_ms < TARGET_MS { "yes" } else { "NO" };
        let _ = writeln!(
            t,
            "| {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {ok} |",
            r.engine, r.page, r.median_ms, r.p95_ms, r.max_ms, r.kib
        );
    }
    t
}

pub async fn run(args: Args) -> Result<()> {
    let mut rows = Vec::new();
    for engine in &args.engines {
        eprintln!("pages on {engine}");
        rows.extend(bench(&args, engine).await?);
    }
    let t = table(&rows);
    crate::write_section(&args.out, "pages-bench", &t)?;
    println!("{t}");
    Ok(())
}
