//! A validated upgrade plan. Its fields are private and the only constructor is
//! [`crate::parse_plan`], so holding a `Plan` proves every rule was checked: each type of
//! the source version has exactly one rule, every target type belongs to the target
//! version, every option suits its type.

use std::collections::{BTreeMap, BTreeSet};

use time::Date;
use uplift_model::{SchemaVersion, TextFormat};

/// An upgrade plan: how names, types, system fields, entities, display names and
/// security roles of one schema version become those of another.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) from: SchemaVersion,
    pub(crate) to: SchemaVersion,
    pub(crate) naming: Naming,
    pub(crate) types: BTreeMap<String, TypeRule>,
    pub(crate) system_fields: BTreeMap<String, SystemFieldRule>,
    pub(crate) entities: BTreeMap<String, EntityRule>,
    pub(crate) language: LanguageRule,
    pub(crate) security: SecurityRules,
}

impl Plan {
    /// The plan's name, as admins pick it (`classic-to-modern`).
    pub fn name(&self) -> &str {
        &self.name
    }
    /// What the plan does, in words, for the upgrade wizard.
    pub fn description(&self) -> &str {
        &self.description
    }
    /// The version of catalogs this plan applies to.
    pub fn from(&self) -> SchemaVersion {
        self.from
    }
    /// The version of the catalogs it produces.
    pub fn to(&self) -> SchemaVersion {
        self.to
    }
    pub fn naming(&self) -> &Naming {
        &self.naming
    }
    /// The rule for a type of the `from` version, by type name. Every type of that
    /// version has one, so `None` means the name is not a `from` type.
    pub fn type_rule(&self, type_name: &str) -> Option<&TypeRule> {
        self.types.get(type_name)
    }
    /// Every type rule, keyed by source type name.
    pub fn type_rules(&self) -> &BTreeMap<String, TypeRule> {
        &self.types
    }
    /// What becomes of a system field of the `from` version (every one has a rule).
    pub fn system_field(&self, name: &str) -> Option<&SystemFieldRule> {
        self.system_fields.get(name)
    }
    pub fn system_fields(&self) -> &BTreeMap<String, SystemFieldRule> {
        &self.system_fields
    }
    /// The rule for a standard entity, by its source name; `None` when the plan leaves
    /// it to the naming rules.
    pub fn entity_rule(&self, name: &str) -> Option<&EntityRule> {
        self.entities.get(name)
    }
    pub fn entity_rules(&self) -> &BTreeMap<String, EntityRule> {
        &self.entities
    }
    pub fn language(&self) -> LanguageRule {
        self.language
    }
    pub fn security(&self) -> &SecurityRules {
        &self.security
    }
}

/// How logical names change. Applied to every entity and field the plan does not
/// rename explicitly.
#[derive(Debug, Clone, PartialEq)]
pub struct Naming {
    /// Lower-case every name (the modern version's convention).
    pub lowercase: bool,
    /// Prefix that custom entities and fields gain, so they never collide with names
    /// the target version's standard entities may take later.
    pub custom_prefix: Option<String>,
    /// Longest name the target takes; longer ones are truncated and made unique.
    pub max_chars: usize,
    /// How the text fields that a complex field is flattened into are named.
    pub flatten_template: FlattenTemplate,
}

/// A name template with exactly one `{field}` and one `{part}`, checked to produce valid
/// names, e.g. `{field}_{part}` → `address_city`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlattenTemplate(pub(crate) String);

impl FlattenTemplate {
    /// The field name for one part; double underscores (reserved for physical columns)
    /// that the join could create are collapsed.
    pub fn render(&self, field: &str, part: &str) -> String {
        let mut s = self.0.replace("{field}", field).replace("{part}", part);
        while s.contains("__") {
            s = s.replace("__", "_");
        }
        s
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What becomes of every field of one source type.
#[derive(Debug, Clone, PartialEq)]
pub enum TypeRule {
    /// The field becomes one field of a target type, keeping its value (converted).
    Convert(Conversion),
    /// A complex text type becomes one single-line text field per part, named by
    /// [`Naming::flatten_template`].
    Flatten,
    /// The field is not upgraded; every non-empty value is a row warning.
    Drop { reason: String },
}

/// A target type with the options its conversion takes. Which source types each
/// accepts is checked when the plan is parsed (see `file`).
#[derive(Debug, Clone, PartialEq)]
pub enum Conversion {
    /// Text-like sources; `format` is `Text` or the source's own format, never a
    /// stricter one that stored values might not meet.
    SingleLineText {
        format: TextFormat,
    },
    MultipleLinesOfText,
    /// Whole numbers; `fraction` says what happens to a fractional source value and is
    /// set exactly when the source holds fractions (Quantity).
    WholeNumber {
        fraction: Option<Fraction>,
    },
    DecimalNumber,
    TwoOptions,
    /// Picklist labels become options numbered from `first_value` in option order.
    OptionSet {
        first_value: i32,
    },
    /// Currency (code, value) becomes Money with an exchange rate and a base value.
    Money,
    /// Dates and instants; values before `floor` are raised to it (a row warning each).
    DateTime {
        date_only: bool,
        floor: Option<Date>,
    },
    Image,
    Lookup,
    UniqueIdentifier,
}

impl Conversion {
    /// The target type's name, as plan files and reports spell it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Conversion::SingleLineText { .. } => "SingleLineText",
            Conversion::MultipleLinesOfText => "MultipleLinesOfText",
            Conversion::WholeNumber { .. } => "WholeNumber",
            Conversion::DecimalNumber => "DecimalNumber",
            Conversion::TwoOptions => "TwoOptions",
            Conversion::OptionSet { .. } => "OptionSet",
            Conversion::Money => "Money",
            Conversion::DateTime { .. } => "DateTime",
            Conversion::Image => "Image",
            Conversion::Lookup => "Lookup",
            Conversion::UniqueIdentifier => "UniqueIdentifier",
        }
    }
}

/// What happens to a fractional value that must become a whole number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fraction {
    /// Rounded half away from zero; a row warning for each value that changed.
    Round,
    /// The row is not copied (a row error).
    Reject,
}

/// What becomes of one system field of the source version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SystemFieldRule {
    /// Its value is kept in this target system field.
    Keep(String),
    /// It is not carried; the platform sets the target's own audit fields.
    Drop,
}

/// A rule for one standard entity. Rules name standard entities only: a custom entity
/// that happens to share the name is left to the naming rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntityRule {
    /// Not upgraded: its rows are not copied and lookups to it are dropped.
    Deprecated { reason: String },
    /// Upgraded under this exact name (no naming rules applied).
    Rename { to: String, reason: Option<String> },
}

/// Which display names survive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LanguageRule {
    /// Only the base language the admin picks (the reference product's behaviour).
    Base,
    /// Every language.
    All,
}

/// How security roles follow the upgrade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityRules {
    /// Each privilege of the source version → the target privileges it grants. Every
    /// source privilege has an entry.
    pub privileges: BTreeMap<String, BTreeSet<String>>,
    /// Whether a role that may set lookups on an entity (holds `Append` on it) gets
    /// `AppendTo` on every entity those lookups point at, so that it keeps working.
    pub append_to_lookup_targets: bool,
    /// When set, an environment in open mode becomes restricted with one role of this
    /// name granting everything to every active user; when unset, open mode stays.
    pub open_mode_role: Option<String>,
}
