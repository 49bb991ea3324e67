//! Automation flows: one trigger and a list of steps, with values drawn from the
//! trigger and earlier steps through `@{…}` templates.
//!
//! A flow names entities and fields by their logical names, filters with the data
//! API's `$filter` language and branches on `$filter` expressions over its variables
//! (`trigger/record/Amount gt 100`), so every reference it makes can be checked here
//! against the catalog, and found and rewritten by an upgrade.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::catalog::Catalog;
use crate::entity::{Entity, KEY};
use crate::filter::{PropertyResolver, PropertyType, ScalarType, check_filter, parse_filter};
use crate::layout::EntityProperties;

/// Longest flow or step name accepted.
pub const MAX_NAME_CHARS: usize = 100;
/// Deepest nesting of conditions accepted.
pub const MAX_NESTING: usize = 8;
/// The most rows a `list_records` step may ask for.
pub const MAX_LIST_TOP: u32 = 5000;

/// A flow as its makers write it (JSON or TOML).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowDef {
    pub name: String,
    pub owner: String,
    #[serde(default)]
    pub editors: Vec<String>,
    #[serde(default)]
    pub state: FlowState,
    pub trigger: Trigger,
    pub steps: Vec<Step>,
}

/// Whether a flow's trigger fires.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlowState {
    #[default]
    On,
    Off,
}

/// What starts a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Trigger {
    RecordCreated {
        entity: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        filter: Option<String>,
    },
    RecordUpdated {
        entity: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        filter: Option<String>,
    },
    RecordDeleted {
        entity: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        filter: Option<String>,
    },
    /// Every `every` (`15m`, `2h`, `1d`) or on a five-field `cron` expression.
    Schedule {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        every: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cron: Option<String>,
    },
    /// Started through the API.
    Manual,
    /// Started by an app command on a record of `entity`.
    AppCommand { entity: String },
}

impl Trigger {
    /// The entity whose record `trigger.record` is, if any.
    pub fn entity(&self) -> Option<&str> {
        match self {
            Trigger::RecordCreated { entity, .. }
            | Trigger::RecordUpdated { entity, .. }
            | Trigger::RecordDeleted { entity, .. }
            | Trigger::AppCommand { entity } => Some(entity),
            Trigger::Schedule { .. } | Trigger::Manual => None,
        }
    }
}

/// One step. Values in strings may hold `@{…}` templates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    GetRecord {
        name: String,
        entity: String,
        id: String,
    },
    ListRecords {
        name: String,
        entity: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        filter: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        top: Option<u32>,
    },
    CreateRecord {
        name: String,
        entity: String,
        values: BTreeMap<String, Json>,
    },
    UpdateRecord {
        name: String,
        entity: String,
        id: String,
        values: BTreeMap<String, Json>,
    },
    DeleteRecord {
        name: String,
        entity: String,
        id: String,
    },
    /// Runs `then` when `expression` (the `$filter` language over `trigger/…`,
    /// `steps/…` and `variables/…`) holds, `else` otherwise.
    Condition {
        name: String,
        expression: String,
        #[serde(default)]
        then: Vec<Step>,
        #[serde(default, rename = "else")]
        otherwise: Vec<Step>,
    },
    SetVariable {
        name: String,
        variable: String,
        value: Json,
    },
    SendEmail {
        name: String,
        to: Vec<String>,
        subject: String,
        #[serde(default)]
        body: String,
    },
    HttpRequest {
        name: String,
        method: String,
        url: String,
        #[serde(default)]
        headers: BTreeMap<String, String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body: Option<Json>,
    },
    /// Asks `approvers` and waits for one to answer through the API.
    StartApproval {
        name: String,
        title: String,
        approvers: Vec<String>,
        #[serde(default)]
        details: String,
    },
}

impl Step {
    pub fn name(&self) -> &str {
        match self {
            Step::GetRecord { name, .. }
            | Step::ListRecords { name, .. }
            | Step::CreateRecord { name, .. }
            | Step::UpdateRecord { name, .. }
            | Step::DeleteRecord { name, .. }
            | Step::Condition { name, .. }
            | Step::SetVariable { name, .. }
            | Step::SendEmail { name, .. }
            | Step::HttpRequest { name, .. }
            | Step::StartApproval { name, .. } => name,
        }
    }

