//! Running one run: its steps in order, each recorded (inputs, outputs, error,
//! duration, attempts) as soon as it ends, so a run resumed after a restart skips
//! the steps that already succeeded. Transient failures (HTTP 5xx, timeouts,
//! connection errors) are retried with exponential backoff up to a cap.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value as Json, json};
use uplift_model::codec::record_json;
use uplift_model::filter::{check_filter, eval_filter, parse_filter};
use uplift_model::flow::Step;
use uplift_model::layout::EntityProperties;
use uplift_store::EnvDb;
use uplift_store::control::{FlowRecord, RunRecord, RunStatus};
use uplift_store::records::{self, Actor, ListQuery};

use crate::rights::OwnerRights;
use crate::template::{lookup_path, render, render_json};
use crate::{FlowError, Runtime};

/// Tries per step before a transient failure fails the run.
pub const MAX_ATTEMPTS: u32 = 5;
/// The first retry waits this long; each next one twice as long, up to the cap.
const BACKOFF_BASE_MS: u64 = 200;
const BACKOFF_CAP_MS: u64 = 5_000;
/// An HTTP step gives up on a request after this long (and retries).
pub(crate) const HTTP_TIMEOUT_SECS: u64 = 10;
/// Rows a `list_records` step reads when it names no `top`.
const DEFAULT_LIST_TOP: u64 = 100;

pub(crate) fn now() -> String {
    uplift_model::value::format_instant(time::OffsetDateTime::now_utc())
}

/// Why a step failed, and whether trying again may help.
enum StepError {
    Transient(String),
    Permanent(String),
    /// The step asked for an approval (this id) that has no answer yet.
    Waiting(String),
}

/// How a list of steps ended without failing.
enum Ended {
    Done,
    /// A step waits for an approval; the run continues when it is answered.
    Waiting,
}

impl From<uplift_store::StoreError> for StepError {
    fn from(e: uplift_store::StoreError) -> Self {
        if e.is_transient() {
            StepError::Transient(e.to_string())
        } else {
            StepError::Permanent(e.to_string())
        }
    }
}

fn permanent(m: impl Into<String>) -> StepError {
    StepError::Permanent(m.into())
}

/// What a run works with.
struct Ctx<'a> {
    rt: &'a Runtime,
    flow: &'a FlowRecord,
    db: Arc<EnvDb>,
    /// `{"trigger": …, "steps": {name: outputs}, "variables": {…}}`.
    values: Json,
    /// What the owner may do with records: every data step is checked against it.
    rights: OwnerRights,
    /// The step being run was begun before (by a server that stopped, or an attempt
    /// that failed), so its effect may already be there.
    begun: bool,
    /// Set for a flow bound to a database that is not production (an upgrade's test
    /// database), and for every dry run: its e-mail, and HTTP calls to hosts not
    /// allowed, are captured.
    sink: Option<Sink>,
    /// A dry run: writes roll back, approvals are not asked for.
    dry_run: bool,
}

/// Where a run on a test database sends what would reach real people and systems.
struct Sink {
    database: String,
    allowed_hosts: Vec<String>,
}

impl Sink {
    /// The sink for `flow`, unless it is bound to its environment's production database
    /// and this is not a dry run.
    async fn of(rt: &Runtime, flow: &FlowRecord, dry_run: bool) -> Result<Option<Sink>, FlowError> {
        let control = rt.store.control();
        let production = control.get_env(&flow.env).await?.map(|e| e.database);
        if production.as_deref() == Some(flow.database.as_str()) && !dry_run {
            return Ok(None);
        }
        let allowed_hosts = control.allowed_hosts(&flow.env, &flow.database).await?;
        Ok(Some(Sink {
            database: flow.database.clone(),
            allowed_hosts,
        }))
    }

    fn allows(&self, url: &str) -> bool {
        reqwest::Url::parse(url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_lowercase))
            .is_some_and(|h| self.allowed_hosts.contains(&h))
    }
}

