//! Model-driven apps: views, forms and commands over an environment's entities.
//!
//! An app names entities and fields by their logical names and filters with the data
//! API's `$filter` language, so the same checks that guard the API guard an app, and
//! the upgrade can find (and later rewrite) every reference an app makes.

use serde::{Deserialize, Serialize};

use crate::catalog::Catalog;
use crate::filter::{check_filter, parse_filter, parse_orderby};
use crate::layout::EntityProperties;

/// Longest app, view, form or command name accepted.
pub const MAX_NAME_CHARS: usize = 100;

/// An app as its makers write it (JSON or TOML).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppDef {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The user (e-mail) who owns the app.
    pub owner: String,
    /// Users (e-mails) who may edit it besides the owner.
    #[serde(default)]
    pub editors: Vec<String>,
    #[serde(default)]
    pub views: Vec<View>,
    #[serde(default)]
    pub forms: Vec<Form>,
    #[serde(default)]
    pub commands: Vec<Command>,
}

/// A list of records: which entity, which columns, which rows, in which order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct View {
    pub name: String,
    pub entity: String,
    pub columns: Vec<String>,
    /// A `$filter` expression over the entity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// An `$orderby` expression over the entity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orderby: Option<String>,
}

/// One record's fields, for reading and editing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Form {
    pub name: String,
    pub entity: String,
    pub fields: Vec<String>,
}

/// A button on a record that runs a flow with that record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Command {
    pub label: String,
    pub entity: String,
    /// The id of the flow it runs.
    pub flow: String,
}

/// One thing wrong with an app, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("app '{app}': {place}: {problem}")]
pub struct AppError {
    pub app: String,
    /// `view 'Open orders'`, `form 'Order' field 'Total'`, …
    pub place: String,
    pub problem: String,
}