    /// The entity a record step works on.
    pub fn entity(&self) -> Option<&str> {
        match self {
            Step::GetRecord { entity, .. }
            | Step::ListRecords { entity, .. }
            | Step::CreateRecord { entity, .. }
            | Step::UpdateRecord { entity, .. }
            | Step::DeleteRecord { entity, .. } => Some(entity),
            _ => None,
        }
    }

    /// What `steps.<name>.<output>` may name, and whether it holds records.
    fn outputs(&self) -> &'static [(&'static str, Output)] {
        match self {
            Step::GetRecord { .. } | Step::CreateRecord { .. } | Step::UpdateRecord { .. } => {
                &[("record", Output::Record)]
            }
            Step::ListRecords { .. } => &[
                ("value", Output::Records),
                ("count", Output::Scalar(ScalarType::Int)),
            ],
            Step::DeleteRecord { .. } => &[("id", Output::Scalar(ScalarType::String))],
            Step::SendEmail { .. } => &[("message_id", Output::Scalar(ScalarType::String))],
            Step::HttpRequest { .. } => &[
                ("status", Output::Scalar(ScalarType::Int)),
                ("body", Output::Any),
            ],
            Step::StartApproval { .. } => &[
                ("outcome", Output::Scalar(ScalarType::String)),
                ("responder", Output::Scalar(ScalarType::String)),
                ("comment", Output::Scalar(ScalarType::String)),
            ],
            Step::Condition { .. } | Step::SetVariable { .. } => &[],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Output {
    Record,
    Records,
    Scalar(ScalarType),
    Any,
}

/// One thing wrong with a flow, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("flow '{flow}': {place}: {problem}")]
pub struct FlowError {
    pub flow: String,
    /// `trigger`, `step 'find' filter`, `step 'mail' to`, …
    pub place: String,
    pub problem: String,
}

/// The templates `@{…}` in a string, as the text between the braces.
pub fn templates(s: &str) -> Result<Vec<&str>, String> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find("@{") {
        let after = &rest[i + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("'@{{' without a closing '}}' in '{s}'"))?;
        out.push(after[..end].trim());
        rest = &after[end + 1..];
    }
    Ok(out)
}

/// What a flow step can see: the trigger, and the steps and variables before it.
struct Scope<'a> {
    catalog: &'a Catalog,
    trigger: &'a Trigger,
    steps: BTreeMap<String, &'a Step>,
    variables: BTreeSet<String>,
}

impl Scope<'_> {
    fn entity(&self, name: &str) -> Option<&Entity> {
        self.catalog.entity(name)
    }

    fn field_ok(&self, entity: &str, path: &[String]) -> Result<(), String> {
        let Some(e) = self.entity(entity) else {
            return Err(format!("no entity '{entity}'"));
        };
        if path.is_empty() || (path.len() == 1 && path[0] == KEY) {
            return Ok(());
        }
        let props = EntityProperties {
            entity: e,
            version: self.catalog.version,
        };
        props
            .resolve(path)
            .map(|_| ())
            .ok_or_else(|| format!("'{}' is not a field of '{entity}'", path.join("/")))
    }

    /// Checks a template path: `trigger.record.FullName/last_name`,
    /// `steps.find.value[0].id`, `variables.total`.
    fn template(&self, path: &str) -> Result<(), String> {
        let segments: Vec<&str> = path.split('.').map(|s| s.trim()).collect();
        let bare = |s: &str| s.split('[').next().unwrap_or(s).to_string();
        let field_path = |rest: &[&str]| -> Vec<String> {
            rest.iter()
                .flat_map(|s| bare(s).split('/').map(str::to_string).collect::<Vec<_>>())
                .collect()
        };
        match segments.as_slice() {
            ["trigger", "record", rest @ ..] => match self.trigger.entity() {
                Some(e) => self.field_ok(e, &field_path(rest)),
                None => Err("this trigger has no record".into()),
            },
            ["trigger", "time"] | ["trigger", "user"] => Ok(()),
            ["steps", step, rest @ ..] => {
                let name = bare(step);
                let s = self
                    .steps
                    .get(&name)
                    .ok_or_else(|| format!("no step '{name}' before this one"))?;
                let Some((output, more)) = rest.split_first() else {
                    return Ok(());
                };
                let out = bare(output);
                let kind = s
                    .outputs()
                    .iter()
                    .find(|(n, _)| *n == out)
                    .map(|(_, k)| *k)
                    .ok_or_else(|| {
                        let names: Vec<_> = s.outputs().iter().map(|(n, _)| *n).collect();
                        if names.is_empty() {
                            format!("step '{name}' has no outputs")
                        } else {
                            format!(
                                "step '{name}' has no output '{out}' (it has {})",
                                names.join(", ")
                            )
                        }
                    })?;
                match kind {
                    Output::Record | Output::Records => {
                        self.field_ok(s.entity().unwrap_or_default(), &field_path(more))
                    }
                    Output::Scalar(_) if !more.is_empty() => {
                        Err(format!("'{out}' of step '{name}' has no parts"))
                    }
                    _ => Ok(()),
                }
            }
            ["variables", v] if self.variables.contains(*v) => Ok(()),
            ["variables", v] => Err(format!("no variable '{v}' is set before this step")),
            _ => Err(format!(
                "'{path}' does not start with trigger., steps. or variables."
            )),
        }
    }

    /// Checks every template in every string of a JSON value.
    fn json(&self, v: &Json) -> Result<(), String> {
        match v {
            Json::String(s) => self.text(s),
            Json::Array(a) => a.iter().try_for_each(|x| self.json(x)),
            Json::Object(o) => o.values().try_for_each(|x| self.json(x)),
            _ => Ok(()),
        }
    }

    fn text(&self, s: &str) -> Result<(), String> {
        for t in templates(s)? {
            self.template(t).map_err(|e| format!("@{{{t}}}: {e}"))?;
        }
        Ok(())
    }
}

