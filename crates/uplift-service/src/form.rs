//! The app player's forms as a browser shows them: which input each field of a form
//! gets, and a posted form (text per input) turned back into the record change the
//! data API takes. The change goes through the same data session as the API, so the
//! same rights, validation and `If-Match` check hold; a refused value comes back as a
//! [`ServiceError::Field`] naming the field, for the form to show it there.

use serde_json::{Map, Value as Json};
use uplift_model::{Entity, Field, FieldType, SchemaVersion};

use crate::auth::Actor;
use crate::data::Record;
use crate::data::shape::parse_if_match;
use crate::error::{Result, ServiceError};
use crate::player::{Play, Version, ViewPage};
use crate::policy::Database;
use crate::{Services, player};

/// How a form shows one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Text,
    Multiline,
    /// A whole number.
    Whole,
    /// An exact decimal, kept as text so no digit is lost.
    Decimal,
    /// One of the options: `(value posted, label shown)`.
    Choice(Vec<(String, String)>),
    YesNo,
    Date,
    /// An instant, RFC 3339 in UTC.
    Instant,
    /// A record of `target`, by its id.
    Lookup {
        target: String,
    },
    /// Shown, never posted: set by the platform, or an image.
    ReadOnly,
}

/// One input of a form: a field, or one part of a complex one (`Address/city`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormInput {
    /// The posted name and the label: the field's name, or `field/part`.
    pub name: String,
    pub input: Input,
    pub required: bool,
    /// The record's value as text (empty for none).
    pub value: String,
}

/// A form on one record, ready to show.
#[derive(Debug, Clone)]
pub struct FormView {
    pub app: String,
    pub form: String,
    pub entity: String,
    pub id: String,
    /// The record's ETag, posted back so a save refuses a record changed meanwhile.
    pub etag: Option<String>,
    pub inputs: Vec<FormInput>,
    /// The app's commands on this form's entity.
    pub commands: Vec<String>,
    /// The app plays on its environment's upgrade test database.
    pub on_test: bool,
}

/// An app as its player's start page shows it.
#[derive(Debug, Clone)]
pub struct AppHome {
    pub name: String,
    pub description: String,
    /// Each view's name and entity.
    pub views: Vec<(String, String)>,
    /// Each form's name and entity.
    pub forms: Vec<(String, String)>,
    /// Each command's label and entity.
    pub commands: Vec<(String, String)>,
    pub on_test: bool,
}

/// A page of a view as the player shows it.
#[derive(Debug, Clone)]
pub struct ViewScreen {
    pub view: uplift_model::app::View,
    pub page: ViewPage,
    /// Per column of the view: whether it may be sorted by.
    pub sortable: Vec<bool>,
    /// The app's form for the view's entity: its rows open in it.
    pub form: Option<String>,
    /// The app's commands on the view's entity: they run on a row.
    pub commands: Vec<String>,
    pub on_test: bool,
}

/// The apps of one environment a user may play.
#[derive(Debug, Clone)]
pub struct SharedApps {
    pub env: String,
    /// Each app's name and description.
    pub apps: Vec<(String, String)>,
}

impl Services {
    /// The app's views, forms and commands, in the version asked for.
    pub async fn app_home(
        &self,
        actor: &Actor,
        env: &str,
        app: &str,
        version: Version,
    ) -> Result<AppHome> {
        let bound = self.playing(actor, env, app, version).await?;
        let on_test = self.on_test(env, &bound.database).await?;
        let d = bound.definition;
        Ok(AppHome {
            views: d
                .views
                .iter()
                .map(|v| (v.name.clone(), v.entity.clone()))
                .collect(),
            forms: d
                .forms
                .iter()
                .map(|f| (f.name.clone(), f.entity.clone()))
                .collect(),
            commands: (d.commands.iter())
                .map(|c| (c.label.clone(), c.entity.clone()))
                .collect(),
            name: d.name,
            description: d.description,
            on_test,
        })
    }