/// Keeps a run's message or call in the capture instead of sending it.
async fn captured(
    ctx: &Ctx<'_>,
    sink: &Sink,
    kind: &str,
    run_id: &str,
    payload: &Json,
) -> Result<String, StepError> {
    let ids = (ctx.flow.id.as_str(), run_id);
    ctx.rt
        .store
        .control()
        .capture(&ctx.flow.env, &sink.database, kind, ids, payload)
        .await
        .map_err(|e| StepError::Transient(e.to_string()))
}

pub(crate) async fn execute(rt: &Runtime, mut run: RunRecord) -> Result<(), FlowError> {
    let control = rt.store.control();
    // Claimed in the database, against the state this run was read in: a stale copy
    // (the run finished, or another worker took it, since it was listed) runs nothing.
    let started = run.started_at.clone().unwrap_or_else(now);
    if !control
        .claim_run(&run.id, run.status, run.attempts, &started)
        .await?
    {
        return Ok(());
    }
    // Read again now that it is ours: a switch may have handed it to another flow
    // (its flow, definition and trigger) while it waited for a slot.
    if let Some(now) = control.run(&run.env, &run.id).await? {
        run = now;
    }
    run.status = RunStatus::Running;
    run.started_at = Some(started);
    let mut flow = match control.flow(&run.env, &run.flow_id).await? {
        Some(f) => f,
        None => {
            return finish(rt, &mut run, Err("the flow no longer exists".into())).await;
        }
    };
    // The steps (and owner) the run was queued with; the binding is the flow's now.
    if let Some(def) = run.definition.clone() {
        flow.definition = def;
    }
    // All data access goes through the binding; a missing database fails the run.
    let db = match rt.store.bound(&run.env, &flow.database).await {
        Ok(db) => db,
        Err(e) => return finish(rt, &mut run, Err(e.to_string())).await,
    };
    // The flow acts as its owner: it may do with records what the owner may.
    let test = rt.test_roles();
    let on = (run.env.as_str(), flow.database.as_str());
    let rights = OwnerRights::load(&rt.store, test.as_deref(), on, &flow.definition.owner).await?;
    if run.trigger["kind"]
        .as_str()
        .is_some_and(|k| k.starts_with("record_"))
        && let Some(entity) = run.trigger["entity"].as_str()
        && let Err(e) = rights.check(entity, "Read")
    {
        // A record trigger hands the record to the flow: its owner must be able to read it.
        return finish(rt, &mut run, Err(e)).await;
    }
    let mut values = json!({"trigger": run.trigger, "steps": {}, "variables": {}});
    for s in run.steps.as_array().into_iter().flatten() {
        if s["status"] == "succeeded"
            && let Some(name) = s["name"].as_str()
        {
            values["steps"][name] = s["outputs"].clone();
            if s["kind"] == "set_variable"
                && let Some(var) = s["inputs"]["variable"].as_str()
            {
                values["variables"][var] = s["outputs"]["value"].clone();
            }
        }
    }
    let dry_run = is_dry_run(&run);
    let sink = Sink::of(rt, &flow, dry_run).await?;
    let mut ctx = Ctx {
        rt,
        flow: &flow,
        db,
        values,
        rights,
        begun: false,
        sink,
        dry_run,
    };
    let outcome = run_steps(&mut ctx, &flow.definition.steps, &mut run).await;
    finish(rt, &mut run, outcome).await
}

/// Whether a run is a dry run: its trigger says so (see [`Runtime::dry_run`]).
pub(crate) fn is_dry_run(run: &RunRecord) -> bool {
    run.trigger[DRY_RUN] == true
}

/// The trigger member that marks a dry run; kept in the run so a resumed one stays dry.
pub(crate) const DRY_RUN: &str = "dry_run";

