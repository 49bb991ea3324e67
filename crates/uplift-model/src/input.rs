//! Entity definitions as users write them (API JSON, `uplift env apply` TOML/JSON), and
//! their validation into catalog entities. Kept apart from the catalog types so that
//! the wire format can stay loose and friendly while the catalog stays strict.

use std::collections::{BTreeMap, HashSet};

use serde::Deserialize;

use crate::Labels;
use crate::catalog::Catalog;
use crate::entity::{Entity, Field, KEY, Origin};
use crate::names::{CLASSIC_MAX_NAME_CHARS, MODERN_MAX_NAME_CHARS, is_valid_name};
use crate::types::{
    FieldType, LARGE_TEXT_MAX_CHARS, OptionValue, SINGLE_LINE_MAX_CHARS, SchemaVersion, TextFormat,
};

/// One entity as a user defines it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntityDef {
    #[serde(default)]
    pub display_name: Labels,
    #[serde(default)]
    pub business_key: Option<String>,
    #[serde(default)]
    pub set_name: Option<String>,
    #[serde(default)]
    pub fields: Vec<FieldDef>,
}

/// One field as a user defines it: the type by name plus whichever attributes it takes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldDef {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: String,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub max_length: Option<u32>,
    #[serde(default)]
    pub options: Option<Vec<OptionDef>>,
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub format: Option<String>,
    #[serde(default)]
    pub date_only: Option<bool>,
    #[serde(default)]
    pub display_name: Labels,
}

/// A picklist choice by label, or an option-set choice with its integer value.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OptionDef {
    Label(String),
    Value { value: i32, label: String },
}

/// Several entities at once, as `uplift env apply` reads them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogDoc {
    pub entities: BTreeMap<String, EntityDef>,
}

/// Why a definition was refused, naming the entity and, when it is about one, the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct DefinitionError {
    pub entity: String,
    pub field: Option<String>,
    pub message: String,
}

impl DefinitionError {
    fn describe(&self) -> String {
        match &self.field {
            Some(f) => format!("entity '{}', field '{}': {}", self.entity, f, self.message),
            None => format!("entity '{}': {}", self.entity, self.message),
        }
    }
}

/// What applying definitions changes, in an order the engines can execute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatalogChange {
    CreateEntity { entity: String },
    AddField { entity: String, field: String },
}

