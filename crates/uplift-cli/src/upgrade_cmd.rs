//! `uplift plan …` (local) and `uplift upgrade …` (against a server).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use uplift_api::items::{ItemDetail, ItemList, Notified, Resolution, VerificationQueued};
use uplift_api::upgrade::{
    Action, AppsFrom, EntityReport, PlanDetail, Preview, Report, StartUpgrade, Upgrade,
    UpgradeStatus,
};
use uplift_model::Decimal;

use crate::client::{Client, NO_BODY, read_document, seg};
use crate::output::{self, opt, word};

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
pub fn parse_rate(s: &str) -> Result<(String, Decimal), String> {
    let (code, rate) = s
        .split_once('=')
        .ok_or_else(|| format!("'{s}' is not CODE=RATE"))?;
    let rate = uplift_model::decimal::parse(rate)
        .ok_or_else(|| format!("'{rate}' is not an exact decimal number"))?;
    Ok((code.trim().to_uppercase(), rate))
}

/// The plan name to send for `--plan`: a name as given, or, for a path to a file,
/// the file uploaded (`PUT /api/plans/<file stem>`) and its name. The server never
/// reads a path it is sent.
pub async fn plan_name(c: &Client, plan: &str) -> Result<String> {
    let path = std::path::Path::new(plan);
    let is_path = plan.contains(['/', '\\']) || plan.ends_with(".toml");
    if !is_path {
        return Ok(plan.to_string());
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let name = path
        .file_stem()
        .map(|s| {
            s.to_string_lossy()
                .to_lowercase()
                .replace(['_', ' ', '.'], "-")
        })
        .unwrap_or_default();
    let uploaded: PlanDetail = c
        .put_text(&format!("/api/plans/{}", seg(&name)), text)
        .await
        .with_context(|| format!("uploading {} as plan '{name}'", path.display()))?;
    eprintln!("uploaded {} as plan '{}'", path.display(), uploaded.name);
    Ok(uploaded.name)
}

pub async fn preview(c: &Client, env: &str, plan: &str, json_out: bool) -> Result<()> {
    let plan = &plan_name(c, plan).await?;
    let path = format!(
        "/api/environments/{}/upgrade/preview?plan={}",
        seg(env),
        seg(plan)
    );
    let v: Preview = c.get(&path).await?;
    if json_out {
        output::print_json(&v.changes);
        return Ok(());
    }
    let header = ["source", "action", "target", "fields", "changed", "reason"];
    output::table(false, &v.changes.entities, &header, |e| {
        let changed = e.fields.iter().filter(|f| f.action != Action::Kept).count();
        vec![
            e.source.clone().unwrap_or_else(|| "(new)".into()),
            word(&e.action),
            e.target.clone().unwrap_or_else(|| "-".into()),
            e.fields.len().to_string(),
            changed.to_string(),
            opt(&e.reason),
        ]
    });
    println!(
        "currencies found: {}",
        v.changes.currencies_found.join(", ")
    );
    for w in &v.changes.warnings {
        println!("warning: {}", w.message);
    }
    Ok(())
}

/// What `uplift upgrade start` was given.
pub struct StartArgs<'a> {
    pub env: &'a str,
    pub plan: &'a str,
    pub language: &'a str,
    pub currency: &'a str,
    pub rates: &'a [(String, Decimal)],
    /// Copy apps' drafts in step 2 rather than their published versions.
    pub drafts: bool,
    pub wait: bool,
}

/// The short form of an upgrade: its id, status and test database.
#[derive(serde::Serialize)]
struct Started<'a> {
    id: &'a str,
    status: UpgradeStatus,
    test_database: &'a str,
}

pub async fn start(c: &Client, a: StartArgs<'_>, json_out: bool) -> Result<()> {
    let body = StartUpgrade {
        plan: plan_name(c, a.plan).await?,
        language: a.language.into(),
        currency: a.currency.into(),
        exchange_rates: a.rates.iter().cloned().collect(),
        apps_from: a.drafts.then_some(AppsFrom::Draft),
        allow_http: Vec::new(),
    };
    let v: Upgrade = c
        .post(
            &format!("/api/environments/{}/upgrade", seg(a.env)),
            Some(&body),
        )
        .await?;
    if !a.wait {
        let short = Started {
            id: &v.id,
            status: v.status,
            test_database: &v.test_database,
        };
        output::object(json_out, &short);
        return Ok(());
    }
    let end = follow(c, a.env).await?;
    report(c, a.env, json_out).await?;
    if end != UpgradeStatus::Step2Verifying {
        bail!("step 1 ended as {}", word(&end));
    }
    Ok(())
}