async fn finish(
    rt: &Runtime,
    run: &mut RunRecord,
    outcome: Result<Ended, String>,
) -> Result<(), FlowError> {
    match outcome {
        Ok(Ended::Done) => run.status = RunStatus::Succeeded,
        Ok(Ended::Waiting) => {
            run.status = RunStatus::Waiting;
            let control = rt.store.control();
            control.save_run(run).await?;
            // An answer that came between asking and saving `waiting` found nothing to
            // requeue; look again now that the run is waiting.
            for s in run.steps.as_array().into_iter().flatten() {
                if s["status"] == "waiting"
                    && let Some(id) = s["outputs"]["approval"].as_str()
                    && control
                        .approval(&run.env, id)
                        .await?
                        .is_some_and(|a| a.outcome.is_some())
                {
                    control.requeue_run(&run.id).await?;
                    rt.wake();
                }
            }
            return Ok(());
        }
        Err(e) => {
            run.status = RunStatus::Failed;
            run.error = Some(e);
        }
    }
    run.finished_at = Some(now());
    rt.store.control().save_run(run).await?;
    Ok(())
}

fn succeeded(run: &RunRecord, name: &str) -> bool {
    run.steps.as_array().is_some_and(|a| {
        a.iter()
            .any(|s| s["name"] == name && s["status"] == "succeeded")
    })
}

/// The recorded status of a step of the run, if it has one.
fn step_status<'r>(run: &'r RunRecord, name: &str) -> Option<&'r str> {
    run.steps.as_array()?.iter().find(|s| s["name"] == name)?["status"].as_str()
}

/// Records a step as running before it takes effect.
async fn begin_step(ctx: &Ctx<'_>, step: &Step, run: &mut RunRecord) -> Result<(), String> {
    if let Some(a) = run.steps.as_array_mut() {
        a.retain(|s| s["name"] != step.name());
        a.push(json!({"name": step.name(), "kind": kind(step), "status": "running"}));
    }
    ctx.rt
        .store
        .control()
        .save_run(run)
        .await
        .map_err(|e| e.to_string())
}

fn run_steps<'a>(
    ctx: &'a mut Ctx<'_>,
    steps: &'a [Step],
    run: &'a mut RunRecord,
) -> Pin<Box<dyn Future<Output = Result<Ended, String>> + Send + 'a>> {
    Box::pin(async move {
        for step in steps {
            let name = step.name().to_string();
            if succeeded(run, &name) {
                if let Step::Condition {
                    then, otherwise, ..
                } = step
                {
                    let branch = ctx.values["steps"][&name]["result"] == true;
                    if let Ended::Waiting =
                        run_steps(ctx, if branch { then } else { otherwise }, run).await?
                    {
                        return Ok(Ended::Waiting);
                    }
                }
                continue;
            }
            let started = Instant::now();
            ctx.begun = step_status(run, &name) == Some("running");
            if matches!(step, Step::DeleteRecord { .. }) && !ctx.begun {
                // A delete cannot be told apart from a record that never was, so say
                // first that it is under way: a resumed run then knows it may be done.
                begin_step(ctx, step, run).await?;
            }
            let mut attempts = 0;
            let (inputs, result) = loop {
                attempts += 1;
                let (inputs, result) = run_step(ctx, step, &run.id, run.depth).await;
                match result {
                    Err(StepError::Transient(e)) if attempts < crate::MAX_ATTEMPTS => {
                        ctx.begun = true;
                        let wait = (BACKOFF_BASE_MS << (attempts - 1)).min(BACKOFF_CAP_MS);
                        tracing::info!(run = %run.id, step = %name, attempts, error = %e, "retrying");
                        tokio::time::sleep(Duration::from_millis(wait)).await;
                    }
                    other => break (inputs, other),
                }
            };
            let (status, outputs, error) = match &result {
                Ok(o) => ("succeeded", o.clone(), None),
                Err(StepError::Waiting(a)) => ("waiting", json!({"approval": a}), None),
                Err(StepError::Transient(e) | StepError::Permanent(e)) => {
                    ("failed", Json::Null, Some(e.clone()))
                }
            };
            let record = json!({
                "name": name,
                "kind": kind(step),
                "status": status,
                "inputs": inputs,
                "outputs": outputs,
                "error": error,
                "attempts": attempts,
                "duration_ms": started.elapsed().as_millis() as u64,
            });
            if let Some(a) = run.steps.as_array_mut() {
                a.retain(|s| s["name"] != name.as_str());
                a.push(record);
            }
            ctx.rt
                .store
                .control()
                .save_run(run)
                .await
                .map_err(|e| e.to_string())?;
            match result {
                Ok(o) => {
                    ctx.values["steps"][&name] = o.clone();
                    if let Step::Condition {
                        then, otherwise, ..
                    } = step
                    {
                        let branch = o["result"] == true;
                        if let Ended::Waiting =
                            run_steps(ctx, if branch { then } else { otherwise }, run).await?
                        {
                            return Ok(Ended::Waiting);
                        }
                    }
                }
                Err(StepError::Waiting(_)) => return Ok(Ended::Waiting),
                Err(StepError::Transient(e) | StepError::Permanent(e)) => {
                    return Err(format!("step '{name}': {e}"));
                }
            }
        }
        Ok(Ended::Done)
    })
}

