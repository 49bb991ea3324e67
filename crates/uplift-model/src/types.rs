//! Schema versions and the field types each one offers.

use serde::{Deserialize, Serialize};

/// A platform type system. Environments are created on one and move between them only
/// through an upgrade, so every catalog carries its version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SchemaVersion {
    Classic,
    Modern,
}

impl SchemaVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            SchemaVersion::Classic => "classic",
            SchemaVersion::Modern => "modern",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "classic" => Some(Self::Classic),
            "modern" => Some(Self::Modern),
            _ => None,
        }
    }

    /// The per-entity privileges a security role can grant on this version. The modern
    /// version splits Update into Write and adds Append/AppendTo for lookups.
    pub fn privileges(self) -> &'static [&'static str] {
        match self {
            SchemaVersion::Classic => &["Create", "Read", "Update", "Delete"],
            SchemaVersion::Modern => &["Create", "Read", "Write", "Delete", "Append", "AppendTo"],
        }
    }

    /// The privilege that allows changing an existing record.
    pub fn update_privilege(self) -> &'static str {
        match self {
            SchemaVersion::Classic => "Update",
            SchemaVersion::Modern => "Write",
        }
    }

    /// The type names a user may declare in an entity definition on this version.
    pub fn type_names(self) -> &'static [&'static str] {
        match self {
            SchemaVersion::Classic => &[
                "Text",
                "Email",
                "Phone",
                "WebsiteUrl",
                "Guid",
                "MultilineText",
                "LargeText",
                "Address",
                "PersonName",
                "AutoNumber",
                "Integer",
                "Number",
                "Quantity",
                "Boolean",
                "Currency",
                "Date",
                "DateTime",
                "Picklist",
                "Image",
                "Lookup",
                "UserOrGroup",
            ],
            SchemaVersion::Modern => &[
                "SingleLineText",
                "MultipleLinesOfText",
                "WholeNumber",
                "DecimalNumber",
                "TwoOptions",
                "OptionSet",
                "Money",
                "DateTime",
                "Image",
                "Lookup",
                "UniqueIdentifier",
            ],
        }
    }
}

impl std::fmt::Display for SchemaVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a modern single line of text holds; drives validation and the upgrade mapping
/// of classic Email/Phone/WebsiteUrl fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TextFormat {
    Text,
    Email,
    Phone,
    Url,
}

impl TextFormat {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "Text" => Some(Self::Text),
            "Email" => Some(Self::Email),
            "Phone" => Some(Self::Phone),
            "Url" => Some(Self::Url),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "Text",
            Self::Email => "Email",
            Self::Phone => "Phone",
            Self::Url => "Url",
        }
    }
}

/// One choice of a modern option set: an integer value with a label.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OptionValue {
    pub value: i32,
    pub label: String,
}

/// A field's type with exactly the attributes that type takes, so that, say, a Text
/// field cannot carry options. Types shared by both versions with the same meaning
/// (Image, Lookup) are one variant; classic and modern DateTime differ (modern has a
/// date-only behaviour) and so are two.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum FieldType {
    // classic
    Text { max_length: u32 },
    Email { max_length: u32 },
    Phone { max_length: u32 },
    WebsiteUrl { max_length: u32 },
    Guid,
    MultilineText { max_length: u32 },
    LargeText,
    Address,
    PersonName,
    AutoNumber,
    Integer,
    Number,
    Quantity,
    Boolean,
    Currency,
    Date,
    DateTime,
    Picklist { options: Vec<String> },
    UserOrGroup,
    // both
    Image,
    Lookup { target: String },
    // modern
    SingleLineText { format: TextFormat, max_length: u32 },
    MultipleLinesOfText { max_length: u32 },
    WholeNumber,
    DecimalNumber,
    TwoOptions,
    OptionSet { options: Vec<OptionValue> },
    Money,
    ModernDateTime { date_only: bool },
    UniqueIdentifier,
}

/// The largest text a LargeText field takes: large, but bounded like everything else.
pub const LARGE_TEXT_MAX_CHARS: u32 = 1_048_576;
/// Single-line text limits, as in the reference product.
pub const SINGLE_LINE_MAX_CHARS: u32 = 4000;