/// Applies definitions to a catalog: new entities are created, new fields added, known
/// fields checked for compatible changes. Fields a definition leaves out are kept, so
/// re-applying the same file is a no-op and no apply ever drops data. Either every
/// definition is valid and the new catalog is returned, or nothing changes.
pub fn apply(
    catalog: &Catalog,
    defs: &BTreeMap<String, EntityDef>,
) -> Result<(Catalog, Vec<CatalogChange>), DefinitionError> {
    let version = catalog.version;
    let mut next = catalog.clone();
    let mut changes = Vec::new();

    // Lookups may point at entities defined in the same batch, so names come first.
    let mut known: HashSet<String> = catalog.entities.iter().map(|e| e.name.clone()).collect();
    for name in defs.keys() {
        check_name(version, name).map_err(|m| err(name, None, m))?;
        if let Some(existing) = catalog.entity_ignore_case(name)
            && existing.name != *name
        {
            return Err(err(
                name,
                None,
                format!(
                    "differs only in letter case from the existing entity '{}'",
                    existing.name
                ),
            ));
        }
        known.insert(name.clone());
    }

    for (name, def) in defs {
        let existing = catalog.entity(name);
        let mut entity = existing.cloned().unwrap_or_else(|| Entity {
            name: name.clone(),
            display_name: Labels::new(),
            set_name: Entity::default_set_name(name),
            business_key: None,
            origin: Origin::Custom,
            fields: Vec::new(),
        });
        if !def.display_name.is_empty() {
            entity.display_name = def.display_name.clone();
        }
        if let Some(set) = &def.set_name {
            if existing.is_some() && *set != entity.set_name {
                return Err(err(
                    name,
                    None,
                    format!(
                        "its entity set is '{}' and cannot be renamed to '{set}'",
                        entity.set_name
                    ),
                ));
            }
            if !is_valid_name(set) {
                return Err(err(
                    name,
                    None,
                    format!("'{set}' is not a valid entity set name"),
                ));
            }
            entity.set_name = set.clone();
        }
        if let Some(other) = next
            .entities
            .iter()
            .find(|e| e.name != *name && e.set_name.eq_ignore_ascii_case(&entity.set_name))
        {
            return Err(err(
                name,
                None,
                format!(
                    "entity set name '{}' is already used by entity '{}'",
                    entity.set_name, other.name
                ),
            ));
        }

        let mut seen: HashSet<String> = HashSet::new();
        for fd in &def.fields {
            let fname = &fd.name;
            if !seen.insert(fname.to_ascii_lowercase()) {
                return Err(err(
                    name,
                    Some(fname),
                    "is defined twice (duplicate name)".into(),
                ));
            }
            check_name(version, fname).map_err(|m| err(name, Some(fname), m))?;
            if fname.eq_ignore_ascii_case(KEY) {
                return Err(err(
                    name,
                    Some(fname),
                    "'id' is the key every entity already has".into(),
                ));
            }
            let ty = build_type(version, fd).map_err(|m| err(name, Some(fname), m))?;
            if let Some(target) = ty.lookup_target()
                && !known.contains(target)
            {
                return Err(err(
                    name,
                    Some(fname),
                    format!("looks up entity '{target}', which does not exist"),
                ));
            }
            match entity.field_ignore_case(version, fname) {
                Some(old) if old.origin == Origin::System => {
                    return Err(err(
                        name,
                        Some(fname),
                        "is a system field maintained by the platform".into(),
                    ));
                }
                Some(old) if old.name != *fname => {
                    return Err(err(
                        name,
                        Some(fname),
                        format!(
                            "differs only in letter case from the existing field '{}' (duplicate name)",
                            old.name
                        ),
                    ));
                }
                Some(old) => {
                    compatible(&old.ty, &ty).map_err(|m| err(name, Some(fname), m))?;
                    if let Some(f) = entity.fields.iter_mut().find(|f| f.name == *fname) {
                        f.ty = ty;
                        f.required = fd.required;
                        if !fd.display_name.is_empty() {
                            f.display_name = fd.display_name.clone();
                        }
                    }
                }
                None => {
                    entity.fields.push(Field {
                        name: fname.clone(),
                        display_name: fd.display_name.clone(),
                        ty,
                        required: fd.required,
                        origin: Origin::Custom,
                    });
                    if existing.is_some() {
                        changes.push(CatalogChange::AddField {
                            entity: name.clone(),
                            field: fname.clone(),
                        });
                    }
                }
            }
        }

        if let Some(key) = &def.business_key {
            match entity.fields.iter().find(|f| f.name == *key) {
                Some(f) if f.ty.is_text() => entity.business_key = Some(key.clone()),
                Some(f) => {
                    return Err(err(
                        name,
                        Some(key),
                        format!(
                            "cannot be the business key: it is {}, and a business key must be single-line text",
                            f.ty.type_name()
                        ),
                    ));
                }
                None => {
                    return Err(err(
                        name,
                        Some(key),
                        "is named as the business key but is not a field of the entity".into(),
                    ));
                }
            }
        }

        match next.entities.iter_mut().find(|e| e.name == *name) {
            Some(slot) => *slot = entity,
            None => {
                changes.push(CatalogChange::CreateEntity {
                    entity: name.clone(),
                });
                next.entities.push(entity);
            }
        }
    }
    Ok((next, changes))
}

fn err(entity: &str, field: Option<&String>, message: String) -> DefinitionError {
    DefinitionError {
        entity: entity.to_string(),
        field: field.cloned(),
        message,
    }
}

fn check_name(version: SchemaVersion, name: &str) -> Result<(), String> {
    let max = match version {
        SchemaVersion::Classic => CLASSIC_MAX_NAME_CHARS,
        SchemaVersion::Modern => MODERN_MAX_NAME_CHARS,
    };
    if !is_valid_name(name) {
        return Err(format!(
            "'{name}' is not a valid name: use an ASCII letter, then letters, digits or single underscores"
        ));
    }
    if name.len() > max {
        return Err(format!(
            "name is {} characters long; the {version} maximum is {max}",
            name.len()
        ));
    }
    Ok(())
}