fn kind(step: &Step) -> &'static str {
    match step {
        Step::GetRecord { .. } => "get_record",
        Step::ListRecords { .. } => "list_records",
        Step::CreateRecord { .. } => "create_record",
        Step::UpdateRecord { .. } => "update_record",
        Step::DeleteRecord { .. } => "delete_record",
        Step::Condition { .. } => "condition",
        Step::SetVariable { .. } => "set_variable",
        Step::SendEmail { .. } => "send_email",
        Step::HttpRequest { .. } => "http_request",
        Step::StartApproval { .. } => "start_approval",
    }
}

fn text(ctx: &Ctx<'_>, s: &str) -> Result<String, StepError> {
    match render(&ctx.values, s, false).map_err(permanent)? {
        Json::String(s) => Ok(s),
        Json::Null => Ok(String::new()),
        other => Ok(other.to_string()),
    }
}

fn object(v: Json) -> Result<Map<String, Json>, StepError> {
    match v {
        Json::Object(m) => Ok(m),
        other => Err(permanent(format!(
            "expected an object of values, got {other}"
        ))),
    }
}

/// Runs one step once: the inputs it used (templates filled) and its outputs.
async fn run_step(
    ctx: &mut Ctx<'_>,
    step: &Step,
    run_id: &str,
    depth: u32,
) -> (Json, Result<Json, StepError>) {
    let mut inputs = Json::Null;
    let out = step_body(ctx, step, run_id, depth, &mut inputs).await;
    (inputs, out)
}

