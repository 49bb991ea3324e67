//! The plan file format: TOML read into loose structs that refuse unknown keys (so a
//! typo is reported with its line and column, not ignored), then checked rule by rule
//! into a [`Plan`] (so a wrong value is reported with the rule's path).
//!
//! ```toml
//! name = "classic-to-modern"
//! from = "classic"
//! to = "modern"
//! [naming]
//! lowercase = true
//! custom_prefix = "cr_"
//! max_chars = 50
//! flatten_template = "{field}_{part}"
//! [types]
//! Quantity = { to = "WholeNumber", fraction = "round" }
//! Address = { flatten = true }
//! UserOrGroup = { drop = true, reason = "…" }
//! # … one rule for every type of the `from` version
//! [system_fields]
//! CreatedDateTime = "overriddencreatedon"
//! ModifiedDateTime = "drop"
//! [entities]
//! SalesOrderTax = { deprecated = true, reason = "…" }
//! [language]
//! keep = "base"
//! [security]
//! privileges = { Create = ["Create", "Append"], Read = ["Read"] }
//! ```

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use time::Date;
use uplift_model::entity::system_fields;
use uplift_model::input::OPTION_VALUE_BASE;
use uplift_model::names::{CLASSIC_MAX_NAME_CHARS, MODERN_MAX_NAME_CHARS, is_valid_name};
use uplift_model::value::parse_date;
use uplift_model::{FieldType, SchemaVersion, TextFormat};

use crate::plan::{
    Conversion, EntityRule, FlattenTemplate, Fraction, LanguageRule, Naming, Plan, SecurityRules,
    SystemFieldRule, TypeRule,
};

/// Why a plan file was refused. Syntax and shape errors (bad TOML, unknown or missing
/// keys, wrong value types) carry the position; semantic ones name the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("plan file, line {line}, column {column}: {message}")]
    Syntax {
        line: usize,
        column: usize,
        message: String,
    },
    /// A shape error the TOML reader could not place (rare: it places most).
    #[error("plan file: {message}")]
    Shape { message: String },
    #[error("{rule}: {message}")]
    Rule { rule: String, message: String },
}

