//! Entities and fields as the catalog records them.

use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

use crate::Labels;
use crate::types::{FieldType, SchemaVersion, TextFormat};

/// Who defined a field or entity. The upgrade treats each differently: standard ones
/// follow the plan's renames, custom ones gain the publisher prefix, system ones are
/// maintained by the platform and mapped by fixed rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    System,
    Standard,
    Custom,
}

/// One field of an entity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Field {
    pub name: String,
    #[serde(default)]
    pub display_name: Labels,
    #[serde(rename = "type")]
    pub ty: FieldType,
    #[serde(default)]
    pub required: bool,
    pub origin: Origin,
}

impl Field {
    /// Whether clients may write this field. System fields are set by the platform,
    /// except `overriddencreatedon`, which exists precisely so that imports can carry a
    /// record's original creation time.
    pub fn is_writable(&self) -> bool {
        if self.ty.is_server_assigned() {
            return false;
        }
        match self.origin {
            Origin::System => self.name == "overriddencreatedon",
            _ => true,
        }
    }

    /// Whether the value is computed by the server (shown as such in `$metadata`).
    pub fn is_computed(&self) -> bool {
        !self.is_writable()
    }
}

/// One entity (a table) of a catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entity {
    pub name: String,
    #[serde(default)]
    pub display_name: Labels,
    pub set_name: String,
    #[serde(default)]
    pub business_key: Option<String>,
    pub origin: Origin,
    /// Standard and custom fields, in definition order. System fields are not stored:
    /// they follow from the schema version (see [`system_fields`]).
    pub fields: Vec<Field>,
}

/// The key property every entity has.
pub const KEY: &str = "id";

impl Entity {
    /// The default entity set name: the logical name lower-cased plus `s`.
    pub fn default_set_name(name: &str) -> String {
        format!("{}s", name.to_ascii_lowercase())
    }

    /// A field by exact logical name, including the version's system fields.
    pub fn field(&self, version: SchemaVersion, name: &str) -> Option<&Field> {
        self.fields
            .iter()
            .find(|f| f.name == name)
            .or_else(|| system_fields(version).iter().find(|f| f.name == name))
    }

    /// Every field in the order clients see them: defined fields, then system fields.
    pub fn all_fields(&self, version: SchemaVersion) -> impl Iterator<Item = &Field> {
        self.fields.iter().chain(system_fields(version).iter())
    }

    /// A field of this entity found ignoring case, to refuse names that differ from an
    /// existing one only by case (SQLite column names are case-insensitive).
    pub fn field_ignore_case(&self, version: SchemaVersion, name: &str) -> Option<&Field> {
        if name.eq_ignore_ascii_case(KEY) {
            return None;
        }
        self.all_fields(version)
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }
}

fn system(name: &str, en: &str, ty: FieldType) -> Field {
    Field {
        name: name.to_string(),
        display_name: Labels::from([("en".to_string(), en.to_string())]),
        ty,
        required: false,
        origin: Origin::System,
    }
}

/// The system fields every entity of a version has, maintained by the platform. Built
/// once: they are consulted for every field lookup on hot paths.
pub fn system_fields(version: SchemaVersion) -> &'static [Field] {
    static CLASSIC: LazyLock<Vec<Field>> =
        LazyLock::new(|| build_system_fields(SchemaVersion::Classic));
    static MODERN: LazyLock<Vec<Field>> =
        LazyLock::new(|| build_system_fields(SchemaVersion::Modern));
    match version {
        SchemaVersion::Classic => &CLASSIC,
        SchemaVersion::Modern => &MODERN,
    }
}

fn build_system_fields(version: SchemaVersion) -> Vec<Field> {
    let user = |v: SchemaVersion| match v {
        SchemaVersion::Classic => FieldType::UserOrGroup,
        SchemaVersion::Modern => FieldType::SingleLineText {
            format: TextFormat::Email,
            max_length: 320,
        },
    };
    match version {
        SchemaVersion::Classic => vec![
            system("CreatedDateTime", "Created on", FieldType::DateTime),
            system("CreatedBy", "Created by", user(version)),
            system("ModifiedDateTime", "Modified on", FieldType::DateTime),
            system("ModifiedBy", "Modified by", user(version)),
        ],
        SchemaVersion::Modern => {
            let at = FieldType::ModernDateTime { date_only: false };
            vec![
                system("createdon", "Created On", at.clone()),
                system("createdby", "Created By", user(version)),
                system("modifiedon", "Modified On", at.clone()),
                system("modifiedby", "Modified By", user(version)),
                system("overriddencreatedon", "Record Created On", at),
                system("createdonbehalfby", "Created By (Delegate)", user(version)),
            ]
        }
    }
}

/// Names of the system fields that record when and by whom a row was created and last
/// changed, per version: (created on, created by, modified on, modified by).
pub fn audit_field_names(version: SchemaVersion) -> [&'static str; 4] {
    match version {
        SchemaVersion::Classic => [
            "CreatedDateTime",
            "CreatedBy",
            "ModifiedDateTime",
            "ModifiedBy",
        ],
        SchemaVersion::Modern => ["createdon", "createdby", "modifiedon", "modifiedby"],
    }
}