    /// A page of view `view` of `app` as the player shows it: the view, its page
    /// (ordered by `sort`, a column and whether descending, when it is one the view
    /// shows and may be sorted by, else by the view's own order), which of its columns
    /// may be sorted by, the app's form and commands for its entity.
    pub async fn view_screen(
        &self,
        actor: &Actor,
        env: &str,
        (app, view): (&str, &str),
        mut play: Play,
        sort: Option<(String, bool)>,
    ) -> Result<ViewScreen> {
        let bound = self.playing(actor, env, app, play.version).await?;
        let d = &bound.definition;
        let v = player::view_def(&bound, view)?.clone();
        let data = self.open_bound(actor, env, &bound.database).await?;
        let entity = data.entity_named(&v.entity, || format!("view '{view}'"))?;
        let version = data.catalog().version;
        let sortable: Vec<bool> = (v.columns.iter())
            .map(|c| sortable(entity, version, c))
            .collect();
        play.orderby = sort.and_then(|(column, desc)| {
            let at = v.columns.iter().position(|c| *c == column)?;
            sortable[at].then(|| format!("{column} {}", if desc { "desc" } else { "asc" }))
        });
        let page = player::list_view(&data, &v, &play).await?;
        Ok(ViewScreen {
            form: (d.forms.iter())
                .find(|f| f.entity == v.entity)
                .map(|f| f.name.clone()),
            commands: (d.commands.iter())
                .filter(|c| c.entity == v.entity)
                .map(|c| c.label.clone())
                .collect(),
            on_test: self.on_test(env, &bound.database).await?,
            view: v,
            page,
            sortable,
        })
    }

    /// Whether `database` is `env`'s upgrade test database rather than production.
    pub(crate) async fn on_test(&self, env: &str, database: &str) -> Result<bool> {
        Ok(self.env(env).await?.database != database)
    }

    /// The published apps `actor` may play ([`player::shared_with`]), per environment.
    pub async fn shared_apps(&self, actor: &Actor) -> Result<Vec<SharedApps>> {
        let mut out = Vec::new();
        for env in self.store.control().list_envs().await? {
            let data = match self.open_data(actor, &env.name, Database::Production).await {
                Ok(d) => d,
                Err(ServiceError::Forbidden(_)) => continue,
                Err(e) => return Err(e),
            };
            let apps = self.store.control().apps(&env.name).await?;
            let shared: Vec<(String, String)> = (apps.iter())
                .filter(|a| player::shared_with(actor, a, &data))
                .filter_map(|a| {
                    let def = &a.published.as_ref()?.bound.definition;
                    Some((a.name.clone(), def.description.clone()))
                })
                .collect();
            if !shared.is_empty() {
                out.push(SharedApps {
                    env: env.name,
                    apps: shared,
                });
            }
        }
        Ok(out)
    }

    /// Form `form` of `app` on record `id`, with an input per field.
    pub async fn form_view(
        &self,
        actor: &Actor,
        env: &str,
        (app, form, id): (&str, &str, &str),
        version: Version,
    ) -> Result<FormView> {
        let bound = self.playing(actor, env, app, version).await?;
        let f = player::form_def(&bound, form)?;
        let data = self.open_bound(actor, env, &bound.database).await?;
        let record = player::read_form(&data, f, Some(id)).await?;
        let entity = data.entity_named(&f.entity, || format!("form '{form}'"))?;
        let inputs = (f.fields.iter())
            .filter_map(|name| entity.field(data.catalog().version, name))
            .flat_map(|field| inputs_of(field, record.value.get(&field.name)))
            .collect();
        Ok(FormView {
            app: app.into(),
            form: form.into(),
            entity: f.entity.clone(),
            id: record.id,
            etag: record.etag,
            inputs,
            commands: (bound.definition.commands.iter())
                .filter(|c| c.entity == f.entity)
                .map(|c| c.label.clone())
                .collect(),
            on_test: self.on_test(env, &bound.database).await?,
        })
    }

