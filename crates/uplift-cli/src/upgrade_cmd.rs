//! `uplift plan …` (local) and `uplift upgrade …` (against a server).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde_json::{Value, json};

use crate::client::{Client, seg};

/// How often `--wait` asks for progress.
const POLL_MS: u64 = 250;

pub fn plan_list() {
    for name in uplift_plan::builtin_names() {
        println!("{name}");
    }
}

pub fn plan_show(name: &str) -> Result<()> {
    let text = uplift_plan::builtin(name).ok_or_else(|| {
        anyhow!(
            "no shipped plan '{name}' (shipped: {})",
            uplift_plan::builtin_names().join(", ")
        )
    })?;
    print!("{text}");
    Ok(())
}

pub fn plan_check(path: &std::path::Path) -> Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let plan = uplift_plan::parse_plan(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    println!(
        "{}: plan '{}' is valid ({} -> {})",
        path.display(),
        plan.name(),
        plan.from(),
        plan.to()
    );
    Ok(())
}

/// Parses `--rate EUR=1.08`.
pub fn parse_rate(s: &str) -> Result<(String, f64), String> {
    let (code, rate) = s
        .split_once('=')
        .ok_or_else(|| format!("'{s}' is not CODE=RATE"))?;
    let rate: f64 = rate
        .parse()
        .map_err(|_| format!("'{rate}' is not a number"))?;
    Ok((code.trim().to_uppercase(), rate))
}

pub async fn preview(c: &Client, env: &str, plan: &str, json_out: bool) -> Result<()> {
    let v = c
        .get(&format!(
            "/api/environments/{}/upgrade/preview?plan={}",
            seg(env),
            seg(plan)
        ))
        .await?;
    if json_out {
        println!("{}", serde_json::to_string_pretty(&v["changes"])?);
        return Ok(());
    }
    for e in v["changes"]["entities"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let fields = e["fields"].as_array().cloned().unwrap_or_default();
        let changed = fields.iter().filter(|f| f["action"] != "kept").count();
        println!(
            "{:<40} {:<8} {:<40} {} field(s), {changed} changed{}",
            e["source"].as_str().unwrap_or("(new)"),
            e["action"].as_str().unwrap_or(""),
            e["target"].as_str().unwrap_or("-"),
            fields.len(),
            e["reason"]
                .as_str()
                .map(|r| format!(" — {r}"))
                .unwrap_or_default()
        );
    }
    let found: Vec<String> = v["changes"]["currencies_found"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|c| c.as_str().map(str::to_string))
        .collect();
    println!("currencies found: {}", found.join(", "));
    for w in v["changes"]["warnings"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        println!(
            "warning: {}",
            w["message"].as_str().unwrap_or(&w.to_string())
        );
    }
    Ok(())
}

/// What `uplift upgrade start` was given.
pub struct StartArgs<'a> {
    pub env: &'a str,
    pub plan: &'a str,
    pub language: &'a str,
    pub currency: &'a str,
    pub rates: &'a [(String, f64)],
    pub wait: bool,
}

pub async fn start(c: &Client, a: StartArgs<'_>, json_out: bool) -> Result<()> {
    let StartArgs {
        env,
        plan,
        language,
        currency,
        rates,
        wait,
    } = a;
    let rates: BTreeMap<&str, f64> = rates.iter().map(|(c, r)| (c.as_str(), *r)).collect();
    let body =
        json!({"plan": plan, "language": language, "currency": currency, "exchange_rates": rates});
    let v = c
        .post(&format!("/api/environments/{}/upgrade", seg(env)), &body)
        .await?;
    if !wait {
        crate::output::object(
            json_out,
            &json!({"id": v["id"], "status": v["status"], "test_database": v["test_database"]}),
        );
        return Ok(());
    }
    let end = follow(c, env).await?;
    report(c, env, json_out).await?;
    if end != "step2_verifying" {
        bail!("step 1 ended as {end}");
    }
    Ok(())
}

