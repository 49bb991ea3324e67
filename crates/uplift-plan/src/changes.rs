//! The change list: per entity and field, what the upgrade does to the schema. It is the
//! schema half of the step 1 report, and the name map that the app/flow rewriter reads.
//!
//! Invariants (tested over the whole classic standard catalog): every source entity and
//! every source field, system fields included, appears exactly once; every target field
//! appears exactly once, either among the `targets` of a source field or as `added`.

use serde::{Deserialize, Serialize};

/// What happened to an entity or a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Same name up to letter case, same type (see `target` for the exact spelling).
    Kept,
    /// A different name (prefix, truncation, uniqueness suffix, explicit rename), same type.
    Renamed,
    /// A different type (and possibly name).
    Retyped,
    /// One complex field became several text fields.
    Flattened,
    /// Not upgraded.
    Dropped,
    /// New in the target (no source).
    Added,
}

/// The schema changes of an upgrade, serialised as the report shows them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChangeList {
    pub entities: Vec<EntityChange>,
    /// Currency codes found in the data; filled by the caller, which reads the data.
    pub currencies_found: Vec<String>,
    /// Things an admin should know before going on (dropped values, shortened names).
    pub warnings: Vec<Warning>,
}

impl ChangeList {
    /// The change of a source entity, by its source name.
    pub fn entity(&self, source: &str) -> Option<&EntityChange> {
        self.entities
            .iter()
            .find(|e| e.source.as_deref() == Some(source))
    }

    /// Target name of a source entity, `None` when it is not upgraded.
    pub fn target_entity(&self, source: &str) -> Option<&str> {
        self.entity(source).and_then(|e| e.target.as_deref())
    }
}

/// One entity's change. `source` is null for an added entity, `target` for a dropped one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntityChange {
    pub source: Option<String>,
    pub target: Option<String>,
    pub action: Action,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub fields: Vec<FieldChange>,
}

impl EntityChange {
    /// The change of a source field, by its source name.
    pub fn field(&self, source: &str) -> Option<&FieldChange> {
        self.fields
            .iter()
            .find(|f| f.source.as_deref() == Some(source))
    }
}

/// One field's change. A flattened field has several targets; a dropped one none; an
/// added one no source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    pub source: Option<String>,
    pub targets: Vec<String>,
    pub action: Action,
    pub source_type: Option<String>,
    pub target_types: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A schema-level warning, about an entity (by source name) and maybe one of its fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    pub entity: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub message: String,
}
