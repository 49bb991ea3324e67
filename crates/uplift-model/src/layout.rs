//! How an entity maps onto physical columns. Engine-independent: the engines only pick
//! a native type per [`ColType`], so the same catalog gives the same column names on
//! SQLite and PostgreSQL.

use crate::entity::{Entity, Field, KEY};
use crate::filter::{PropertyResolver, PropertyType, ScalarType};
use crate::names::physical;
use crate::types::{FieldType, SchemaVersion};
use crate::value::ColType;

/// The physical column that holds a row's optimistic-concurrency version (the ETag).
pub const VERSION_COLUMN: &str = "_version";

/// One physical column and the logical field (and part, for complex values) it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub field: String,
    pub part: Option<&'static str>,
    pub ty: ColType,
}

/// The physical table name of an entity.
pub fn table_name(entity: &Entity) -> String {
    physical(&entity.name, None)
}

/// The storage class of a simple type, or of one part of a complex type.
pub fn col_type(ty: &FieldType, part: Option<&str>) -> ColType {
    match (ty, part) {
        (FieldType::Currency, Some("value"))
        | (FieldType::Money, Some("value" | "base_value" | "exchange_rate")) => ColType::Decimal,
        (_, Some(_)) => ColType::Text,
        (
            FieldType::AutoNumber
            | FieldType::Integer
            | FieldType::Number
            | FieldType::WholeNumber
            | FieldType::OptionSet { .. },
            None,
        ) => ColType::Int,
        (FieldType::Quantity | FieldType::DecimalNumber, None) => ColType::Decimal,
        (FieldType::Boolean | FieldType::TwoOptions, None) => ColType::Bool,
        (FieldType::Date | FieldType::ModernDateTime { date_only: true }, None) => ColType::Date,
        (FieldType::DateTime | FieldType::ModernDateTime { date_only: false }, None) => {
            ColType::DateTime
        }
        (FieldType::Image, None) => ColType::Bytes,
        _ => ColType::Text,
    }
}

/// The `$filter` type of a simple type or of one part of a complex type.
pub fn scalar_type(ty: &FieldType, part: Option<&str>) -> ScalarType {
    match (ty, col_type(ty, part)) {
        (FieldType::Guid | FieldType::Lookup { .. } | FieldType::UniqueIdentifier, _) => {
            ScalarType::Guid
        }
        (_, ColType::Text) => ScalarType::String,
        (_, ColType::Int) => ScalarType::Int,
        (_, ColType::Decimal) => ScalarType::Decimal,
        (_, ColType::Bool) => ScalarType::Bool,
        (_, ColType::Date) => ScalarType::Date,
        (_, ColType::DateTime) => ScalarType::DateTimeOffset,
        (_, ColType::Bytes) => ScalarType::Binary,
    }
}

/// The columns of one field: one for a simple type, one per part for a complex type.
pub fn field_columns(field: &Field) -> Vec<Column> {
    match field.ty.parts() {
        None => vec![Column {
            name: physical(&field.name, None),
            field: field.name.clone(),
            part: None,
            ty: col_type(&field.ty, None),
        }],
        Some(parts) => parts
            .iter()
            .map(|p| Column {
                name: physical(&field.name, Some(p)),
                field: field.name.clone(),
                part: Some(p),
                ty: col_type(&field.ty, Some(p)),
            })
            .collect(),
    }
}

/// Every column of an entity's table: the key, each field's columns (system fields
/// included) and the row version.
pub fn entity_columns(entity: &Entity, version: SchemaVersion) -> Vec<Column> {
    let mut cols = vec![Column {
        name: KEY.to_string(),
        field: KEY.to_string(),
        part: None,
        ty: ColType::Text,
    }];
    for f in entity.all_fields(version) {
        cols.extend(field_columns(f));
    }
    cols.push(Column {
        name: VERSION_COLUMN.to_string(),
        field: VERSION_COLUMN.to_string(),
        part: None,
        ty: ColType::Int,
    });
    cols
}

/// Where a `$filter`/`$orderby` property path lands: its column and its query type.
#[derive(Debug, Clone, PartialEq)]
pub struct PathTarget {
    pub column: Column,
    pub scalar: ScalarType,
}

/// Resolves `Name`, `Site/city` or `id` to a column. `None` for unknown paths and for a
/// complex field named without a part (which has no single column).
pub fn resolve_path(
    entity: &Entity,
    version: SchemaVersion,
    path: &[String],
) -> Option<PathTarget> {
    match path {
        [key] if key == KEY => Some(PathTarget {
            column: Column {
                name: KEY.into(),
                field: KEY.into(),
                part: None,
                ty: ColType::Text,
            },
            scalar: ScalarType::Guid,
        }),
        [name] => {
            let f = entity.field(version, name)?;
            if f.ty.parts().is_some() {
                return None;
            }
            let column = field_columns(f).pop()?;
            Some(PathTarget {
                scalar: scalar_type(&f.ty, None),
                column,
            })
        }
        [name, part] => {
            let f = entity.field(version, name)?;
            let column = field_columns(f)
                .into_iter()
                .find(|c| c.part == Some(part.as_str()))?;
            Some(PathTarget {
                scalar: scalar_type(&f.ty, column.part),
                column,
            })
        }
        _ => None,
    }
}

/// Lets the `$filter` checker see an entity's properties.
pub struct EntityProperties<'a> {
    pub entity: &'a Entity,
    pub version: SchemaVersion,
}

impl PropertyResolver for EntityProperties<'_> {
    fn resolve(&self, path: &[String]) -> Option<PropertyType> {
        if let [name] = path
            && let Some(f) = self.entity.field(self.version, name)
            && let Some(parts) = f.ty.parts()
        {
            return Some(PropertyType::Complex {
                parts: parts.iter().map(|p| format!("{name}/{p}")).collect(),
            });
        }
        resolve_path(self.entity, self.version, path).map(|t| PropertyType::Scalar(t.scalar))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entity::Origin;

    #[test]
    fn complex_fields_spread_over_typed_columns() {
        let f = Field {
            name: "Budget".into(),
            display_name: Default::default(),
            ty: FieldType::Currency,
            required: false,
            origin: Origin::Custom,
        };
        let cols = field_columns(&f);
        assert_eq!(cols.len(), 2);
        assert_eq!(cols[0].name, "budget__code");
        assert_eq!(cols[0].ty, ColType::Text);
        assert_eq!(cols[1].ty, ColType::Decimal);
    }
}