/// Checks an app against a catalog. `flow_trigger` gives the trigger of a flow of the
/// same environment by id (`None` when there is none), so a command can only name a
/// flow that commands on its entity start. Every problem is reported, not only the first, so a
/// maker fixes a definition in one round.
pub fn validate(
    app: &AppDef,
    catalog: &Catalog,
    flow_trigger: &dyn Fn(&str) -> Option<crate::flow::Trigger>,
) -> Result<(), Vec<AppError>> {
    let mut errors = Vec::new();
    let mut err = |place: String, problem: String| {
        errors.push(AppError {
            app: app.name.clone(),
            place,
            problem,
        })
    };
    if let Some(p) = name_problem(&app.name) {
        err("name".into(), p);
    }
    if app.owner.trim().is_empty() {
        err("owner".into(), "an app needs an owner".into());
    }
    let version = catalog.version;
    let mut names = std::collections::BTreeSet::new();
    for v in &app.views {
        let place = format!("view '{}'", v.name);
        if let Some(p) = name_problem(&v.name) {
            err(place.clone(), p);
        }
        if !names.insert(("view", v.name.to_lowercase())) {
            err(place.clone(), "another view has this name".into());
        }
        let Some(entity) = catalog.entity(&v.entity) else {
            err(place, format!("no entity '{}'", v.entity));
            continue;
        };
        let props = EntityProperties { entity, version };
        if v.columns.is_empty() {
            err(place.clone(), "a view needs at least one column".into());
        }
        for c in &v.columns {
            if !is_property(&props, c) {
                err(
                    format!("{place} column '{c}'"),
                    format!("not a field of '{}'", entity.name),
                );
            }
        }
        if let Some(f) = &v.filter {
            match parse_filter(f) {
                Ok(e) => {
                    if let Err(e) = check_filter(&e, f, &props) {
                        err(format!("{place} filter"), e.to_string());
                    }
                }
                Err(e) => err(format!("{place} filter"), e.to_string()),
            }
        }
        if let Some(o) = &v.orderby {
            match parse_orderby(o) {
                Ok(items) => {
                    for item in items {
                        if !is_property(&props, &item.path.join("/")) {
                            err(
                                format!("{place} orderby"),
                                format!(
                                    "'{}' is not a field of '{}'",
                                    item.path.join("/"),
                                    entity.name
                                ),
                            );
                        }
                    }
                }
                Err(e) => err(format!("{place} orderby"), e.to_string()),
            }
        }
    }
    for f in &app.forms {
        let place = format!("form '{}'", f.name);
        if let Some(p) = name_problem(&f.name) {
            err(place.clone(), p);
        }
        if !names.insert(("form", f.name.to_lowercase())) {
            err(place.clone(), "another form has this name".into());
        }
        let Some(entity) = catalog.entity(&f.entity) else {
            err(place, format!("no entity '{}'", f.entity));
            continue;
        };
        if f.fields.is_empty() {
            err(place.clone(), "a form needs at least one field".into());
        }
        for name in &f.fields {
            if entity.field(version, name).is_none() && name != crate::entity::KEY {
                err(
                    format!("{place} field '{name}'"),
                    format!("not a field of '{}'", entity.name),
                );
            }
        }
    }
    for c in &app.commands {
        let place = format!("command '{}'", c.label);
        if let Some(p) = name_problem(&c.label) {
            err(place.clone(), p);
        }
        if !names.insert(("command", c.label.to_lowercase())) {
            err(place.clone(), "another command has this label".into());
        }
        if catalog.entity(&c.entity).is_none() {
            err(place.clone(), format!("no entity '{}'", c.entity));
        }
        match flow_trigger(&c.flow) {
            None => err(place, format!("no flow '{}' in this environment", c.flow)),
            Some(crate::flow::Trigger::AppCommand { entity }) if entity == c.entity => {}
            Some(crate::flow::Trigger::AppCommand { entity }) => err(
                place,
                format!(
                    "flow '{}' runs on '{entity}' records, not '{}'",
                    c.flow, c.entity
                ),
            ),
            Some(_) => err(
                place,
                format!("flow '{}' is not started by app commands", c.flow),
            ),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Whether `path` (`Name`, `FullName/last_name`) is a property a view may show or
/// sort by: a field, a part of a structured field, or the key.
fn is_property(props: &EntityProperties<'_>, path: &str) -> bool {
    use crate::filter::PropertyResolver;
    let parts: Vec<String> = path.split('/').map(str::to_string).collect();
    props.resolve(&parts).is_some()
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
mod tests {
    use super::*;
    use crate::standard::classic_catalog;

    fn app(json: serde_json::Value) -> AppDef {
        serde_json::from_value(json).unwrap()
    }

    fn problems(a: &AppDef) -> Vec<String> {
        validate(a, &classic_catalog(), &|f| match f {
            "flow-1" => Some(crate::flow::Trigger::AppCommand {
                entity: "Contact".into(),
            }),
            "flow-2" => Some(crate::flow::Trigger::Manual),
            _ => None,
        })
        .err()
        .unwrap_or_default()
        .iter()
        .map(ToString::to_string)
        .collect()
    }

    #[test]
    fn a_sound_app_passes() {
        let a = app(serde_json::json!({
            "name": "Sales", "owner": "maker@x.test",
            "views": [{"name": "Big accounts", "entity": "Account",
                       "columns": ["Name", "Address/city"],
                       "filter": "contains(Name, 'a')", "orderby": "Name desc"}],
            "forms": [{"name": "Contact", "entity": "Contact", "fields": ["FullName", "Email"]}],
            "commands": [{"label": "Follow up", "entity": "Contact", "flow": "flow-1"}]
        }));
        assert_eq!(problems(&a), Vec::<String>::new());
    }

    #[test]
    fn each_problem_names_the_app_the_part_and_the_column() {
        let a = app(serde_json::json!({
            "name": "Sales", "owner": "",
            "views": [
                {"name": "V", "entity": "Account", "columns": ["Nope"],
                 "filter": "Name eq", "orderby": "Missing"},
                {"name": "W", "entity": "Nothing", "columns": ["Name"]}
            ],
            "forms": [{"name": "F", "entity": "Contact", "fields": ["Ghost"]}],
            "commands": [{"label": "C", "entity": "Contact", "flow": "flow-9"},
                         {"label": "D", "entity": "Account", "flow": "flow-1"},
                         {"label": "E", "entity": "Contact", "flow": "flow-2"}]
        }));
        let p = problems(&a);
        let expect = [
            "app 'Sales': owner: an app needs an owner",
            "app 'Sales': view 'V' column 'Nope': not a field of 'Account'",
            "app 'Sales': view 'V' orderby: 'Missing' is not a field of 'Account'",
            "app 'Sales': view 'W': no entity 'Nothing'",
            "app 'Sales': form 'F' field 'Ghost': not a field of 'Contact'",
            "app 'Sales': command 'C': no flow 'flow-9' in this environment",
            "app 'Sales': command 'D': flow 'flow-1' runs on 'Contact' records, not 'Account'",
            "app 'Sales': command 'E': flow 'flow-2' is not started by app commands",
        ];
        for e in expect {
            assert!(p.iter().any(|x| x == e), "missing {e:?} in {p:#?}");
        }
        assert!(
            p.iter()
                .any(|x| x.starts_with("app 'Sales': view 'V' filter:")),
            "{p:#?}"
        );
    }

    #[test]
    fn duplicate_names_and_unknown_keys_are_refused() {
        let a = app(serde_json::json!({
            "name": "Sales", "owner": "m@x.test",
            "views": [
                {"name": "V", "entity": "Account", "columns": ["Name"]},
                {"name": "v", "entity": "Account", "columns": ["Name"]}
            ]
        }));
        assert!(
            problems(&a)
                .iter()
                .any(|x| x == "app 'Sales': view 'v': another view has this name")
        );
        let unknown: Result<AppDef, _> = serde_json::from_value(serde_json::json!({
            "name": "Sales", "owner": "m@x.test", "viewz": []
        }));
        assert!(unknown.unwrap_err().to_string().contains("viewz"));
    }
}