impl FieldType {
    /// The name users write in definitions and see in reports.
    /// The type as a change list shows it: its name, with the format or facet that
    /// says what the field holds (`SingleLineText(Email)`, `DateTime(DateOnly)`), so
    /// that an e-mail field is seen to stay an e-mail field.
    pub fn type_label(&self) -> String {
        match self {
            FieldType::SingleLineText { format, .. } if *format != TextFormat::Text => {
                format!("SingleLineText({})", format.as_str())
            }
            FieldType::ModernDateTime { date_only: true } => "DateTime(DateOnly)".into(),
            other => other.type_name().into(),
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            FieldType::Text { .. } => "Text",
            FieldType::Email { .. } => "Email",
            FieldType::Phone { .. } => "Phone",
            FieldType::WebsiteUrl { .. } => "WebsiteUrl",
            FieldType::Guid => "Guid",
            FieldType::MultilineText { .. } => "MultilineText",
            FieldType::LargeText => "LargeText",
            FieldType::Address => "Address",
            FieldType::PersonName => "PersonName",
            FieldType::AutoNumber => "AutoNumber",
            FieldType::Integer => "Integer",
            FieldType::Number => "Number",
            FieldType::Quantity => "Quantity",
            FieldType::Boolean => "Boolean",
            FieldType::Currency => "Currency",
            FieldType::Date => "Date",
            FieldType::DateTime | FieldType::ModernDateTime { .. } => "DateTime",
            FieldType::Picklist { .. } => "Picklist",
            FieldType::UserOrGroup => "UserOrGroup",
            FieldType::Image => "Image",
            FieldType::Lookup { .. } => "Lookup",
            FieldType::SingleLineText { .. } => "SingleLineText",
            FieldType::MultipleLinesOfText { .. } => "MultipleLinesOfText",
            FieldType::WholeNumber => "WholeNumber",
            FieldType::DecimalNumber => "DecimalNumber",
            FieldType::TwoOptions => "TwoOptions",
            FieldType::OptionSet { .. } => "OptionSet",
            FieldType::Money => "Money",
            FieldType::UniqueIdentifier => "UniqueIdentifier",
        }
    }

    /// Which version offers this type; `None` for the types both offer.
    pub fn version(&self) -> Option<SchemaVersion> {
        match self {
            FieldType::Image | FieldType::Lookup { .. } => None,
            FieldType::SingleLineText { .. }
            | FieldType::MultipleLinesOfText { .. }
            | FieldType::WholeNumber
            | FieldType::DecimalNumber
            | FieldType::TwoOptions
            | FieldType::OptionSet { .. }
            | FieldType::Money
            | FieldType::ModernDateTime { .. }
            | FieldType::UniqueIdentifier => Some(SchemaVersion::Modern),
            _ => Some(SchemaVersion::Classic),
        }
    }

    /// The named parts of a complex value, in storage order; `None` for simple types.
    /// These names are the JSON keys and the `$filter` path segments (`Site/city`).
    pub fn parts(&self) -> Option<&'static [&'static str]> {
        match self {
            FieldType::Address => Some(ADDRESS_PARTS),
            FieldType::PersonName => Some(PERSON_NAME_PARTS),
            FieldType::Currency => Some(CURRENCY_PARTS),
            FieldType::Money => Some(MONEY_PARTS),
            _ => None,
        }
    }

    /// Values the platform assigns, never the client.
    pub fn is_server_assigned(&self) -> bool {
        matches!(self, FieldType::AutoNumber)
    }

    pub fn lookup_target(&self) -> Option<&str> {
        match self {
            FieldType::Lookup { target } => Some(target),
            _ => None,
        }
    }

    /// The longest text this field accepts, for string-valued types.
    pub fn max_chars(&self) -> Option<u32> {
        match self {
            FieldType::Text { max_length }
            | FieldType::Email { max_length }
            | FieldType::Phone { max_length }
            | FieldType::WebsiteUrl { max_length }
            | FieldType::MultilineText { max_length }
            | FieldType::SingleLineText { max_length, .. }
            | FieldType::MultipleLinesOfText { max_length } => Some(*max_length),
            FieldType::LargeText => Some(LARGE_TEXT_MAX_CHARS),
            FieldType::UserOrGroup => Some(320),
            _ => None,
        }
    }

    /// Whether a business key may be of this type (a string the user types).
    pub fn is_text(&self) -> bool {
        matches!(
            self,
            FieldType::Text { .. }
                | FieldType::Email { .. }
                | FieldType::Phone { .. }
                | FieldType::WebsiteUrl { .. }
                | FieldType::SingleLineText { .. }
        )
    }
}

pub const ADDRESS_PARTS: &[&str] = &[
    "line1",
    "line2",
    "city",
    "state_or_province",
    "postal_code",
    "country",
];
pub const PERSON_NAME_PARTS: &[&str] = &["first_name", "middle_name", "last_name"];
pub const CURRENCY_PARTS: &[&str] = &["code", "value"];
pub const MONEY_PARTS: &[&str] = &["value", "currency", "base_value", "exchange_rate"];
