//! The platform's vocabulary, free of I/O: schema versions, field types, entities and
//! catalogs, record values and their JSON shapes, and the `$filter` query language.
//!
//! Everything here is pure so that the engines, the HTTP edge and (later) the upgrade
//! planner agree on one definition of what a field is and how its values look.

pub mod app;
pub mod catalog;
pub mod codec;
pub mod decimal;
pub mod entity;
pub mod filter;
pub mod flow;
pub mod input;
pub mod layout;
pub mod names;
pub mod security;
pub mod standard;
pub mod transform;
pub mod types;
pub mod value;

pub use catalog::Catalog;
pub use decimal::Decimal;
pub use entity::{Entity, Field, Origin};
pub use types::{FieldType, OptionValue, SchemaVersion, TextFormat};
pub use value::{ColType, Value};

/// Display names keyed by language code (`en`, `fr`, ...). A BTreeMap keeps the
/// serialised catalog stable, which matters for checksums and idempotent re-applies.
pub type Labels = std::collections::BTreeMap<String, String>;