fn rule(path: impl Into<String>, message: impl Into<String>) -> PlanError {
    PlanError::Rule {
        rule: path.into(),
        message: message.into(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlan {
    name: String,
    #[serde(default)]
    description: String,
    from: SchemaVersion,
    to: SchemaVersion,
    naming: RawNaming,
    types: BTreeMap<String, RawTypeRule>,
    system_fields: BTreeMap<String, String>,
    #[serde(default)]
    entities: BTreeMap<String, RawEntityRule>,
    language: RawLanguage,
    security: RawSecurity,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNaming {
    lowercase: bool,
    #[serde(default)]
    custom_prefix: Option<String>,
    max_chars: usize,
    flatten_template: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTypeRule {
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    flatten: Option<bool>,
    #[serde(default)]
    drop: Option<bool>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    format: Option<TextFormat>,
    #[serde(default)]
    fraction: Option<Fraction>,
    #[serde(default)]
    date_only: Option<bool>,
    #[serde(default)]
    floor: Option<String>,
    #[serde(default)]
    first_value: Option<i32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntityRule {
    #[serde(default)]
    deprecated: Option<bool>,
    #[serde(default)]
    rename: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLanguage {
    keep: RawKeep,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum RawKeep {
    Base,
    All,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSecurity {
    privileges: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    append_to_lookup_targets: bool,
    #[serde(default)]
    open_mode_role: Option<String>,
}

/// Reads and checks a plan file. Either every rule is valid and the plan is returned,
/// or the first problem is, with its line and column or its rule path.
pub fn parse_plan(text: &str) -> Result<Plan, PlanError> {
    let raw: RawPlan = toml::from_str(text).map_err(|e| match e.span() {
        Some(span) => {
            let (line, column) = position(text, span.start);
            PlanError::Syntax {
                line,
                column,
                message: e.message().trim().to_string(),
            }
        }
        None => PlanError::Shape {
            message: e.message().trim().to_string(),
        },
    })?;
    check(raw)
}

/// 1-based line and column (in characters) of a byte offset.
fn position(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, column)
}

fn check(raw: RawPlan) -> Result<Plan, PlanError> {
    if raw.name.trim().is_empty() {
        return Err(rule("name", "a plan needs a name"));
    }
    // The conversions below are defined from classic types to modern ones; say so
    // plainly rather than refusing every type rule of another pair one by one.
    if (raw.from, raw.to) != (SchemaVersion::Classic, SchemaVersion::Modern) {
        return Err(rule(
            "from",
            format!(
                "plans upgrade classic to modern (from = \"classic\", to = \"modern\"); {} → {} is not supported",
                raw.from, raw.to
            ),
        ));
    }
    let (from, to) = (raw.from, raw.to);
    let naming = check_naming(to, raw.naming)?;

    let mut types = BTreeMap::new();
    for (name, r) in raw.types {
        let path = format!("types.{name}");
        if !from.type_names().contains(&name.as_str()) {
            return Err(rule(path, format!("'{name}' is not a {from} type")));
        }
        let checked = check_type_rule(to, &name, r).map_err(|m| rule(&path, m))?;
        types.insert(name, checked);
    }
    for t in from.type_names() {
        if !types.contains_key(*t) {
            return Err(rule(
                format!("types.{t}"),
                format!("missing: every {from} type needs a rule"),
            ));
        }
    }

    let system_fields = check_system_fields(from, to, raw.system_fields)?;
    let entities = check_entities(from, &naming, raw.entities)?;
    let language = match raw.language.keep {
        RawKeep::Base => LanguageRule::Base,
        RawKeep::All => LanguageRule::All,
    };
    let security = check_security(from, to, raw.security)?;
    Ok(Plan {
        name: raw.name,
        description: raw.description,
        from,
        to,
        naming,
        types,
        system_fields,
        entities,
        language,
        security,
    })
}

fn max_name_chars(version: SchemaVersion) -> usize {
    match version {
        SchemaVersion::Classic => CLASSIC_MAX_NAME_CHARS,
        SchemaVersion::Modern => MODERN_MAX_NAME_CHARS,
    }
}

/// The shortest `max_chars` we take: enough for a prefix, a few characters and a
/// uniqueness suffix.
const MIN_MAX_CHARS: usize = 8;

fn check_naming(to: SchemaVersion, raw: RawNaming) -> Result<Naming, PlanError> {
    let limit = max_name_chars(to);
    if !(MIN_MAX_CHARS..=limit).contains(&raw.max_chars) {
        return Err(rule(
            "naming.max_chars",
            format!(
                "{} is out of range {MIN_MAX_CHARS}..={limit} (the {to} version takes names of at most {limit} characters)",
                raw.max_chars
            ),
        ));
    }
    let custom_prefix = match raw.custom_prefix {
        None => None,
        Some(p) if p.is_empty() => None,
        Some(p) => {
            // The prefix must start a valid name and leave room for the name itself and
            // a uniqueness suffix.
            if !is_valid_name(&format!("{p}x")) {
                return Err(rule(
                    "naming.custom_prefix",
                    format!(
                        "'{p}' cannot start a name: use an ASCII letter, then letters, digits or single underscores"
                    ),
                ));
            }
            if raw.lowercase && p.chars().any(|c| c.is_ascii_uppercase()) {
                return Err(rule(
                    "naming.custom_prefix",
                    format!("'{p}' has upper-case letters but names are lower-cased"),
                ));
            }
            if p.len() + MIN_MAX_CHARS > raw.max_chars {
                return Err(rule(
                    "naming.custom_prefix",
                    format!(
                        "'{p}' leaves fewer than {MIN_MAX_CHARS} characters of a {}-character name",
                        raw.max_chars
                    ),
                ));
            }
            Some(p)
        }
    };
    let t = &raw.flatten_template;
    if t.matches("{field}").count() != 1 || t.matches("{part}").count() != 1 {
        return Err(rule(
            "naming.flatten_template",
            format!("'{t}' must contain {{field}} and {{part}} exactly once each"),
        ));
    }
    let template = FlattenTemplate(t.clone());
    let sample = template.render("field", "part");
    if !is_valid_name(&sample) {
        return Err(rule(
            "naming.flatten_template",
            format!("'{t}' makes names like '{sample}', which are not valid names"),
        ));
    }
    Ok(Naming {
        lowercase: raw.lowercase,
        custom_prefix,
        max_chars: raw.max_chars,
        flatten_template: template,
    })
}

/// A field type of the classic version by name, with default attributes: enough to ask
/// what the type is (parts, column classes) when checking a rule.
pub(crate) fn classic_sample(name: &str) -> Option<FieldType> {
    use FieldType as T;
    Some(match name {
        "Text" => T::Text { max_length: 100 },
        "Email" => T::Email { max_length: 100 },
        "Phone" => T::Phone { max_length: 50 },
        "WebsiteUrl" => T::WebsiteUrl { max_length: 200 },
        "Guid" => T::Guid,
        "MultilineText" => T::MultilineText { max_length: 2000 },
        "LargeText" => T::LargeText,
        "Address" => T::Address,
        "PersonName" => T::PersonName,
        "AutoNumber" => T::AutoNumber,
        "Integer" => T::Integer,
        "Number" => T::Number,
        "Quantity" => T::Quantity,
        "Boolean" => T::Boolean,
        "Currency" => T::Currency,
        "Date" => T::Date,
        "DateTime" => T::DateTime,
        "Picklist" => T::Picklist {
            options: Vec::new(),
        },
        "UserOrGroup" => T::UserOrGroup,
        "Image" => T::Image,
        "Lookup" => T::Lookup {
            target: String::new(),
        },
        _ => return None,
    })
}

/// The format a classic text type's values are known to meet.
pub(crate) fn native_format(source: &FieldType) -> Option<TextFormat> {
    match source {
        FieldType::Text { .. } | FieldType::Guid => Some(TextFormat::Text),
        FieldType::Email { .. } => Some(TextFormat::Email),
        FieldType::Phone { .. } => Some(TextFormat::Phone),
        FieldType::WebsiteUrl { .. } => Some(TextFormat::Url),
        _ => None,
    }
}

/// Whether a conversion is defined from a classic source type: the single place that
/// says which source types each target takes.
pub(crate) fn accepts(source: &FieldType, conv: &Conversion) -> bool {
    use FieldType as T;
    match conv {
        Conversion::SingleLineText { format } => {
            native_format(source).is_some_and(|n| *format == TextFormat::Text || *format == n)
        }
        Conversion::MultipleLinesOfText => matches!(
            source,
            T::Text { .. }
                | T::Email { .. }
                | T::Phone { .. }
                | T::WebsiteUrl { .. }
                | T::MultilineText { .. }
                | T::LargeText
        ),
        Conversion::WholeNumber { fraction } => match source {
            T::AutoNumber | T::Integer | T::Number => fraction.is_none(),
            T::Quantity => fraction.is_some(),
            _ => false,
        },
        Conversion::DecimalNumber => matches!(source, T::Quantity),
        Conversion::TwoOptions => matches!(source, T::Boolean),
        Conversion::OptionSet { .. } => matches!(source, T::Picklist { .. }),
        Conversion::Money => matches!(source, T::Currency),
        Conversion::DateTime { date_only, .. } => match source {
            T::Date => true,
            // An instant cannot become a date without losing its time of day.
            T::DateTime => !date_only,
            _ => false,
        },
        Conversion::Image => matches!(source, T::Image),
        Conversion::Lookup => matches!(source, T::Lookup { .. }),
        Conversion::UniqueIdentifier => matches!(source, T::Guid),
    }
}

/// Targets a source type may take, for the error message that refuses another one.
fn targets_for(source: &FieldType) -> Vec<&'static str> {
    let all = [
        Conversion::SingleLineText {
            format: TextFormat::Text,
        },
        Conversion::MultipleLinesOfText,
        Conversion::WholeNumber { fraction: None },
        Conversion::WholeNumber {
            fraction: Some(Fraction::Round),
        },
        Conversion::DecimalNumber,
        Conversion::TwoOptions,
        Conversion::OptionSet { first_value: 0 },
        Conversion::Money,
        Conversion::DateTime {
            date_only: false,
            floor: None,
        },
        Conversion::Image,
        Conversion::Lookup,
        Conversion::UniqueIdentifier,
    ];
    let mut out: Vec<&'static str> = all
        .iter()
        .filter(|c| accepts(source, c))
        .map(Conversion::type_name)
        .collect();
    out.dedup();
    out
}

fn check_type_rule(
    to: SchemaVersion,
    source_name: &str,
    r: RawTypeRule,
) -> Result<TypeRule, String> {
    let source = classic_sample(source_name)
        .ok_or_else(|| format!("'{source_name}' is not a classic type"))?;
    let chosen = [r.to.is_some(), r.flatten.is_some(), r.drop.is_some()]
        .iter()
        .filter(|b| **b)
        .count();
    if chosen != 1 {
        return Err(
            "give exactly one of `to = \"<type>\"`, `flatten = true` or `drop = true`".into(),
        );
    }
    let options: [(&str, bool); 5] = [
        ("format", r.format.is_some()),
        ("fraction", r.fraction.is_some()),
        ("date_only", r.date_only.is_some()),
        ("floor", r.floor.is_some()),
        ("first_value", r.first_value.is_some()),
    ];
    let refuse_options = |what: &str| -> Result<(), String> {
        match options.iter().find(|(_, set)| *set) {
            Some((key, _)) => Err(format!("{what} does not take `{key}`")),
            None => Ok(()),
        }
    };
    if let Some(flag) = r.drop {
        if !flag {
            return Err("`drop = false` says nothing; remove it and give `to`".into());
        }
        refuse_options("a dropped type")?;
        let reason = r
            .reason
            .filter(|s| !s.trim().is_empty())
            .ok_or("a dropped type needs a `reason` (the upgrade report shows it)".to_string())?;
        return Ok(TypeRule::Drop { reason });
    }
    if r.reason.is_some() {
        return Err("`reason` goes with `drop = true` only".into());
    }
    if let Some(flag) = r.flatten {
        if !flag {
            return Err("`flatten = false` says nothing; remove it and give `to`".into());
        }
        refuse_options("a flattened type")?;
        let text_parts = source.parts().is_some_and(|parts| {
            parts.iter().all(|p| {
                uplift_model::layout::col_type(&source, Some(p)) == uplift_model::ColType::Text
            })
        });
        if !text_parts {
            return Err(format!(
                "only complex types whose parts are all text can be flattened; {source_name} cannot"
            ));
        }
        return Ok(TypeRule::Flatten);
    }
    let target = r.to.unwrap_or_default();
    if !to.type_names().contains(&target.as_str()) {
        return Err(format!("target type '{target}' is not a {to} type"));
    }
    let takes = |key: &str, set: bool, allowed: bool| -> Result<(), String> {
        if set && !allowed {
            Err(format!("target type {target} does not take `{key}`"))
        } else {
            Ok(())
        }
    };
    takes("format", r.format.is_some(), target == "SingleLineText")?;
    takes("fraction", r.fraction.is_some(), target == "WholeNumber")?;
    takes("date_only", r.date_only.is_some(), target == "DateTime")?;
    takes("floor", r.floor.is_some(), target == "DateTime")?;
    takes(
        "first_value",
        r.first_value.is_some(),
        target == "OptionSet",
    )?;
    let conv = match target.as_str() {
        "SingleLineText" => Conversion::SingleLineText {
            format: r.format.unwrap_or(TextFormat::Text),
        },
        "MultipleLinesOfText" => Conversion::MultipleLinesOfText,
        "WholeNumber" => {
            let fractional = matches!(source, FieldType::Quantity);
            if fractional && r.fraction.is_none() {
                return Err(format!(
                    "{source_name} values may have fractions: say what becomes of them with `fraction = \"round\"` or `fraction = \"reject\"`"
                ));
            }
            if !fractional && r.fraction.is_some() {
                return Err(format!(
                    "{source_name} values are whole numbers already: remove `fraction`"
                ));
            }
            Conversion::WholeNumber {
                fraction: r.fraction,
            }
        }
        "DecimalNumber" => Conversion::DecimalNumber,
        "TwoOptions" => Conversion::TwoOptions,
        "OptionSet" => Conversion::OptionSet {
            first_value: r.first_value.unwrap_or(OPTION_VALUE_BASE),
        },
        "Money" => Conversion::Money,
        "DateTime" => Conversion::DateTime {
            date_only: r.date_only.unwrap_or(false),
            floor: match &r.floor {
                None => None,
                Some(s) => Some(
                    parse_date(s)
                        .ok_or_else(|| format!("floor '{s}' is not a date (YYYY-MM-DD)"))?,
                ),
            },
        },
        "Image" => Conversion::Image,
        "Lookup" => Conversion::Lookup,
        "UniqueIdentifier" => Conversion::UniqueIdentifier,
        other => return Err(format!("target type '{other}' is not supported by plans")),
    };
    if !accepts(&source, &conv) {
        let mut why = format!("a {source_name} field cannot become {target}");
        if let (Conversion::SingleLineText { format }, Some(native)) =
            (&conv, native_format(&source))
        {
            why = format!(
                "a {source_name} field cannot become SingleLineText with format {}: its values are only known to be {} (use format \"Text\" or \"{}\")",
                format.as_str(),
                native.as_str(),
                native.as_str()
            );
        } else if let Conversion::DateTime {
            date_only: true, ..
        } = conv
        {
            why.push_str(" with date_only = true: the time of day would be lost");
        } else {
            let options = targets_for(&source);
            if options.is_empty() {
                why.push_str(" (flatten or drop it)");
            } else {
                why.push_str(&format!(" (it can become {})", options.join(", ")));
            }
        }
        return Err(why);
    }
    Ok(TypeRule::Convert(conv))
}

fn check_system_fields(
    from: SchemaVersion,
    to: SchemaVersion,
    raw: BTreeMap<String, String>,
) -> Result<BTreeMap<String, SystemFieldRule>, PlanError> {
    let sources = system_fields(from);
    let targets = system_fields(to);
    let mut out = BTreeMap::new();
    let mut used: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in raw {
        let path = format!("system_fields.{name}");
        let Some(source) = sources.iter().find(|f| f.name == name) else {
            let names: Vec<&str> = sources.iter().map(|f| f.name.as_str()).collect();
            return Err(rule(
                path,
                format!(
                    "'{name}' is not a {from} system field ({})",
                    names.join(", ")
                ),
            ));
        };
        if value == "drop" {
            out.insert(name, SystemFieldRule::Drop);
            continue;
        }
        let Some(target) = targets.iter().find(|f| f.name == value) else {
            let names: Vec<&str> = targets.iter().map(|f| f.name.as_str()).collect();
            return Err(rule(
                path,
                format!(
                    "'{value}' is not a {to} system field; give one of {} or \"drop\"",
                    names.join(", ")
                ),
            ));
        };
        let compatible = match (&source.ty, &target.ty) {
            (FieldType::DateTime, FieldType::ModernDateTime { date_only }) => !date_only,
            (s, t) => (s.max_chars().is_some()) && t.is_text(),
        };
        if !compatible {
            return Err(rule(
                path,
                format!(
                    "{name} ({}) cannot keep its value in {value} ({})",
                    source.ty.type_name(),
                    target.ty.type_name()
                ),
            ));
        }
        if let Some(other) = used.insert(value.clone(), name.clone()) {
            return Err(rule(
                path,
                format!("'{value}' already keeps the value of {other}"),
            ));
        }
        out.insert(name, SystemFieldRule::Keep(value));
    }
    for f in sources {
        if !out.contains_key(&f.name) {
            return Err(rule(
                format!("system_fields.{}", f.name),
                format!("missing: say which {to} system field keeps its value, or \"drop\""),
            ));
        }
    }
    Ok(out)
}

fn check_entities(
    from: SchemaVersion,
    naming: &Naming,
    raw: BTreeMap<String, RawEntityRule>,
) -> Result<BTreeMap<String, EntityRule>, PlanError> {
    let mut out = BTreeMap::new();
    let mut renamed: BTreeMap<String, String> = BTreeMap::new();
    for (name, r) in raw {
        let path = format!("entities.{name}");
        if !is_valid_name(&name) || name.len() > max_name_chars(from) {
            return Err(rule(
                path,
                format!("'{name}' is not a valid {from} entity name"),
            ));
        }
        let reason = r.reason.filter(|s| !s.trim().is_empty());
        let checked = match (r.deprecated, r.rename) {
            (Some(true), None) => EntityRule::Deprecated {
                reason: reason.ok_or_else(|| {
                    rule(
                        &path,
                        "a deprecated entity needs a `reason` (the upgrade report shows it)",
                    )
                })?,
            },
            (None, Some(to)) => {
                if !is_valid_name(&to) || to.len() > naming.max_chars {
                    return Err(rule(
                        path,
                        format!(
                            "'{to}' is not a valid name of at most {} characters",
                            naming.max_chars
                        ),
                    ));
                }
                if naming.lowercase && to.chars().any(|c| c.is_ascii_uppercase()) {
                    return Err(rule(
                        path,
                        format!("'{to}' has upper-case letters but names are lower-cased"),
                    ));
                }
                if let Some(other) = renamed.insert(to.to_ascii_lowercase(), name.clone()) {
                    return Err(rule(
                        path,
                        format!("'{other}' is renamed to '{to}' already"),
                    ));
                }
                EntityRule::Rename { to, reason }
            }
            (Some(false), None) => {
                return Err(rule(
                    path,
                    "`deprecated = false` says nothing; remove the rule",
                ));
            }
            _ => {
                return Err(rule(
                    path,
                    "give exactly one of `deprecated = true` or `rename = \"<name>\"`",
                ));
            }
        };
        out.insert(name, checked);
    }
    Ok(out)
}

/// Longest role name the control plane takes.
const MAX_ROLE_CHARS: usize = 100;

fn check_security(
    from: SchemaVersion,
    to: SchemaVersion,
    raw: RawSecurity,
) -> Result<SecurityRules, PlanError> {
    let mut privileges = BTreeMap::new();
    for (p, targets) in raw.privileges {
        let path = format!("security.privileges.{p}");
        if !from.privileges().contains(&p.as_str()) {
            return Err(rule(
                path,
                format!(
                    "'{p}' is not a {from} privilege ({})",
                    from.privileges().join(", ")
                ),
            ));
        }
        if targets.is_empty() {
            return Err(rule(path, "grants nothing; list at least one privilege"));
        }
        let mut set = BTreeSet::new();
        for t in targets {
            if !to.privileges().contains(&t.as_str()) {
                return Err(rule(
                    path,
                    format!(
                        "'{t}' is not a {to} privilege ({})",
                        to.privileges().join(", ")
                    ),
                ));
            }
            set.insert(t);
        }
        privileges.insert(p, set);
    }
    for p in from.privileges() {
        if !privileges.contains_key(*p) {
            return Err(rule(
                format!("security.privileges.{p}"),
                format!("missing: every {from} privilege needs its {to} privileges"),
            ));
        }
    }
    if raw.append_to_lookup_targets
        && !(to.privileges().contains(&"Append") && to.privileges().contains(&"AppendTo"))
    {
        return Err(rule(
            "security.append_to_lookup_targets",
            format!("the {to} version has no Append/AppendTo privileges"),
        ));
    }
    let open_mode_role = match raw.open_mode_role {
        None => None,
        Some(r) if r.trim().is_empty() || r.chars().count() > MAX_ROLE_CHARS => {
            return Err(rule(
                "security.open_mode_role",
                format!("a role name must have 1 to {MAX_ROLE_CHARS} characters"),
            ));
        }
        Some(r) => Some(r),
    };
    Ok(SecurityRules {
        privileges,
        append_to_lookup_targets: raw.append_to_lookup_targets,
        open_mode_role,
    })
}

/// The floor of a plan's date rule, if any: what system date fields are clamped to.
pub(crate) fn floor_of(rule: Option<&TypeRule>) -> Option<Date> {
    match rule {
        Some(TypeRule::Convert(Conversion::DateTime { floor, .. })) => *floor,
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_lines_and_character_columns() {
        let text = "a = 1\nbé = 2\nc";
        assert_eq!(position(text, 0), (1, 1));
        assert_eq!(position(text, 6), (2, 1));
        assert_eq!(position(text, text.len() - 1), (3, 1));
        assert_eq!(position(text, 9), (2, 3));
    }

    #[test]
    fn every_classic_type_has_a_sample() {
        for t in SchemaVersion::Classic.type_names() {
            let s = classic_sample(t).map(|s| s.type_name());
            assert_eq!(s, Some(*t));
        }
    }
}
