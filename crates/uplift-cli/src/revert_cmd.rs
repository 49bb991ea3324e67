//! `uplift upgrade revert …`: a revert within the window from the command line — what
//! it would carry back (`--preview`), or the revert itself, followed with a bar of the
//! changes still to carry back and the pause figures after.

use std::time::Duration;

use anyhow::{Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use uplift_api::upgrade::{RevertPreview, StartRevert, Upgrade, UpgradeStatus};

use crate::client::{Client, seg};
use crate::output::{self, word};

/// How often `--wait` asks for progress.
const POLL_MS: u64 = 250;

fn path(env: &str, rest: &str) -> String {
    format!("/api/environments/{}/upgrade{rest}", seg(env))
}

/// What a revert would carry back now, per entity, and what it cannot.
pub async fn preview(c: &Client, env: &str, json_out: bool) -> Result<()> {
    let p: RevertPreview = c.get(&path(env, "/revert/preview")).await?;
    if json_out {
        output::print_json(&p);
        return Ok(());
    }
    println!(
        "revert {env}: {} → {}{}",
        p.from_database,
        p.to_database,
        p.blocked
            .as_deref()
            .map_or(String::new(), |b| format!(" (not possible: {b})"))
    );
    output::table(
        false,
        &p.entities,
        &["entity", "back to", "written", "deleted", "values lost"],
        |e| {
            let lost: Vec<String> = e
                .lost
                .iter()
                .map(|l| format!("{} ({})", l.field, l.records))
                .collect();
            vec![
                e.entity.clone(),
                e.target_entity.clone(),
                e.upserts.to_string(),
                e.deletes.to_string(),
                lost.join(", "),
            ]
        },
    );
    for l in &p.cannot_carry {
        println!("  cannot carry back {}.{}: {}", l.entity, l.field, l.reason);
    }
    println!(
        "  apps back to their previous version: {}; flows back: {}",
        p.apps.join(", "),
        p.flows.join(", ")
    );
    Ok(())
}

/// What `uplift upgrade revert` was given.
pub struct RevertArgs<'a> {
    pub env: &'a str,
    pub reason: &'a str,
    pub pause_budget_ms: Option<u64>,
    pub max_attempts: Option<u32>,
    pub wait: bool,
}

/// Starts a revert; with `wait`, follows it to its end and prints the pause figures.
pub async fn revert(c: &Client, a: RevertArgs<'_>, json_out: bool) -> Result<()> {
    let body = StartRevert {
        reason: a.reason.to_string(),
        pause_budget_ms: a.pause_budget_ms,
        max_attempts: a.max_attempts,
    };
    let started: Upgrade = c.post(&path(a.env, "/revert"), Some(&body)).await?;
    if !a.wait {
        output::object(
            json_out,
            &serde_json::json!({"id": started.id, "status": started.status}),
        );
        return Ok(());
    }
    let end = follow(c, a.env).await?;
    if json_out {
        output::print_json(&end);
    } else {
        summary(&end);
    }
    if end.status != UpgradeStatus::Reverted {
        let why = end
            .step3
            .and_then(|t| t.revert)
            .and_then(|r| r.failure)
            .map_or(String::new(), |f| format!(" ({f})"));
        bail!("the revert ended as {}{why}", word(&end.status));
    }
    Ok(())
}

/// Shows the changes still to carry back until the revert ends.
async fn follow(c: &Client, env: &str) -> Result<Upgrade> {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {prefix:>12} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_prefix("revert");
    loop {
        let v: Upgrade = c.get(&path(env, "")).await?;
        let r = v.step3.as_ref().and_then(|t| t.revert.as_ref());
        let lag = r.and_then(|r| r.lag);
        let paused = r.map_or(0, |r| r.pause.attempts.len());
        bar.set_message(match (lag, paused) {
            (_, n) if n > 0 => format!("write pause, attempt {n}"),
            (Some(l), _) => format!("carrying back: {l} changes to go"),
            (None, _) => "carrying back".to_string(),
        });
        bar.tick();
        if v.status != UpgradeStatus::RevertRunning {
            bar.finish_with_message(word(&v.status));
            return Ok(v);
        }
        tokio::time::sleep(Duration::from_millis(POLL_MS)).await;
    }
}

fn summary(v: &Upgrade) {
    println!("upgrade {} of {}: {}", v.id, v.env, word(&v.status));
    let Some(t) = &v.step3 else { return };
    let Some(r) = &t.revert else { return };
    for (i, a) in r.pause.attempts.iter().enumerate() {
        println!(
            "  pause {}: {} ms, {}{}",
            i + 1,
            a.ms,
            word(&a.outcome),
            a.reason
                .as_deref()
                .map_or(String::new(), |r| format!(" ({r})"))
        );
    }
    println!(
        "  writes held: {}, longest wait: {} ms, budget: {} ms",
        r.pause.writes_held, r.pause.max_write_wait_ms, r.pause_budget_ms
    );
    if r.switched {
        println!("  production is on {} again", t.from_database);
    }
}
