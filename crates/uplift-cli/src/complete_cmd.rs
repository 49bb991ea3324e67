//! `uplift upgrade preflight|complete …`: step 3 from the command line, with live bars
//! for the build of the new production and the catch-up, and the pause figures after.

use std::time::Duration;

use anyhow::{Result, bail};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use uplift_api::upgrade::{CompleteUpgrade, Override, Preflight, Upgrade, UpgradeStatus};

use crate::client::{Client, seg};
use crate::output::{self, word};

/// How often `--wait` asks for progress.
const POLL_MS: u64 = 250;

fn path(env: &str, rest: &str) -> String {
    format!("/api/environments/{}/upgrade{rest}", seg(env))
}

/// Step 3's checks as a table; an error (non-zero exit) unless every one passes.
pub async fn preflight(c: &Client, env: &str, json_out: bool) -> Result<()> {
    let p: Preflight = c.get(&path(env, "/complete/preflight")).await?;
    output::table(json_out, &p.checks, &["check", "ok", "detail"], |k| {
        let ok = match (k.ok, k.overridable) {
            (true, _) => "ok",
            (false, true) => "FAIL (override possible)",
            (false, false) => "FAIL",
        };
        vec![k.name.clone(), ok.to_string(), k.detail.clone()]
    });
    let failing = p.checks.iter().filter(|k| !k.ok).count();
    if failing > 0 {
        bail!(
            "step 3 is not ready: {failing} of {} checks fail",
            p.checks.len()
        );
    }
    Ok(())
}

/// What `uplift upgrade complete` was given.
pub struct CompleteArgs<'a> {
    pub env: &'a str,
    pub pause_budget_ms: Option<u64>,
    pub max_attempts: Option<u32>,
    pub override_reason: Option<&'a str>,
    pub wait: bool,
}

/// Starts step 3; with `wait`, follows it to its end and prints the pause figures.
pub async fn complete(c: &Client, a: CompleteArgs<'_>, json_out: bool) -> Result<()> {
    let body = CompleteUpgrade {
        pause_budget_ms: a.pause_budget_ms,
        max_attempts: a.max_attempts,
        override_gate: a.override_reason.map(|r| Override {
            reason: r.to_string(),
        }),
    };
    let started: Upgrade = c.post(&path(a.env, "/complete"), Some(&body)).await?;
    if !a.wait {
        #[derive(serde::Serialize)]
        struct Short<'a> {
            id: &'a str,
            status: UpgradeStatus,
        }
        let short = Short {
            id: &started.id,
            status: started.status,
        };
        output::object(json_out, &short);
        return Ok(());
    }
    let end = follow(c, a.env).await?;
    summary(&end, json_out);
    if end.status != UpgradeStatus::Completed {
        let why = end
            .step3
            .and_then(|t| t.failure)
            .map_or(String::new(), |f| {
                format!(" ({}: {})", word(&f.phase), f.message)
            });
        bail!("step 3 ended as {}{why}", word(&end.status));
    }
    Ok(())
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// Draws the build's rows and the catch-up's changes until step 3 ends.
async fn follow(c: &Client, env: &str) -> Result<Upgrade> {
    let multi = MultiProgress::new();
    let build = multi.add(ProgressBar::new(0));
    build.set_style(style("{prefix:>24} [{bar:40}] {pos}/{len} rows, eta {msg}"));
    build.set_prefix("build new production");
    let catchup = multi.add(ProgressBar::new(0));
    catchup.set_style(style("{prefix:>24} [{bar:40}] {pos}/{len} changes {msg}"));
    catchup.set_prefix("catch up");
    let phase = multi.add(ProgressBar::new_spinner());
    phase.set_style(style("{prefix:>24} {msg}"));
    phase.set_prefix("step 3");
    loop {
        let v: Upgrade = c.get(&path(env, "")).await?;
        if let Some(p) = &v.progress {
            build.set_length(p.total);
            build.set_position(p.done);
            build.set_message(p.eta_seconds.map_or("?".into(), |s| format!("{s:.0}s")));
        }
        if let Some(p) = v
            .phases
            .iter()
            .find(|p| p.phase == uplift_api::upgrade::Phase::CatchUp)
        {
            catchup.set_length(p.total);
            catchup.set_position(p.done);
        }
        let lag = v.step3.as_ref().and_then(|t| t.catchup_lag);
        catchup.set_message(lag.map_or(String::new(), |l| format!("(lag {l})")));
        let current = v
            .phases
            .iter()
            .rev()
            .find(|p| p.started_at.is_some())
            .map(|p| word(&p.phase));
        phase.set_message(current.unwrap_or_default());
        if v.status != UpgradeStatus::Step3Running {
            build.finish();
            catchup.finish();
            phase.finish_with_message(word(&v.status));
            return Ok(v);
        }
        tokio::time::sleep(Duration::from_millis(POLL_MS)).await;
    }
}

/// The pause attempts and what they held.
fn summary(v: &Upgrade, json_out: bool) {
    if json_out {
        output::print_json(v);
        return;
    }
    println!("upgrade {} of {}: {}", v.id, v.env, word(&v.status));
    let Some(t) = &v.step3 else { return };
    let attempts: Vec<_> = t.pause.attempts.iter().enumerate().collect();
    output::table(
        false,
        &attempts,
        &["attempt", "pause ms", "outcome", "reason"],
        |(i, a)| {
            vec![
                (i + 1).to_string(),
                a.ms.to_string(),
                word(&a.outcome),
                a.reason.clone().unwrap_or_default(),
            ]
        },
    );
    println!(
        "  writes held: {}, longest wait: {} ms, budget: {} ms",
        t.pause.writes_held, t.pause.max_write_wait_ms, t.pause_budget_ms
    );
    if let Some(ms) = t.duration_ms {
        println!(
            "  step 3 took {:.1} s; production is on {}",
            ms as f64 / 1000.0,
            t.new_database
        );
    }
}

/// Deletes the kept databases now and says what went.
pub async fn cleanup(c: &Client, env: &str, json_out: bool) -> Result<()> {
    let v: Upgrade = c
        .post(&path(env, "/cleanup"), crate::client::NO_BODY)
        .await?;
    let kept = v.step3.as_ref().map(|t| t.kept.clone()).unwrap_or_default();
    output::table(json_out, &kept, &["database", "kind", "removed"], |k| {
        vec![k.database.clone(), word(&k.kind), k.removed.to_string()]
    });
    if !json_out {
        println!("the old production is gone: this upgrade can no longer be reverted");
    }
    Ok(())
}