    /// Saves a posted form: its writable fields, as text per input, checked and
    /// written with the actor's rights; `etag` is the one the form was shown with.
    pub async fn save_form(
        &self,
        actor: &Actor,
        env: &str,
        (app, form, id): (&str, &str, &str),
        version: Version,
        (posted, etag): (&[(String, String)], Option<&str>),
    ) -> Result<Record> {
        let expected = match etag.filter(|e| !e.is_empty()) {
            Some(e) => parse_if_match(e).map_err(ServiceError::Invalid)?,
            None => None,
        };
        let bound = self.playing(actor, env, app, version).await?;
        let f = player::form_def(&bound, form)?;
        let data = self.open_bound(actor, env, &bound.database).await?;
        let entity = data.entity_named(&f.entity, || format!("form '{form}'"))?;
        let input = change_of(entity, data.catalog().version, &f.fields, posted)?;
        let set = entity.set_name.clone();
        match data.update(&set, id, input.clone(), expected).await {
            // The write waited while step 3 switched production: once more, on the
            // version of the app the switch published.
            Err(ServiceError::Switched) => {
                let bound = self.playing(actor, env, app, version).await?;
                let data = self.open_bound(actor, env, &bound.database).await?;
                data.update(&set, id, input, expected).await
            }
            r => r,
        }
    }
}

/// Whether a view may be sorted by `column`: a single value (a part of a complex
/// field, or a simple field other than an image).
fn sortable(entity: &Entity, version: SchemaVersion, column: &str) -> bool {
    let mut path = column.split('/');
    let field = path.next().and_then(|f| entity.field(version, f));
    match (field, path.next()) {
        (Some(f), None) => f.ty.parts().is_none() && !matches!(f.ty, FieldType::Image),
        (Some(f), Some(part)) => f.ty.parts().is_some_and(|p| p.contains(&part)),
        (None, _) => false,
    }
}

/// The inputs of one field with the record's value in them.
fn inputs_of(field: &Field, value: Option<&Json>) -> Vec<FormInput> {
    let required = field.required;
    if let Some(parts) = field.ty.parts() {
        return parts
            .iter()
            .filter(|p| **p != "base_value")
            .map(|p| FormInput {
                name: format!("{}/{p}", field.name),
                input: part_input(&field.ty, p),
                required: false,
                value: value
                    .and_then(|v| v.get(*p))
                    .map(text_of)
                    .unwrap_or_default(),
            })
            .collect();
    }
    let input = if field.is_writable() {
        input_of(&field.ty)
    } else {
        Input::ReadOnly
    };
    vec![FormInput {
        name: field.name.clone(),
        input,
        required,
        value: value.map(text_of).unwrap_or_default(),
    }]
}

fn part_input(ty: &FieldType, part: &str) -> Input {
    match (ty, part) {
        (FieldType::Currency | FieldType::Money, "value" | "exchange_rate") => Input::Decimal,
        _ => Input::Text,
    }
}

/// The input a simple field's type gets.
pub fn input_of(ty: &FieldType) -> Input {
    match ty {
        FieldType::MultilineText { .. }
        | FieldType::LargeText
        | FieldType::MultipleLinesOfText { .. } => Input::Multiline,
        FieldType::Integer | FieldType::Number | FieldType::WholeNumber => Input::Whole,
        FieldType::Quantity | FieldType::DecimalNumber => Input::Decimal,
        FieldType::Boolean | FieldType::TwoOptions => Input::YesNo,
        FieldType::Date | FieldType::ModernDateTime { date_only: true } => Input::Date,
        FieldType::DateTime | FieldType::ModernDateTime { date_only: false } => Input::Instant,
        FieldType::Picklist { options } => {
            Input::Choice(options.iter().map(|o| (o.clone(), o.clone())).collect())
        }
        FieldType::OptionSet { options } => Input::Choice(
            (options.iter())
                .map(|o| (o.value.to_string(), o.label.clone()))
                .collect(),
        ),
        FieldType::Lookup { target } => Input::Lookup {
            target: target.clone(),
        },
        FieldType::Image | FieldType::AutoNumber => Input::ReadOnly,
        _ => Input::Text,
    }
}

