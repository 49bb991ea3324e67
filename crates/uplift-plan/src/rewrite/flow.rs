//! A flow's trigger and steps, rewritten: entities, filters, conditions, `values` maps
//! and every `@{…}` template in its strings.

use std::collections::BTreeMap;

use serde_json::{Map, Value as Json, json};
use uplift_model::FieldType;
use uplift_model::flow::{FlowDef, Step, Trigger};

use super::filter::{self, Problem, Scope};
use super::names::{NameMap, PathTarget};
use super::{Findings, Rewritten, entity_name};

/// Rewrites `flow` for the target catalog. The name, owner and editors are kept: the
/// caller names the clone.
pub fn rewrite_flow(flow: &FlowDef, map: &NameMap) -> Rewritten<FlowDef> {
    map.take_uses();
    let mut entities = BTreeMap::new();
    collect_entities(&flow.steps, &mut entities);
    let trigger_entity = flow.trigger.entity().map(str::to_string);
    let records = |segments: &[String]| record_of(segments, trigger_entity.as_deref(), &entities);
    let mut cx = Cx {
        map,
        records: &records,
        findings: Findings::default(),
    };
    let mut def = flow.clone();
    def.trigger = cx.trigger(&flow.trigger);
    def.steps = flow.steps.iter().map(|s| cx.step(s)).collect();
    Rewritten {
        def,
        findings: cx.findings.0,
        uses: map.take_uses(),
    }
}

/// Every record step's source entity, by step name (nested steps included).
fn collect_entities(steps: &[Step], out: &mut BTreeMap<String, String>) {
    for s in steps {
        if let Some(e) = s.entity() {
            out.insert(s.name().to_string(), e.to_string());
        }
        if let Step::Condition {
            then, otherwise, ..
        } = s
        {
            collect_entities(then, out);
            collect_entities(otherwise, out);
        }
    }
}

/// The entity a variable path reads records of, and how many segments name the
/// variable: `trigger/record/…` (2), `steps/find/record/…` and `steps/find/value[0]/…` (3).
fn record_of(
    segments: &[String],
    trigger: Option<&str>,
    steps: &BTreeMap<String, String>,
) -> Option<(String, usize)> {
    let bare = |s: &String| s.split('[').next().unwrap_or(s).trim().to_string();
    let names: Vec<String> = segments.iter().take(3).map(bare).collect();
    match names
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["trigger", "record", ..] => Some((trigger?.to_string(), 2)),
        ["steps", step, "record" | "value", ..] => Some((steps.get(*step)?.clone(), 3)),
        _ => None,
    }
}

struct Cx<'a> {
    map: &'a NameMap<'a>,
    records: Scope<'a>,
    findings: Findings,
}