/// Builds the typed field from its loose definition, refusing attributes the type does
/// not take, so a typo such as `options` on a Text field is reported, not ignored.
fn build_type(version: SchemaVersion, fd: &FieldDef) -> Result<FieldType, String> {
    let t = fd.ty.as_str();
    if !version.type_names().contains(&t) {
        let other = match version {
            SchemaVersion::Classic => SchemaVersion::Modern,
            SchemaVersion::Modern => SchemaVersion::Classic,
        };
        return Err(if other.type_names().contains(&t) {
            format!(
                "type '{t}' is a {other} type; a {version} environment takes {}",
                version.type_names().join(", ")
            )
        } else {
            format!(
                "unknown type '{t}'; a {version} environment takes {}",
                version.type_names().join(", ")
            )
        });
    }
    let takes_length = matches!(
        t,
        "Text"
            | "Email"
            | "Phone"
            | "WebsiteUrl"
            | "MultilineText"
            | "SingleLineText"
            | "MultipleLinesOfText"
    );
    let refuse = |attr: &str| Err(format!("type {t} does not take '{attr}'"));
    if fd.max_length.is_some() && !takes_length {
        return refuse("max_length");
    }
    if fd.options.is_some() && !matches!(t, "Picklist" | "OptionSet") {
        return refuse("options");
    }
    if fd.target.is_some() && t != "Lookup" {
        return refuse("target");
    }
    if fd.format.is_some() && t != "SingleLineText" {
        return refuse("format");
    }
    if fd.date_only.is_some() && !(t == "DateTime" && version == SchemaVersion::Modern) {
        return refuse("date_only");
    }
    let len = |default: u32, max: u32| -> Result<u32, String> {
        match fd.max_length {
            None => Ok(default),
            Some(n) if (1..=max).contains(&n) => Ok(n),
            Some(n) => Err(format!("max_length {n} is out of range 1..={max}")),
        }
    };
    Ok(match t {
        "Text" => FieldType::Text {
            max_length: len(100, SINGLE_LINE_MAX_CHARS)?,
        },
        "Email" => FieldType::Email {
            max_length: len(100, SINGLE_LINE_MAX_CHARS)?,
        },
        "Phone" => FieldType::Phone {
            max_length: len(50, SINGLE_LINE_MAX_CHARS)?,
        },
        "WebsiteUrl" => FieldType::WebsiteUrl {
            max_length: len(200, SINGLE_LINE_MAX_CHARS)?,
        },
        "Guid" => FieldType::Guid,
        "MultilineText" => FieldType::MultilineText {
            max_length: len(2000, LARGE_TEXT_MAX_CHARS)?,
        },
        "LargeText" => FieldType::LargeText,
        "Address" => FieldType::Address,
        "PersonName" => FieldType::PersonName,
        "AutoNumber" => FieldType::AutoNumber,
        "Integer" => FieldType::Integer,
        "Number" => FieldType::Number,
        "Quantity" => FieldType::Quantity,
        "Boolean" => FieldType::Boolean,
        "Currency" => FieldType::Currency,
        "Date" => FieldType::Date,
        "DateTime" if version == SchemaVersion::Classic => FieldType::DateTime,
        "DateTime" => FieldType::ModernDateTime {
            date_only: fd.date_only.unwrap_or(false),
        },
        "Picklist" => FieldType::Picklist {
            options: picklist(fd)?,
        },
        "UserOrGroup" => FieldType::UserOrGroup,
        "Image" => FieldType::Image,
        "Lookup" => FieldType::Lookup {
            target: fd
                .target
                .clone()
                .ok_or("a Lookup needs a 'target' entity")?,
        },
        "SingleLineText" => FieldType::SingleLineText {
            format: match &fd.format {
                None => TextFormat::Text,
                Some(f) => TextFormat::parse(f).ok_or_else(|| {
                    format!("unknown format '{f}'; use Text, Email, Phone or Url")
                })?,
            },
            max_length: len(100, SINGLE_LINE_MAX_CHARS)?,
        },
        "MultipleLinesOfText" => FieldType::MultipleLinesOfText {
            max_length: len(2000, LARGE_TEXT_MAX_CHARS)?,
        },
        "WholeNumber" => FieldType::WholeNumber,
        "DecimalNumber" => FieldType::DecimalNumber,
        "TwoOptions" => FieldType::TwoOptions,
        "OptionSet" => FieldType::OptionSet {
            options: option_set(fd)?,
        },
        "Money" => FieldType::Money,
        "UniqueIdentifier" => FieldType::UniqueIdentifier,
        other => return Err(format!("unknown type '{other}'")),
    })
}