fn text_of(v: &Json) -> String {
    match v {
        Json::Null => String::new(),
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The record change a posted form asks for: each writable field of the form that was
/// posted, as the data API's JSON. Empty text is no value.
pub fn change_of(
    entity: &Entity,
    version: SchemaVersion,
    fields: &[String],
    posted: &[(String, String)],
) -> Result<Map<String, Json>> {
    let get = |name: &str| {
        posted
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let mut out = Map::new();
    for name in fields {
        let Some(field) = entity.field(version, name) else {
            continue;
        };
        if !field.is_writable() {
            continue;
        }
        if let Some(value) = value_of(field, &get)? {
            out.insert(field.name.clone(), value);
        }
    }
    Ok(out)
}

/// One field's posted value as JSON; `None` when the form did not post it.
fn value_of<'p>(field: &Field, get: &dyn Fn(&str) -> Option<&'p str>) -> Result<Option<Json>> {
    let name = &field.name;
    if let Some(parts) = field.ty.parts() {
        let mut obj = Map::new();
        let mut any = false;
        for p in parts.iter().filter(|p| **p != "base_value") {
            let Some(text) = get(&format!("{name}/{p}")) else {
                continue;
            };
            any = true;
            let v = match part_input(&field.ty, p) {
                Input::Decimal => decimal(&format!("{name}/{p}"), text)?,
                _ => string(text),
            };
            if !v.is_null() {
                obj.insert((*p).to_string(), v);
            }
        }
        return Ok(match (any, obj.is_empty()) {
            (false, _) => None,
            (true, true) => Some(Json::Null),
            (true, false) => Some(Json::Object(obj)),
        });
    }
    let Some(text) = get(name) else {
        return Ok(None);
    };
    let v = match input_of(&field.ty) {
        Input::Whole => whole(name, text)?,
        Input::Decimal => decimal(name, text)?,
        Input::YesNo => match text.trim() {
            "" => Json::Null,
            "true" => Json::Bool(true),
            "false" => Json::Bool(false),
            other => return Err(wrong(name, format!("'{other}' is not yes or no"))),
        },
        Input::Choice(_) if matches!(field.ty, FieldType::OptionSet { .. }) && !text.is_empty() => {
            whole(name, text)?
        }
        Input::ReadOnly => return Ok(None),
        _ => string(text),
    };
    Ok(Some(v))
}

fn string(text: &str) -> Json {
    match text {
        "" => Json::Null,
        s => Json::String(s.to_string()),
    }
}

fn whole(name: &str, text: &str) -> Result<Json> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(Json::Null);
    }
    text.parse::<i64>()
        .map(Json::from)
        .map_err(|_| wrong(name, format!("'{text}' is not a whole number")))
}

/// An exact decimal: the text must be a plain JSON number, kept digit for digit.
fn decimal(name: &str, text: &str) -> Result<Json> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(Json::Null);
    }
    match serde_json::from_str::<Json>(text) {
        Ok(n @ Json::Number(_)) => Ok(n),
        _ => Err(wrong(name, format!("'{text}' is not a number"))),
    }
}