fn bar_style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// Draws live bars (one per entity and an overall one) until step 1 ends; returns the
/// final status.
pub async fn follow(c: &Client, env: &str) -> Result<UpgradeStatus> {
    let multi = MultiProgress::new();
    let style = bar_style("{prefix:>32} [{bar:40}] {pos}/{len} rows {msg}");
    let overall = multi.add(ProgressBar::new(0));
    overall.set_style(bar_style(
        "{prefix:>32} [{bar:40}] {pos}/{len} rows, eta {msg}",
    ));
    overall.set_prefix("step 1");
    let mut bars: BTreeMap<String, ProgressBar> = BTreeMap::new();
    loop {
        let v: Upgrade = c
            .get(&format!("/api/environments/{}/upgrade", seg(env)))
            .await?;
        for (entity, p) in &v.live_entities {
            let bar = bars.entry(entity.clone()).or_insert_with(|| {
                let b = multi.insert_before(&overall, ProgressBar::new(0));
                b.set_style(style.clone());
                b.set_prefix(entity.clone());
                b
            });
            bar.set_length(p.total);
            bar.set_position(p.done);
        }
        if let Some(p) = &v.progress {
            overall.set_length(p.total);
            overall.set_position(p.done);
            overall.set_message(p.eta_seconds.map_or("?".into(), |s| format!("{s:.0}s")));
        }
        let phase = v
            .phases
            .iter()
            .rev()
            .find(|p| p.started_at.is_some())
            .map(|p| word(&p.phase));
        overall.set_prefix(format!("step 1: {}", phase.unwrap_or_default()));
        if v.status != UpgradeStatus::Step1Running {
            for b in bars.values() {
                b.finish();
            }
            overall.finish_with_message("done");
            return Ok(v.status);
        }
        tokio::time::sleep(Duration::from_millis(POLL_MS)).await;
    }
}

pub async fn status(c: &Client, env: &str, json_out: bool) -> Result<()> {
    let v: Upgrade = c
        .get(&format!("/api/environments/{}/upgrade", seg(env)))
        .await?;
    if json_out {
        output::print_json(&v);
        return Ok(());
    }
    println!("upgrade {} of {env}: {}", v.id, word(&v.status));
    let header = ["phase", "started", "finished", "done", "total", "eta"];
    output::table(false, &v.phases, &header, |p| {
        let eta = p.eta_seconds.filter(|_| p.finished_at.is_none());
        vec![
            word(&p.phase),
            p.started_at.clone().unwrap_or_else(|| "-".into()),
            opt(&p.finished_at),
            p.done.to_string(),
            p.total.to_string(),
            eta.map_or(String::new(), |s| format!("{s:.0}s")),
        ]
    });
    if let Some(f) = &v.failure {
        println!("  failed in {}: {}", word(&f.phase), f.message);
    }
    Ok(())
}

/// The check column of the report.
fn check(e: &EntityReport) -> &'static str {
    match e.checksum_match {
        Some(true) => "ok",
        Some(false) => "MISMATCH",
        None => "-",
    }
}

