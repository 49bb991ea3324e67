//! An app's views, forms and commands, rewritten.

use std::collections::BTreeMap;

use uplift_model::app::{AppDef, Command, Form, View};

use super::filter::{self, Scope};
use super::names::{EntityTarget, NameMap};
use super::{Findings, Rewritten, entity_name, field_paths};

/// Rewrites `app` for the target catalog. `flow_clones` maps a flow's id to its upgraded
/// clone's, so each command runs the clone.
pub fn rewrite_app(
    app: &AppDef,
    map: &NameMap,
    flow_clones: &BTreeMap<String, String>,
) -> Rewritten<AppDef> {
    map.take_uses();
    let mut findings = Findings::default();
    let mut def = app.clone();
    def.views = app
        .views
        .iter()
        .map(|v| view(map, v, &mut findings))
        .collect();
    def.forms = app
        .forms
        .iter()
        .map(|f| form(map, f, &mut findings))
        .collect();
    def.commands = app
        .commands
        .iter()
        .map(|c| command(map, c, flow_clones, &mut findings))
        .collect();
    Rewritten {
        def,
        findings: findings.0,
        uses: map.take_uses(),
    }
}

/// Whether the entity is upgraded; if not, one finding says so and the part is kept.
fn upgraded(map: &NameMap, entity: &str, place: &str, findings: &mut Findings) -> bool {
    if matches!(map.entity(entity), EntityTarget::Upgraded(_)) {
        return true;
    }
    entity_name(map, entity, place, findings);
    false
}

fn view(map: &NameMap, v: &View, findings: &mut Findings) -> View {
    let place = format!("view '{}'", v.name);
    if !upgraded(map, &v.entity, &place, findings) {
        return v.clone();
    }
    let columns = v
        .columns
        .iter()
        .flat_map(|c| {
            let at = format!("{place} column '{c}'");
            field_paths(map, &v.entity, c, &at, findings)
        })
        .collect();
    let on_entity = |_: &[String]| Some((v.entity.clone(), 0));
    let scope: Scope = &on_entity;
    let filter = v.filter.as_ref().map(|f| {
        let (text, problems) = filter::filter(map, f, scope, &|_| None);
        findings.errors(&format!("{place} filter"), problems);
        text
    });
    let orderby = v.orderby.as_ref().map(|o| {
        let (text, problems) = filter::orderby(map, &v.entity, o);
        findings.errors(&format!("{place} order"), problems);
        text
    });
    View {
        name: v.name.clone(),
        entity: entity_name(map, &v.entity, &place, findings),
        columns,
        filter,
        orderby,
    }
}

fn form(map: &NameMap, f: &Form, findings: &mut Findings) -> Form {
    let place = format!("form '{}'", f.name);
    if !upgraded(map, &f.entity, &place, findings) {
        return f.clone();
    }
    let fields = f
        .fields
        .iter()
        .flat_map(|name| {
            let at = format!("{place} field '{name}'");
            field_paths(map, &f.entity, name, &at, findings)
        })
        .collect();
    Form {
        name: f.name.clone(),
        entity: entity_name(map, &f.entity, &place, findings),
        fields,
    }
}

fn command(
    map: &NameMap,
    c: &Command,
    flow_clones: &BTreeMap<String, String>,
    findings: &mut Findings,
) -> Command {
    let place = format!("command '{}'", c.label);
    if !upgraded(map, &c.entity, &place, findings) {
        return c.clone();
    }
    let flow = match flow_clones.get(&c.flow) {
        Some(clone) => clone.clone(),
        None => {
            findings.warning(
                &place,
                format!(
                    "flow '{}' has no upgraded clone: the command still runs the original",
                    c.flow
                ),
            );
            c.flow.clone()
        }
    };
    Command {
        label: c.label.clone(),
        entity: entity_name(map, &c.entity, &place, findings),
        flow,
    }
}