/// Draws live bars (one per entity and an overall one) until step 1 ends; returns the
/// final status.
pub async fn follow(c: &Client, env: &str) -> Result<String> {
    let multi = MultiProgress::new();
    let style = ProgressStyle::with_template("{prefix:>32} [{bar:40}] {pos}/{len} rows {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    let overall = multi.add(ProgressBar::new(0));
    overall.set_style(
        ProgressStyle::with_template("{prefix:>32} [{bar:40}] {pos}/{len} rows, eta {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    overall.set_prefix("step 1");
    let mut bars: BTreeMap<String, ProgressBar> = BTreeMap::new();
    loop {
        let v = c
            .get(&format!("/api/environments/{}/upgrade", seg(env)))
            .await?;
        let status = v["status"].as_str().unwrap_or("").to_string();
        if let Some(live) = v["live_entities"].as_object() {
            for (entity, p) in live {
                let bar = bars.entry(entity.clone()).or_insert_with(|| {
                    let b = multi.insert_before(&overall, ProgressBar::new(0));
                    b.set_style(style.clone());
                    b.set_prefix(entity.clone());
                    b
                });
                bar.set_length(p["total"].as_u64().unwrap_or(0));
                bar.set_position(p["done"].as_u64().unwrap_or(0));
            }
        }
        if let Some(p) = v["progress"].as_object() {
            overall.set_length(p["total"].as_u64().unwrap_or(0));
            overall.set_position(p["done"].as_u64().unwrap_or(0));
            overall.set_message(
                p["eta_seconds"]
                    .as_f64()
                    .map_or("?".into(), |s| format!("{s:.0}s")),
            );
        }
        let phase = v["phases"]
            .as_array()
            .and_then(|ps| ps.iter().rev().find(|p| !p["started_at"].is_null()))
            .and_then(|p| p["phase"].as_str())
            .unwrap_or("");
        overall.set_prefix(format!("step 1: {phase}"));
        if status != "step1_running" {
            for b in bars.values() {
                b.finish();
            }
            overall.finish_with_message("done");
            return Ok(status);
        }
        tokio::time::sleep(Duration::from_millis(POLL_MS)).await;
    }
}

pub async fn status(c: &Client, env: &str, json_out: bool) -> Result<()> {
    let v = c
        .get(&format!("/api/environments/{}/upgrade", seg(env)))
        .await?;
    if json_out {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!(
        "upgrade {} of {env}: {}",
        v["id"].as_str().unwrap_or(""),
        v["status"].as_str().unwrap_or("")
    );
    for p in v["phases"].as_array().cloned().unwrap_or_default() {
        let eta = p["eta_seconds"]
            .as_f64()
            .filter(|_| p["finished_at"].is_null());
        println!(
            "  {:<22} {:<26} {:<26} {:>9}/{:<9} {}",
            p["phase"].as_str().unwrap_or(""),
            p["started_at"].as_str().unwrap_or("-"),
            p["finished_at"].as_str().unwrap_or(""),
            p["done"],
            p["total"],
            eta.map_or(String::new(), |s| format!("eta {s:.0}s"))
        );
    }
    if let Some(f) = v["failure"].as_object() {
        println!(
            "  failed in {}: {}",
            f["phase"].as_str().unwrap_or(""),
            f["message"].as_str().unwrap_or("")
        );
    }
    Ok(())
}

pub async fn report(c: &Client, env: &str, json_out: bool) -> Result<()> {
    let v = c
        .get(&format!("/api/environments/{}/upgrade/report", seg(env)))
        .await?;
    if json_out {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!(
        "{:<40} {:<40} {:>9} {:>9} {:>7} {:>8} check",
        "source", "target", "exported", "imported", "errors", "warnings"
    );
    for e in v["entities"].as_array().cloned().unwrap_or_default() {
        let check = match e["checksum_match"].as_bool() {
            Some(true) => "ok",
            Some(false) => "MISMATCH",
            None => "-",
        };
        println!(
            "{:<40} {:<40} {:>9} {:>9} {:>7} {:>8} {check}",
            e["source"].as_str().unwrap_or(""),
            e["target"].as_str().unwrap_or("(dropped)"),
            e["exported"],
            e["imported"],
            e["errors"],
            e["warnings"]
        );
        if let Some(line) = e["summary"].as_str() {
            println!("    {line}");
        }
        for s in e["error_samples"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .take(3)
        {
            println!(
                "    error   {}: {}",
                s["id"].as_str().unwrap_or(""),
                s["reason"].as_str().unwrap_or("")
            );
        }
        for s in e["warning_samples"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .take(3)
        {
            println!(
                "    warning {}: {}",
                s["id"].as_str().unwrap_or(""),
                s["reason"].as_str().unwrap_or("")
            );
        }
    }
    if let Some(ms) = v["step1_duration_ms"].as_u64() {
        println!(
            "step 1 took {:.1} s (the reference product's estimate of step 3's downtime)",
            ms as f64 / 1000.0
        );
    }
    for w in v["security"]["warnings"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        println!(
            "security warning: role {}: {}",
            w["role"].as_str().unwrap_or(""),
            w["message"].as_str().unwrap_or("")
        );
    }
    Ok(())
}

pub async fn simple(c: &Client, env: &str, action: &str, json_out: bool) -> Result<()> {
    let v: Value = c
        .post(
            &format!("/api/environments/{}/upgrade/{action}", seg(env)),
            &json!({}),
        )
        .await?;
    crate::output::object(json_out, &json!({"id": v["id"], "status": v["status"]}));
    Ok(())
}