fn picklist(fd: &FieldDef) -> Result<Vec<String>, String> {
    let opts = fd
        .options
        .as_ref()
        .filter(|o| !o.is_empty())
        .ok_or("a Picklist needs a non-empty 'options' list")?;
    let mut seen = HashSet::new();
    opts.iter()
        .map(|o| match o {
            OptionDef::Label(l) if l.trim().is_empty() => {
                Err("an option label is empty".to_string())
            }
            OptionDef::Label(l) if !seen.insert(l.to_lowercase()) => {
                Err(format!("option '{l}' is listed twice"))
            }
            OptionDef::Label(l) => Ok(l.clone()),
            OptionDef::Value { .. } => {
                Err("Picklist options are labels; numbered options belong to OptionSet".into())
            }
        })
        .collect()
}

/// Option-set values default to the reference product's publisher range.
pub const OPTION_VALUE_BASE: i32 = 100_000_000;

fn option_set(fd: &FieldDef) -> Result<Vec<OptionValue>, String> {
    let opts = fd
        .options
        .as_ref()
        .filter(|o| !o.is_empty())
        .ok_or("an OptionSet needs a non-empty 'options' list")?;
    let mut values = HashSet::new();
    let mut labels = HashSet::new();
    let mut out = Vec::new();
    for (i, o) in opts.iter().enumerate() {
        let (value, label) = match o {
            OptionDef::Label(l) => (OPTION_VALUE_BASE + i as i32, l.clone()),
            OptionDef::Value { value, label } => (*value, label.clone()),
        };
        if label.trim().is_empty() {
            return Err("an option label is empty".into());
        }
        if !values.insert(value) || !labels.insert(label.to_lowercase()) {
            return Err(format!("option {value} '{label}' repeats a value or label"));
        }
        out.push(OptionValue { value, label });
    }
    Ok(out)
}