/// Step 1's report: one aligned table row per entity, then its summary line and
/// up to three samples of each kind.
pub async fn report(c: &Client, env: &str, json_out: bool) -> Result<()> {
    let v: Report = c
        .get(&format!("/api/environments/{}/upgrade/report", seg(env)))
        .await?;
    if json_out {
        output::print_json(&v);
        return Ok(());
    }
    let header = [
        "source", "target", "exported", "imported", "errors", "warnings", "check",
    ];
    output::table(false, &v.entities, &header, |e| {
        vec![
            e.source.clone(),
            e.target.clone().unwrap_or_else(|| "(dropped)".into()),
            e.exported.to_string(),
            e.imported.to_string(),
            e.errors.to_string(),
            e.warnings.to_string(),
            check(e).into(),
        ]
    });
    for e in &v.entities {
        let samples = e.error_samples.iter().take(3).map(|s| ("error", s));
        let samples = samples.chain(e.warning_samples.iter().take(3).map(|s| ("warning", s)));
        let lines: Vec<String> = e
            .summary
            .iter()
            .cloned()
            .chain(samples.map(|(kind, s)| format!("{kind:<7} {}: {}", s.id, s.reason)))
            .collect();
        if !lines.is_empty() {
            println!("{}:", e.source);
            for l in lines {
                println!("    {l}");
            }
        }
    }
    let mismatched: Vec<&str> = v
        .entities
        .iter()
        .filter(|e| e.checksum_match == Some(false))
        .map(|e| e.source.as_str())
        .collect();
    if !mismatched.is_empty() {
        println!(
            "checksum MISMATCH: the test database does not hold exactly the converted rows of {}; cancel and run step 1 again",
            mismatched.join(", ")
        );
    }
    for n in &v.notes {
        println!("note: {n}");
    }
    if let Some(ms) = v.step1_duration_ms {
        println!(
            "step 1 took {:.1} s (the reference product's estimate of step 3's downtime)",
            ms as f64 / 1000.0
        );
    }
    for w in &v.security.warnings {
        println!("security warning: role {}: {}", w.role, w.message);
    }
    Ok(())
}

pub async fn simple(c: &Client, env: &str, action: &str, json_out: bool) -> Result<()> {
    let path = format!("/api/environments/{}/upgrade/{action}", seg(env));
    let v: Upgrade = c.post(&path, NO_BODY).await?;
    #[derive(serde::Serialize)]
    struct Short<'a> {
        id: &'a str,
        status: UpgradeStatus,
    }
    output::object(
        json_out,
        &Short {
            id: &v.id,
            status: v.status,
        },
    );
    Ok(())
}

/// Rebuilds the test database; with `wait`, follows the copy with bars, then the
/// verification of every item.
pub async fn refresh(c: &Client, env: &str, wait: bool, json_out: bool) -> Result<()> {
    if !wait {
        return simple(c, env, "refresh", json_out).await;
    }
    let path = format!("/api/environments/{}/upgrade/refresh", seg(env));
    let _: Upgrade = c.post(&path, NO_BODY).await?;
    let end = follow(c, env).await?;
    if end != UpgradeStatus::Step2Verifying {
        bail!("the refresh ended as {}", word(&end));
    }
    let bar = ProgressBar::new(0);
    bar.set_style(bar_style("{prefix:>12} [{bar:40}] {pos}/{len} items"));
    bar.set_prefix("verifying");
    loop {
        let v: Upgrade = c
            .get(&format!("/api/environments/{}/upgrade", seg(env)))
            .await?;
        let Some(items) = v.items else { break };
        bar.set_length(u64::from(items.total));
        bar.set_position(u64::from(items.total - items.verifying));
        if items.verifying == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(POLL_MS)).await;
    }
    bar.finish();
    simple_status(c, env, json_out).await
}

async fn simple_status(c: &Client, env: &str, json_out: bool) -> Result<()> {
    let v: Upgrade = c
        .get(&format!("/api/environments/{}/upgrade", seg(env)))
        .await?;
    if json_out {
        output::print_json(&v);
    } else {
        println!("upgrade {} of {env}: {}", v.id, word(&v.status));
    }
    Ok(())
}

/// Step 2's items, one table row each.
pub async fn items(c: &Client, env: &str, json_out: bool) -> Result<()> {
    let v: ItemList = c
        .get(&format!("/api/environments/{}/upgrade/items", seg(env)))
        .await?;
    let header = [
        "id", "kind", "name", "owner", "status", "errors", "warnings", "open",
    ];
    output::table(json_out, &v.value, &header, |i| {
        vec![
            i.fields.id.clone(),
            word(&i.fields.kind),
            i.fields.name.clone(),
            i.fields.owner.clone(),
            word(&i.fields.status),
            i.findings.error.to_string(),
            i.findings.warning.to_string(),
            i.findings.open.to_string(),
        ]
    });
    Ok(())
}

/// One item: a line per finding (with its suggestion), then the copy.
pub async fn item(c: &Client, env: &str, item: &str, json_out: bool) -> Result<()> {
    let v: ItemDetail = c.get(&item_path(env, item)).await?;
    if json_out {
        output::print_json(&v);
        return Ok(());
    }
    println!(
        "{} {} ({}): {}",
        word(&v.fields.kind),
        v.fields.name,
        v.fields.copy_id,
        word(&v.fields.status)
    );
    for f in &v.findings {
        let hint = f
            .suggestion
            .as_ref()
            .map_or(String::new(), |s| format!(" ({s})"));
        println!(
            "  {:<7} {}: {}{hint}",
            word(&f.severity),
            f.location,
            f.message
        );
    }
    output::print_json(&v.copy);
    Ok(())
}