/// Lets the `$filter` checker type a condition's variables.
impl PropertyResolver for Scope<'_> {
    fn resolve(&self, path: &[String]) -> Option<PropertyType> {
        let p: Vec<&str> = path.iter().map(String::as_str).collect();
        let record = |entity: &str, rest: &[String]| -> Option<PropertyType> {
            let e = self.entity(entity)?;
            EntityProperties {
                entity: e,
                version: self.catalog.version,
            }
            .resolve(rest)
        };
        match p.as_slice() {
            ["trigger", "record", ..] => record(self.trigger.entity()?, &path[2..]),
            ["trigger", "user"] => Some(PropertyType::Scalar(ScalarType::String)),
            ["trigger", "time"] => Some(PropertyType::Scalar(ScalarType::DateTimeOffset)),
            ["variables", v] if self.variables.contains(*v) => {
                Some(PropertyType::Scalar(ScalarType::String))
            }
            ["steps", name, output, ..] => {
                let s = self.steps.get(*name)?;
                let kind = s.outputs().iter().find(|(n, _)| n == output)?.1;
                match kind {
                    Output::Record => record(s.entity()?, &path[3..]),
                    Output::Scalar(t) if path.len() == 3 => Some(PropertyType::Scalar(t)),
                    _ => None,
                }
            }
            _ => None,
        }
    }
}