fn wrong(field: &str, why: String) -> ServiceError {
    let top = field.split('/').next().unwrap_or(field);
    ServiceError::Field {
        field: top.to_string(),
        message: format!("field '{field}': {why}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn project() -> Entity {
        let defs: std::collections::BTreeMap<String, uplift_model::input::EntityDef> =
            serde_json::from_value(json!({"Project": {"fields": [
                {"name": "Title", "type": "Text", "required": true, "max_length": 200},
                {"name": "Stage", "type": "Picklist", "options": ["Planned", "Done"]},
                {"name": "Budget", "type": "Currency"},
                {"name": "Site", "type": "Address"},
                {"name": "Priority", "type": "Integer"},
                {"name": "Hours", "type": "Quantity"},
                {"name": "Billable", "type": "Boolean"},
                {"name": "Sequence", "type": "AutoNumber"}
            ]}}))
            .unwrap();
        let empty = uplift_model::Catalog::empty(SchemaVersion::Classic);
        let (catalog, _) = uplift_model::input::apply(&empty, &defs).unwrap();
        catalog.entity("Project").unwrap().clone()
    }

    fn check(posted: &[(&str, &str)], expect: Result<Json, &str>) {
        let fields: Vec<String> = [
            "Title", "Stage", "Budget", "Site", "Priority", "Hours", "Billable", "Sequence",
        ]
        .map(String::from)
        .to_vec();
        let posted: Vec<(String, String)> = posted
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let got = change_of(&project(), SchemaVersion::Classic, &fields, &posted);
        match (got, expect) {
            (Ok(m), Ok(e)) => assert_eq!(Json::Object(m), e, "{posted:?}"),
            (Err(ServiceError::Field { field, .. }), Err(f)) => assert_eq!(field, f, "{posted:?}"),
            (got, expect) => panic!("{posted:?}: got {got:?}, expected {expect:?}"),
        }
    }

    #[test]
    fn a_posted_form_becomes_the_data_apis_change() {
        check(
            &[("Title", " Apollo "), ("Stage", "Done"), ("Priority", " 3")],
            Ok(json!({"Title": " Apollo ", "Stage": "Done", "Priority": 3})),
        );
        check(
            &[("Hours", "12.50"), ("Billable", "true")],
            // Digit for digit: the decimal keeps its trailing zero.
            Ok(serde_json::from_str(r#"{"Hours": 12.50, "Billable": true}"#).unwrap()),
        );
        check(
            &[("Budget/code", "EUR"), ("Budget/value", "1000.25")],
            Ok(json!({"Budget": {"code": "EUR", "value": 1000.25}})),
        );
        check(
            &[("Site/city", ""), ("Site/line1", "")],
            Ok(json!({"Site": null})),
        );
        check(
            &[("Site/city", "Paris")],
            Ok(json!({"Site": {"city": "Paris"}})),
        );
        check(
            &[("Stage", ""), ("Billable", "")],
            Ok(json!({"Stage": null, "Billable": null})),
        );
        check(&[("Sequence", "7")], Ok(json!({})));
    }

    #[test]
    fn a_value_that_cannot_be_read_names_its_field() {
        check(&[("Priority", "three")], Err("Priority"));
        check(&[("Hours", "1,5")], Err("Hours"));
        check(&[("Budget/value", "lots")], Err("Budget"));
        check(&[("Billable", "maybe")], Err("Billable"));
    }

    #[test]
    fn a_view_sorts_by_single_values_only() {
        let e = project();
        let cases = [
            ("Title", true),
            ("Site/city", true),
            ("Site", false),
            ("Budget/value", true),
            ("Site/nowhere", false),
            ("Missing", false),
        ];
        for (column, expect) in cases {
            assert_eq!(
                sortable(&e, SchemaVersion::Classic, column),
                expect,
                "{column}"
            );
        }
    }

    #[test]
    fn each_field_gets_its_input() {
        let e = project();
        let kinds: Vec<(String, Input)> = e
            .fields
            .iter()
            .filter(|f| f.origin == uplift_model::entity::Origin::Custom)
            .flat_map(|f| inputs_of(f, None))
            .map(|i| (i.name, i.input))
            .collect();
        let find = |n: &str| kinds.iter().find(|(k, _)| k == n).map(|(_, i)| i.clone());
        assert_eq!(find("Priority"), Some(Input::Whole));
        assert_eq!(find("Hours"), Some(Input::Decimal));
        assert_eq!(find("Budget/value"), Some(Input::Decimal));
        assert_eq!(find("Site/city"), Some(Input::Text));
        assert_eq!(find("Sequence"), Some(Input::ReadOnly));
        assert_eq!(
            find("Stage"),
            Some(Input::Choice(vec![
                ("Planned".into(), "Planned".into()),
                ("Done".into(), "Done".into())
            ]))
        );
    }
}