impl Cx<'_> {
    fn trigger(&mut self, t: &Trigger) -> Trigger {
        let place = "trigger";
        let rewrite = |cx: &mut Cx, entity: &String, filter: &Option<String>| {
            let on = |_: &[String]| Some((entity.clone(), 0));
            let filter = filter.as_ref().map(|f| {
                let (text, problems) = filter::filter(cx.map, f, &on, cx.records);
                cx.findings.errors("trigger filter", problems);
                text
            });
            (entity_name(cx.map, entity, place, &mut cx.findings), filter)
        };
        match t {
            Trigger::RecordCreated { entity, filter } => {
                let (entity, filter) = rewrite(self, entity, filter);
                Trigger::RecordCreated { entity, filter }
            }
            Trigger::RecordUpdated { entity, filter } => {
                let (entity, filter) = rewrite(self, entity, filter);
                Trigger::RecordUpdated { entity, filter }
            }
            Trigger::RecordDeleted { entity, filter } => {
                let (entity, filter) = rewrite(self, entity, filter);
                Trigger::RecordDeleted { entity, filter }
            }
            Trigger::AppCommand { entity } => Trigger::AppCommand {
                entity: entity_name(self.map, entity, place, &mut self.findings),
            },
            Trigger::Schedule { .. } | Trigger::Manual => t.clone(),
        }
    }

    fn step(&mut self, s: &Step) -> Step {
        let place = format!("step '{}'", s.name());
        let mut out = s.clone();
        match &mut out {
            Step::GetRecord { entity, id, .. } | Step::DeleteRecord { entity, id, .. } => {
                *id = self.text(id, &format!("{place} id"));
                *entity = entity_name(self.map, entity, &place, &mut self.findings);
            }
            Step::ListRecords { entity, filter, .. } => {
                let source = entity.clone();
                let on = |_: &[String]| Some((source.clone(), 0));
                if let Some(f) = filter {
                    let (text, problems) = filter::filter(self.map, f, &on, self.records);
                    self.findings.errors(&format!("{place} filter"), problems);
                    *f = text;
                }
                *entity = entity_name(self.map, entity, &place, &mut self.findings);
            }
            Step::CreateRecord { entity, values, .. } => {
                *values = self.values(entity, values, &place);
                *entity = entity_name(self.map, entity, &place, &mut self.findings);
            }
            Step::UpdateRecord {
                entity, id, values, ..
            } => {
                *id = self.text(id, &format!("{place} id"));
                *values = self.values(entity, values, &place);
                *entity = entity_name(self.map, entity, &place, &mut self.findings);
            }
            Step::Condition {
                expression,
                then,
                otherwise,
                ..
            } => {
                let (text, problems) =
                    filter::filter(self.map, expression, self.records, self.records);
                self.findings
                    .errors(&format!("{place} expression"), problems);
                *expression = text;
                *then = then.iter().map(|s| self.step(s)).collect();
                *otherwise = otherwise.iter().map(|s| self.step(s)).collect();
            }
            _ => self.strings(&mut out, &place),
        }
        out
    }

    /// The template strings of the steps that name no entity.
    fn strings(&mut self, s: &mut Step, place: &str) {
        match s {
            Step::SetVariable { value, .. } => *value = self.json(value, &format!("{place} value")),
            Step::SendEmail {
                to, subject, body, ..
            } => {
                for t in to.iter_mut() {
                    *t = self.text(t, &format!("{place} to"));
                }
                *subject = self.text(subject, &format!("{place} subject"));
                *body = self.text(body, &format!("{place} body"));
            }
            Step::HttpRequest {
                url, headers, body, ..
            } => {
                *url = self.text(url, &format!("{place} url"));
                for v in headers.values_mut() {
                    *v = self.text(v, &format!("{place} headers"));
                }
                if let Some(b) = body {
                    *b = self.json(b, &format!("{place} body"));
                }
            }
            Step::StartApproval {
                title,
                approvers,
                details,
                ..
            } => {
                *title = self.text(title, &format!("{place} title"));
                for a in approvers.iter_mut() {
                    *a = self.text(a, &format!("{place} approvers"));
                }
                *details = self.text(details, &format!("{place} details"));
            }
            _ => {}
        }
    }

    /// A string with every template in it rewritten.
    fn text(&mut self, s: &str, place: &str) -> String {
        let mut out = String::new();
        let mut rest = s;
        while let Some(i) = rest.find("@{") {
            let Some(end) = rest[i..].find('}') else {
                break;
            };
            let (t, problems) = filter::template(self.map, &rest[i + 2..i + end], self.records);
            self.findings.errors(place, problems);
            out.push_str(&rest[..i]);
            out.push_str(&format!("@{{{t}}}"));
            rest = &rest[i + end + 1..];
        }
        out.push_str(rest);
        out
    }

    fn json(&mut self, v: &Json, place: &str) -> Json {
        match v {
            Json::String(s) => Json::String(self.text(s, place)),
            Json::Array(a) => Json::Array(a.iter().map(|v| self.json(v, place)).collect()),
            Json::Object(o) => Json::Object(
                o.iter()
                    .map(|(k, v)| (k.clone(), self.json(v, place)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    /// A create or update step's values: keys mapped to target fields, complex values
    /// spread over their flattened fields, labels turned into option values, Currency
    /// objects into Money ones.
    fn values(
        &mut self,
        entity: &str,
        values: &BTreeMap<String, Json>,
        place: &str,
    ) -> BTreeMap<String, Json> {
        let mut out = BTreeMap::new();
        for (key, value) in values {
            let at = format!("{place} value '{key}'");
            let value = self.json(value, &at);
            match self.map.path(entity, std::slice::from_ref(key)) {
                PathTarget::One { path, options } => {
                    let v = self.one_value(entity, key, value, options, &at);
                    out.insert(path.join("/"), v);
                }
                PathTarget::Many(_) => self.spread(entity, key, value, &at, &mut out),
                other => {
                    let p = filter::path_problem(std::slice::from_ref(key), &other);
                    self.findings.error(&at, p);
                    out.insert(key.clone(), value);
                }
            }
        }
        out
    }

    fn one_value(
        &mut self,
        entity: &str,
        key: &str,
        value: Json,
        options: Option<Vec<(String, i64)>>,
        at: &str,
    ) -> Json {
        if let (Some(opts), Json::String(label)) = (&options, &value)
            && !label.contains("@{")
        {
            return match opts.iter().find(|(l, _)| l == label) {
                Some((_, v)) => json!(v),
                None => {
                    self.findings.error(
                        at,
                        Problem {
                            message: format!("'{label}' is not an option of '{key}'"),
                            suggestion: None,
                        },
                    );
                    value
                }
            };
        }
        let is_currency = self
            .map
            .source
            .entity(entity)
            .and_then(|e| e.field(self.map.source.version, key))
            .is_some_and(|f| matches!(f.ty, FieldType::Currency));
        match value {
            Json::Object(o) if is_currency => {
                self.findings.warning(
                    at,
                    "a Money value takes an exchange rate; without one it is 1".into(),
                );
                let mut m = Map::new();
                for (k, v) in o {
                    m.insert(if k == "code" { "currency".into() } else { k }, v);
                }
                Json::Object(m)
            }
            other => other,
        }
    }

    /// A complex value (`{"first_name": …}`) over the fields it was flattened into.
    fn spread(
        &mut self,
        entity: &str,
        key: &str,
        value: Json,
        at: &str,
        out: &mut BTreeMap<String, Json>,
    ) {
        let Json::Object(parts) = value else {
            let p = filter::path_problem(
                &[key.to_string()],
                &self.map.path(entity, &[key.to_string()]),
            );
            self.findings.error(at, p);
            out.insert(key.to_string(), value);
            return;
        };
        for (part, v) in parts {
            let path = [key.to_string(), part.clone()];
            match self.map.path(entity, &path) {
                PathTarget::One { path, .. } => {
                    out.insert(path.join("/"), v);
                }
                other => {
                    self.findings.error(at, filter::path_problem(&path, &other));
                    out.insert(format!("{key}/{part}"), v);
                }
            }
        }
    }
}