/// Checks a flow against a catalog. Every problem is reported, each naming the step
/// and the field, so a maker fixes a definition in one round.
pub fn validate(flow: &FlowDef, catalog: &Catalog) -> Result<(), Vec<FlowError>> {
    let mut errors = Vec::new();
    let mut err = |place: String, problem: String| {
        errors.push(FlowError {
            flow: flow.name.clone(),
            place,
            problem,
        })
    };
    if let Some(p) = name_problem(&flow.name) {
        err("name".into(), p);
    }
    if flow.owner.trim().is_empty() {
        err("owner".into(), "a flow needs an owner".into());
    }
    check_trigger(&flow.trigger, catalog, &mut err);
    if flow.steps.is_empty() {
        err("steps".into(), "a flow needs at least one step".into());
    }
    let mut scope = Scope {
        catalog,
        trigger: &flow.trigger,
        steps: BTreeMap::new(),
        variables: BTreeSet::new(),
    };
    let mut seen = BTreeSet::new();
    check_steps(&flow.steps, &mut scope, &mut seen, 0, &mut err);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn check_trigger(t: &Trigger, catalog: &Catalog, err: &mut impl FnMut(String, String)) {
    let place = "trigger".to_string();
    match t {
        Trigger::RecordCreated { entity, filter }
        | Trigger::RecordUpdated { entity, filter }
        | Trigger::RecordDeleted { entity, filter } => match catalog.entity(entity) {
            None => err(place, format!("no entity '{entity}'")),
            Some(e) => {
                if let Some(f) = filter {
                    let props = EntityProperties {
                        entity: e,
                        version: catalog.version,
                    };
                    if let Err(problem) = parse_filter(f).and_then(|x| check_filter(&x, f, &props))
                    {
                        err(format!("{place} filter"), problem.to_string());
                    }
                }
            }
        },
        Trigger::AppCommand { entity } => {
            if catalog.entity(entity).is_none() {
                err(place, format!("no entity '{entity}'"));
            }
        }
        Trigger::Schedule { every, cron } => match (every, cron) {
            (Some(e), None) => {
                if let Err(p) = every_minutes(e) {
                    err(format!("{place} every"), p);
                }
            }
            (None, Some(c)) => {
                if let Err(p) = cron_fields(c) {
                    err(format!("{place} cron"), p);
                }
            }
            _ => err(
                place,
                "a schedule needs exactly one of 'every' and 'cron'".into(),
            ),
        },
        Trigger::Manual => {}
    }
}

/// `15m`, `2h`, `1d` in minutes.
pub fn every_minutes(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let shape = || format!("'{s}' is not a number followed by m, h or d");
    let unit = s.chars().last().ok_or_else(shape)?;
    let n: u64 = s[..s.len() - unit.len_utf8()]
        .parse()
        .map_err(|_| shape())?;
    let per = match unit {
        'm' => 1,
        'h' => 60,
        'd' => 60 * 24,
        _ => return Err(shape()),
    };
    let minutes = n.saturating_mul(per);
    if minutes == 0 {
        return Err("a schedule runs at most once a minute".into());
    }
    if minutes > MAX_EVERY_MINUTES {
        return Err(format!(
            "'{s}' is longer than a year; use a cron expression for rare schedules"
        ));
    }
    Ok(minutes)
}

/// The longest `every`: a year (366 days).
pub const MAX_EVERY_MINUTES: u64 = 366 * 24 * 60;

/// A five-field cron expression (minute hour day month weekday), as the scheduler
/// reads it.
fn cron_fields(s: &str) -> Result<(), String> {
    let fields = s.split_whitespace().count();
    if fields != 5 {
        return Err(format!(
            "'{s}' has {fields} fields; a cron expression has 5 (minute hour day month weekday)"
        ));
    }
    <croner::Cron as std::str::FromStr>::from_str(s)
        .map(|_| ())
        .map_err(|e| format!("'{s}': {e}"))
}

fn check_steps<'a>(
    steps: &'a [Step],
    scope: &mut Scope<'a>,
    seen: &mut BTreeSet<String>,
    depth: usize,
    err: &mut impl FnMut(String, String),
) {
    for step in steps {
        let name = step.name();
        let place = format!("step '{name}'");
        if let Some(p) = name_problem(name) {
            err(place.clone(), p);
        }
        if !seen.insert(name.to_lowercase()) {
            err(place.clone(), "another step has this name".into());
        }
        let text = |field: &str, s: &str, err: &mut dyn FnMut(String, String)| {
            if let Err(p) = scope.text(s) {
                err(format!("{place} {field}"), p);
            }
        };
        if let Some(entity) = step.entity()
            && scope.entity(entity).is_none()
        {
            err(place.clone(), format!("no entity '{entity}'"));
        }
        match step {
            Step::GetRecord { id, .. } | Step::DeleteRecord { id, .. } => text("id", id, err),
            Step::ListRecords {
                entity,
                filter,
                top,
                ..
            } => {
                if let (Some(f), Some(e)) = (filter, scope.entity(entity)) {
                    // Templates are filled in before the filter runs; check the shape
                    // with each template standing for a string literal.
                    text("filter", f, err);
                    let probe = fill_templates(f);
                    let props = EntityProperties {
                        entity: e,
                        version: scope.catalog.version,
                    };
                    if let Err(p) =
                        parse_filter(&probe).and_then(|x| check_filter(&x, &probe, &props))
                    {
                        err(format!("{place} filter"), p.to_string());
                    }
                }
                if top.is_some_and(|t| t == 0 || t > MAX_LIST_TOP) {
                    err(
                        format!("{place} top"),
                        format!("top is between 1 and {MAX_LIST_TOP}"),
                    );
                }
            }
            Step::CreateRecord { entity, values, .. }
            | Step::UpdateRecord { entity, values, .. } => {
                if let Step::UpdateRecord { id, .. } = step {
                    text("id", id, err);
                }
                if let Some(e) = scope.entity(entity) {
                    for (field, v) in values {
                        if e.field(scope.catalog.version, field).is_none() {
                            err(
                                format!("{place} values"),
                                format!("'{field}' is not a field of '{entity}'"),
                            );
                        }
                        if let Err(p) = scope.json(v) {
                            err(format!("{place} values '{field}'"), p);
                        }
                    }
                }
            }
            Step::Condition {
                expression,
                then,
                otherwise,
                ..
            } => {
                match parse_filter(expression).and_then(|x| check_filter(&x, expression, &*scope)) {
                    Ok(()) => {}
                    Err(p) => err(format!("{place} expression"), p.to_string()),
                }
                if depth + 1 > MAX_NESTING {
                    err(
                        place.clone(),
                        format!("conditions nest at most {MAX_NESTING} deep"),
                    );
                } else {
                    check_steps(then, scope, seen, depth + 1, err);
                    check_steps(otherwise, scope, seen, depth + 1, err);
                }
            }
            Step::SetVariable {
                variable, value, ..
            } => {
                if let Err(p) = scope.json(value) {
                    err(format!("{place} value"), p);
                }
                scope.variables.insert(variable.clone());
            }
            Step::SendEmail {
                to, subject, body, ..
            } => {
                if to.is_empty() {
                    err(format!("{place} to"), "an e-mail needs a recipient".into());
                }
                for t in to {
                    if !t.contains("@{") && !t.contains('@') {
                        err(
                            format!("{place} to"),
                            format!("'{t}' is not an e-mail address"),
                        );
                    }
                    text("to", t, err);
                }
                text("subject", subject, err);
                text("body", body, err);
            }
            Step::HttpRequest {
                method,
                url,
                headers,
                body,
                ..
            } => {
                if !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method.as_str()) {
                    err(
                        format!("{place} method"),
                        format!("'{method}' is not GET, POST, PUT, PATCH or DELETE"),
                    );
                }
                if !(url.starts_with("http://")
                    || url.starts_with("https://")
                    || url.starts_with("@{"))
                {
                    err(
                        format!("{place} url"),
                        format!("'{url}' is not an http(s) URL"),
                    );
                }
                text("url", url, err);
                for v in headers.values() {
                    text("headers", v, err);
                }
                if let Some(b) = body
                    && let Err(p) = scope.json(b)
                {
                    err(format!("{place} body"), p);
                }
            }
            Step::StartApproval {
                title,
                approvers,
                details,
                ..
            } => {
                if approvers.is_empty() {
                    err(
                        format!("{place} approvers"),
                        "an approval needs an approver".into(),
                    );
                }
                for a in approvers {
                    text("approvers", a, err);
                }
                text("title", title, err);
                text("details", details, err);
            }
        }
        scope.steps.insert(name.to_string(), step);
    }
}

/// A filter with its templates filled by stand-ins, to check its shape before the
/// real values are known: inside quotes a GUID-shaped text (which is also a valid
/// string, so it fits text and lookup fields alike), elsewhere a number.
fn fill_templates(s: &str) -> String {
    const QUOTED: &str = "00000000-0000-0000-0000-000000000000";
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("@{") {
        out.push_str(&rest[..i]);
        match rest[i..].find('}') {
            Some(end) => {
                out.push_str(if out.ends_with('\'') { QUOTED } else { "0" });
                rest = &rest[i + end + 1..];
            }
            None => {
                rest = &rest[i..];
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

fn name_problem(name: &str) -> Option<String> {
    if name.trim().is_empty() {
        Some("a name cannot be empty".into())
    } else if name.chars().count() > MAX_NAME_CHARS {
        Some(format!("a name has at most {MAX_NAME_CHARS} characters"))
    } else if name.chars().any(char::is_control) {
        Some("a name cannot contain control characters".into())
    } else {
        None
    }
}

#[cfg(test)]
mod tests;