/// Whether an existing field may take a new definition: lengths and option lists may
/// grow, nothing may shrink or change kind, because stored rows must stay valid.
fn compatible(old: &FieldType, new: &FieldType) -> Result<(), String> {
    use FieldType as T;
    let ok = match (old, new) {
        (T::Picklist { options: a }, T::Picklist { options: b }) => a.iter().all(|o| b.contains(o)),
        (T::OptionSet { options: a }, T::OptionSet { options: b }) => {
            a.iter().all(|o| b.contains(o))
        }
        (a, b) if a.type_name() == b.type_name() => match (a.max_chars(), b.max_chars()) {
            (Some(x), Some(y)) => y >= x && a.lookup_target() == b.lookup_target(),
            _ => a == b,
        },
        _ => false,
    };
    if ok {
        Ok(())
    } else if old.type_name() != new.type_name() {
        Err(format!(
            "is {} and cannot be changed to {} (changing a field's type is not supported)",
            old.type_name(),
            new.type_name()
        ))
    } else {
        Err(format!(
            "exists as {old:?}; only longer lengths and added options can be applied to it"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn defs(v: serde_json::Value) -> BTreeMap<String, EntityDef> {
        serde_json::from_value(v).unwrap()
    }

    fn project() -> serde_json::Value {
        json!({"Project": {"display_name":{"en":"Project"},"business_key":"Title","fields":[
            {"name":"Title","type":"Text","required":true,"max_length":200},
            {"name":"Stage","type":"Picklist","options":["Planned","Active","Done"]},
            {"name":"Customer","type":"Lookup","target":"Account"},
            {"name":"Budget","type":"Currency"},
            {"name":"Site","type":"Address"}]}})
    }

    fn classic() -> Catalog {
        crate::standard::classic_catalog()
    }

    #[test]
    fn applying_twice_changes_nothing_the_second_time() {
        let (c1, ch1) = apply(&classic(), &defs(project())).unwrap();
        assert_eq!(
            ch1,
            vec![CatalogChange::CreateEntity {
                entity: "Project".into()
            }]
        );
        let (c2, ch2) = apply(&c1, &defs(project())).unwrap();
        assert!(ch2.is_empty());
        assert_eq!(c1, c2);
        let e = c2.entity("Project").unwrap();
        assert_eq!(e.set_name, "projects");
        assert_eq!(e.origin, Origin::Custom);
    }

    #[test]
    fn adding_a_field_is_a_change() {
        let (c1, _) = apply(&classic(), &defs(project())).unwrap();
        let more = json!({"Project": {"fields":[{"name":"Notes","type":"LargeText"}]}});
        let (c2, ch) = apply(&c1, &defs(more)).unwrap();
        assert_eq!(
            ch,
            vec![CatalogChange::AddField {
                entity: "Project".into(),
                field: "Notes".into()
            }]
        );
        assert_eq!(c2.entity("Project").unwrap().fields.len(), 6);
    }

    #[test]
    fn invalid_definitions_name_the_problem() {
        let cases = [
            (
                json!({"P": {"fields":[{"name":"X","type":"Texty"}]}}),
                "field 'X': unknown type 'Texty'",
            ),
            (
                json!({"P": {"fields":[{"name":"C","type":"Lookup","target":"Nope"}]}}),
                "field 'C': looks up entity 'Nope'",
            ),
            (
                json!({"P": {"fields":[{"name":"A","type":"Text"},{"name":"a","type":"Text"}]}}),
                "field 'a': is defined twice",
            ),
            (
                json!({"P": {"fields":[{"name":"S","type":"SingleLineText"}]}}),
                "field 'S': type 'SingleLineText' is a modern type",
            ),
            (
                json!({"P": {"fields":[{"name":"T","type":"Text","options":["a"]}]}}),
                "field 'T': type Text does not take 'options'",
            ),
            (
                json!({"P": {"fields":[{"name":"K","type":"Picklist"}]}}),
                "field 'K': a Picklist needs",
            ),
            (
                json!({"P": {"fields":[{"name":"CreatedBy","type":"Text"}]}}),
                "field 'CreatedBy': is a system field",
            ),
            (
                json!({"P": {"fields":[{"name":"id","type":"Text"}]}}),
                "field 'id'",
            ),
            (
                json!({"P": {"business_key":"N","fields":[{"name":"N","type":"Integer"}]}}),
                "field 'N': cannot be the business key",
            ),
            (
                json!({"account": {"fields":[]}}),
                "differs only in letter case",
            ),
            (
                json!({"Account": {"fields":[{"name":"Name","type":"Integer"}]}}),
                "field 'Name': is Text and cannot be changed to Integer",
            ),
            (json!({"Bad-Name": {"fields":[]}}), "is not a valid name"),
        ];
        for (input, expected) in cases {
            let e = apply(&classic(), &defs(input.clone()))
                .unwrap_err()
                .to_string();
            assert!(e.contains(expected), "{input}: got {e}");
        }
    }

    #[test]
    fn lookups_may_target_entities_of_the_same_batch() {
        let batch = json!({
            "Task": {"fields":[{"name":"Project","type":"Lookup","target":"Project"}]},
            "Project": {"fields":[{"name":"Title","type":"Text"}]}
        });
        let (c, ch) = apply(&classic(), &defs(batch)).unwrap();
        assert_eq!(ch.len(), 2);
        assert!(c.entity("Task").is_some());
    }

    #[test]
    fn modern_types_and_option_values() {
        let m = Catalog::empty(SchemaVersion::Modern);
        let d = json!({"cr_x": {"fields":[
            {"name":"cr_state","type":"OptionSet","options":["Open","Closed"]},
            {"name":"cr_due","type":"DateTime","date_only":true},
            {"name":"cr_mail","type":"SingleLineText","format":"Email"}]}});
        let (c, _) = apply(&m, &defs(d)).unwrap();
        let f = &c.entity("cr_x").unwrap().fields[0];
        assert_eq!(
            f.ty,
            FieldType::OptionSet {
                options: vec![
                    OptionValue {
                        value: 100_000_000,
                        label: "Open".into()
                    },
                    OptionValue {
                        value: 100_000_001,
                        label: "Closed".into()
                    }
                ]
            }
        );
        let e = apply(
            &m,
            &defs(json!({"cr_y": {"fields":[{"name":"a","type":"Text"}]}})),
        )
        .unwrap_err();
        assert!(e.to_string().contains("'Text' is a classic type"), "{e}");
    }
}