fn item_path(env: &str, item: &str) -> String {
    format!("/api/environments/{}/upgrade/items/{}", seg(env), seg(item))
}

/// One line of an item: where it stands and its open findings.
fn item_line(v: &ItemDetail) {
    println!(
        "{} {}: {} ({} open)",
        word(&v.fields.kind),
        v.fields.name,
        word(&v.fields.status),
        v.finding_counts.open
    );
}

/// `POST …/items/{item}{action}` with `body`; prints the item's line.
pub async fn change(
    c: &Client,
    env: &str,
    item: &str,
    action: &str,
    body: &serde_json::Value,
    json_out: bool,
) -> Result<()> {
    let v: ItemDetail = c
        .post(&format!("{}{action}", item_path(env, item)), Some(body))
        .await?;
    if json_out {
        output::print_json(&v);
    } else {
        item_line(&v);
    }
    Ok(())
}

/// Replaces an item's copy with the definition in `file`; prints the item's line and
/// its open findings after the verification that follows.
pub async fn edit(c: &Client, env: &str, item: &str, file: &Path, json_out: bool) -> Result<()> {
    let def = read_document(file)?;
    let v: ItemDetail = c
        .put(&format!("{}/copy", item_path(env, item)), &def)
        .await?;
    if json_out {
        output::print_json(&v);
        return Ok(());
    }
    item_line(&v);
    let open = v
        .findings
        .iter()
        .filter(|f| f.resolution == Resolution::Open);
    for f in open {
        println!("  {:<7} {}: {}", word(&f.severity), f.location, f.message);
    }
    Ok(())
}

/// Verifies one item now, or queues every item the caller may see and follows the
/// server's progress through them with a bar.
pub async fn verify(c: &Client, env: &str, item: Option<&str>, json_out: bool) -> Result<()> {
    if let Some(id) = item {
        return change(c, env, id, "/verify", &serde_json::json!({}), json_out).await;
    }
    let queued: VerificationQueued = c
        .post(
            &format!("/api/environments/{}/upgrade/verify", seg(env)),
            Some(&serde_json::json!({})),
        )
        .await?;
    let bar = ProgressBar::new(queued.items.len() as u64);
    bar.set_style(bar_style("{prefix:>12} [{bar:40}] {pos}/{len} items"));
    bar.set_prefix("verifying");
    let list = loop {
        let v: ItemList = c
            .get(&format!("/api/environments/{}/upgrade/items", seg(env)))
            .await?;
        let owed = v
            .value
            .iter()
            .filter(|i| i.fields.verifying && queued.items.contains(&i.fields.id))
            .count();
        bar.set_position((queued.items.len() - owed) as u64);
        if owed == 0 {
            bar.finish();
            break v;
        }
        tokio::time::sleep(Duration::from_millis(POLL_MS)).await;
    };
    if json_out {
        output::print_json(&list);
        return Ok(());
    }
    for i in &list.value {
        println!(
            "{} {}: {} ({} open)",
            word(&i.fields.kind),
            i.fields.name,
            word(&i.fields.status),
            i.findings.open
        );
    }
    Ok(())
}

/// Mails each maker the list of their items still open.
pub async fn notify(c: &Client, env: &str, json_out: bool) -> Result<()> {
    let sent: Notified = c
        .post(
            &format!("/api/environments/{}/upgrade/notify", seg(env)),
            Some(&serde_json::json!({})),
        )
        .await?;
    if json_out {
        output::print_json(&sent);
        return Ok(());
    }
    if sent.value.is_empty() {
        println!("nobody has an item still open");
    }
    for n in &sent.value {
        println!("mailed {}: {} item(s) still open", n.to, n.items);
    }
    Ok(())
}

/// An item's report as CSV, a row per finding.
pub async fn item_csv(c: &Client, env: &str, item: &str) -> Result<()> {
    let csv = c
        .get_text(&format!("{}/report?format=csv", item_path(env, item)))
        .await?;
    print!("{csv}");
    Ok(())
}