async fn step_body(
    ctx: &mut Ctx<'_>,
    step: &Step,
    run_id: &str,
    depth: u32,
    inputs: &mut Json,
) -> Result<Json, StepError> {
    let catalog = ctx.db.catalog();
    let entity = |name: &str| {
        catalog
            .entity(name)
            .cloned()
            .ok_or_else(|| permanent(format!("no entity '{name}' in the bound database")))
    };
    // The flow's writes are its owner's, one run deeper than what triggered it.
    let actor = Actor {
        email: ctx.flow.definition.owner.clone(),
        depth: depth + 1,
        dry_run: ctx.dry_run,
    };
    let version = catalog.version;
    match step {
        Step::GetRecord { entity: e, id, .. } => {
            let id = text(ctx, id)?;
            *inputs = json!({"entity": e, "id": id});
            let e = entity(e)?;
            ctx.rights.check(&e.name, "Read").map_err(permanent)?;
            let row = records::get(&ctx.db, &e, &id)
                .await?
                .ok_or_else(|| permanent(format!("no {} with id {id}", e.name)))?;
            Ok(json!({"record": record_json(&e, version, &row)}))
        }
        Step::ListRecords {
            entity: e,
            filter,
            top,
            ..
        } => {
            let filter = match filter {
                Some(f) => Some(match render(&ctx.values, f, true).map_err(permanent)? {
                    Json::String(s) => s,
                    other => other.to_string(),
                }),
                None => None,
            };
            *inputs = json!({"entity": e, "filter": filter, "top": top});
            let e = entity(e)?;
            ctx.rights.check(&e.name, "Read").map_err(permanent)?;
            let expr = match &filter {
                Some(f) => {
                    let x = parse_filter(f).map_err(|x| permanent(format!("filter: {x}")))?;
                    let props = EntityProperties {
                        entity: &e,
                        version,
                    };
                    check_filter(&x, f, &props).map_err(|x| permanent(format!("filter: {x}")))?;
                    Some(x)
                }
                None => None,
            };
            let layout = ctx.db.layout(&e);
            let q = ListQuery {
                filter: expr,
                orderby: Vec::new(),
                skip: 0,
                limit: top.map_or(DEFAULT_LIST_TOP, u64::from),
                after: None,
            };
            let page = records::list(&ctx.db, &e, &layout.columns, &q).await?;
            let value: Vec<Json> = page
                .rows
                .iter()
                .map(|r| Json::Object(record_json(&e, version, r)))
                .collect();
            Ok(json!({"count": value.len(), "value": value}))
        }
        Step::CreateRecord {
            entity: e, values, ..
        } => {
            let values = render_json(
                &ctx.values,
                &Json::Object(values.clone().into_iter().collect()),
            )
            .map_err(permanent)?;
            *inputs = json!({"entity": e, "values": values});
            let e = entity(e)?;
            ctx.rights.check(&e.name, "Create").map_err(permanent)?;
            let mut values = object(values)?;
            // The same run and step always create the same id, so a step repeated after
            // a crash (its insert committed, its record not yet saved) finds its record
            // instead of making a second one.
            let id = uuid::Uuid::new_v5(
                &uuid::Uuid::NAMESPACE_OID,
                format!("{}/{}", run_id, step.name()).as_bytes(),
            )
            .to_string();
            values
                .entry(uplift_model::entity::KEY.to_string())
                .or_insert(Json::String(id.clone()));
            let row = match records::insert(&ctx.db, &e, &values, &actor).await {
                Ok(row) => row,
                Err(uplift_store::StoreError::Conflict(_)) => records::get(&ctx.db, &e, &id)
                    .await?
                    .ok_or_else(|| permanent(format!("a {} with id {id} exists", e.name)))?,
                Err(other) => return Err(other.into()),
            };
            ctx.rt.wake();
            Ok(json!({"record": record_json(&e, version, &row)}))
        }
        Step::UpdateRecord {
            entity: e,
            id,
            values,
            ..
        } => {
            let id = text(ctx, id)?;
            let values = render_json(
                &ctx.values,
                &Json::Object(values.clone().into_iter().collect()),
            )
            .map_err(permanent)?;
            *inputs = json!({"entity": e, "id": id, "values": values});
            let e = entity(e)?;
            ctx.rights
                .check(&e.name, version.update_privilege())
                .map_err(permanent)?;
            let row = records::update(&ctx.db, &e, &id, &object(values)?, None, &actor).await?;
            ctx.rt.wake();
            Ok(json!({"record": record_json(&e, version, &row)}))
        }
        Step::DeleteRecord { entity: e, id, .. } => {
            let id = text(ctx, id)?;
            *inputs = json!({"entity": e, "id": id});
            let e = entity(e)?;
            ctx.rights.check(&e.name, "Delete").map_err(permanent)?;
            match records::delete(&ctx.db, &e, &id, None, &actor).await {
                Ok(()) => {}
                // This step's own earlier attempt deleted it.
                Err(uplift_store::StoreError::NotFound(_)) if ctx.begun => {}
                Err(err) => return Err(err.into()),
            }
            ctx.rt.wake();
            Ok(json!({"id": id}))
        }
        Step::Condition { expression, .. } => {
            *inputs = json!({"expression": expression});
            let x = parse_filter(expression).map_err(|x| permanent(format!("expression: {x}")))?;
            let result = eval_filter(&x, &|p| lookup_path(&ctx.values, p));
            Ok(json!({"result": result}))
        }
        Step::SetVariable {
            variable, value, ..
        } => {
            let v = render_json(&ctx.values, value).map_err(permanent)?;
            *inputs = json!({"variable": variable, "value": v});
            ctx.values["variables"][variable] = v.clone();
            Ok(json!({"value": v}))
        }
        Step::HttpRequest {
            method,
            url,
            headers,
            body,
            ..
        } => {
            let url = text(ctx, url)?;
            let body = match body {
                Some(b) => Some(render_json(&ctx.values, b).map_err(permanent)?),
                None => None,
            };
            let mut hs = Map::new();
            for (k, v) in headers {
                hs.insert(k.clone(), Json::String(text(ctx, v)?));
            }
            *inputs = json!({"method": method, "url": url, "headers": hs, "body": body});
            if let Some(sink) = ctx.sink.as_ref().filter(|s| !s.allows(&url)) {
                let id = captured(ctx, sink, "http", run_id, inputs).await?;
                return Ok(json!({"status": 200, "body": null, "captured": id}));
            }
            let m = reqwest::Method::from_bytes(method.as_bytes())
                .map_err(|_| permanent(format!("'{method}' is not an HTTP method")))?;
            let mut req = ctx.rt.http.request(m, &url);
            for (k, v) in &hs {
                req = req.header(k, v.as_str().unwrap_or_default());
            }
            if let Some(b) = &body {
                req = req.json(b);
            }
            let resp = req.send().await.map_err(|e| {
                if e.is_builder() {
                    permanent(format!("bad request: {e}"))
                } else {
                    StepError::Transient(format!("{url}: {e}"))
                }
            })?;
            let status = resp.status();
            let text = resp.text().await.unwrap_or_default();
            if status.is_server_error() {
                return Err(StepError::Transient(format!("{url} answered {status}")));
            }
            let body = serde_json::from_str(&text).unwrap_or(Json::String(text));
            if !status.is_success() {
                return Err(permanent(format!("{url} answered {status}: {body}")));
            }
            Ok(json!({"status": status.as_u16(), "body": body}))
        }
        Step::SendEmail {
            to, subject, body, ..
        } => {
            let to = to
                .iter()
                .map(|t| text(ctx, t))
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .flat_map(|t| {
                    t.split(',')
                        .map(str::trim)
                        .filter(|t| !t.is_empty())
                        .map(str::to_string)
                        .collect::<Vec<_>>()
                })
                .collect::<Vec<_>>();
            let (subject, body) = (text(ctx, subject)?, text(ctx, body)?);
            *inputs = json!({"to": to, "subject": subject, "body": body});
            if let Some(sink) = &ctx.sink {
                let id = captured(ctx, sink, "email", run_id, inputs).await?;
                return Ok(json!({"message_id": id, "captured": true}));
            }
            let mailer = ctx
                .rt
                .mailer()
                .ok_or_else(|| permanent("no mail transport is configured"))?;
            let id = mailer.send(&to, &subject, &body).await.map_err(|e| {
                if e.transient {
                    StepError::Transient(e.message)
                } else {
                    StepError::Permanent(e.message)
                }
            })?;
            Ok(json!({"message_id": id}))
        }
        Step::StartApproval {
            title,
            approvers,
            details,
            ..
        } => {
            let (title, details) = (text(ctx, title)?, text(ctx, details)?);
            let approvers = approvers
                .iter()
                .map(|a| text(ctx, a))
                .collect::<Result<Vec<_>, _>>()?;
            *inputs = json!({"title": title, "details": details, "approvers": approvers});
            if ctx.dry_run {
                // Nobody is asked during a rehearsal; the run goes on as if approved.
                return Ok(json!({"approval": null, "outcome": "approved", "dry_run": true}));
            }
            let a = ctx
                .rt
                .store
                .control()
                .approval_for(
                    &ctx.flow.env,
                    run_id,
                    step.name(),
                    &title,
                    &details,
                    &approvers,
                )
                .await?;
            match a.outcome {
                Some(outcome) => Ok(json!({
                    "approval": a.id,
                    "outcome": outcome,
                    "responder": a.responder,
                    "comment": a.comment,
                })),
                None => Err(StepError::Waiting(a.id)),
            }
        }
    }
}
