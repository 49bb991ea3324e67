//! The inverse of an upgrade's row transforms, for a revert within the window: how a
//! record of the upgraded entity, written after the switch, goes back into the table of
//! the entity it came from. Derived from the forward transforms column by column, so a
//! plan needs no second half: a renamed or flattened field reads its new columns back,
//! an option value becomes its label, a date made an instant becomes its UTC date
//! again, a whole number an exact decimal; Money's base value and rate are dropped
//! (they follow from the value and its currency). A classic column nothing carries
//! (a value the upgrade dropped) is left as it is on a record the old database has and
//! empty on a new one. A modern value with no classic counterpart is listed as lost.

use std::collections::HashMap;

use time::Date;
use uplift_model::entity::{KEY, audit_field_names};
use uplift_model::layout::{VERSION_COLUMN, entity_columns, field_columns, table_name};
use uplift_model::transform::{ColumnExpr, EntityTransform, TargetColumn, TimeKind};
use uplift_model::{Catalog, ColType, Entity};

use crate::Upgrade;

/// The earliest date: an instant's date is never raised by it.
const NO_FLOOR: Date = time::macros::date!(0001 - 01 - 01);

/// How one upgraded entity's records go back.
#[derive(Debug, Clone, PartialEq)]
pub struct Inverse {
    /// Source: the upgraded entity's table; target: the original's. Its columns are
    /// `id`, `_version` and every classic column a revert writes — only those: the
    /// others keep what the old database holds.
    pub transform: EntityTransform,
    /// Fields of the upgraded entity whose values a revert cannot carry back.
    pub lost: Vec<LostField>,
    /// The original's AutoNumber columns, left out of `transform`: the old database
    /// numbers a record made after the switch, and keeps the numbers it gave.
    pub numbered: Vec<String>,
}

/// A field of the upgraded entity with no (or only a partial) classic counterpart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LostField {
    pub field: String,
    /// Its physical columns, to count the records that hold a value there.
    pub columns: Vec<String>,
    pub reason: String,
}

/// The inverse of every entity `upgrade` carries from `source`.
pub fn inverse(upgrade: &Upgrade, source: &Catalog) -> Vec<Inverse> {
    upgrade
        .entities
        .iter()
        .filter_map(|t| {
            let se = source.entity(&t.source_entity)?;
            let te = upgrade.target.entity(&t.target_entity)?;
            Some(entity_inverse(t, se, source, te, upgrade))
        })
        .collect()
}

fn entity_inverse(
    t: &EntityTransform,
    se: &Entity,
    source: &Catalog,
    te: &Entity,
    upgrade: &Upgrade,
) -> Inverse {
    let classic_types: HashMap<String, ColType> = entity_columns(se, source.version)
        .into_iter()
        .map(|c| (c.name, c.ty))
        .collect();
    let modern_types: HashMap<&str, ColType> =
        t.columns.iter().map(|c| (c.name.as_str(), c.ty)).collect();
    // Each classic column read back from the modern column that carried it.
    let mut back: HashMap<String, ColumnExpr> = HashMap::new();
    let mut lost_columns: Vec<(String, String)> = Vec::new();
    for fc in &t.columns {
        match carried_back(fc, &classic_types) {
            Some((classic, expr)) => {
                back.entry(classic).or_insert(expr);
            }
            None if is_new_value(&fc.expr) => lost_columns.push((
                fc.name.clone(),
                "no classic field keeps this value".to_string(),
            )),
            None => {}
        }
        if let ColumnExpr::DateToInstant { column } = &fc.expr
            && classic_types.get(column) == Some(&ColType::Date)
        {
            lost_columns.push((
                fc.name.clone(),
                "the time of day is dropped: the classic field holds a date".to_string(),
            ));
        }
    }
    audit_back(&mut back, se, source, te, upgrade, &modern_types);
    let audit = audit_columns(te, upgrade);
    lost_columns.retain(|(c, _)| !audit.contains(c));
    let numbered: Vec<String> = se
        .fields
        .iter()
        .filter(|f| f.ty == uplift_model::FieldType::AutoNumber)
        .flat_map(field_columns)
        .map(|c| c.name)
        .collect();
    for c in &numbered {
        if let Some(e) = back.remove(c) {
            for m in e.reads() {
                lost_columns.push((
                    m.to_string(),
                    "numbered by the original database: a record made after the switch gets its next number there, and a changed number is not carried back".into(),
                ));
            }
        }
    }
    let mut columns = Vec::new();
    for c in entity_columns(se, source.version) {
        if let Some(expr) = back.remove(&c.name) {
            columns.push(TargetColumn {
                name: c.name,
                ty: c.ty,
                expr,
            });
        }
    }
    Inverse {
        transform: EntityTransform {
            source_entity: te.name.clone(),
            target_entity: se.name.clone(),
            source_table: table_name(te),
            target_table: table_name(se),
            columns,
            checks: Vec::new(),
        },
        lost: lost_fields(te, upgrade, lost_columns),
        numbered,
    }
}

/// The classic column a forward column carried, and how to read it back.
fn carried_back(
    fc: &TargetColumn,
    classic: &HashMap<String, ColType>,
) -> Option<(String, ColumnExpr)> {
    let modern = fc.name.clone();
    let (column, expr) = match &fc.expr {
        ColumnExpr::Source { column } => (column, ColumnExpr::Source { column: modern }),
        ColumnExpr::Floor { column, .. } | ColumnExpr::DateToInstant { column } => {
            (column, as_time(modern, fc.ty, *classic.get(column)?)?)
        }
        ColumnExpr::Round { column } => (
            column,
            match classic.get(column)? {
                ColType::Decimal => ColumnExpr::WholeToDecimal { column: modern },
                _ => ColumnExpr::Source { column: modern },
            },
        ),
        ColumnExpr::Label { column, options } => (
            column,
            ColumnExpr::OptionLabel {
                column: modern,
                options: options.iter().map(|(l, v)| (*v, l.clone())).collect(),
            },
        ),
        _ => return None,
    };
    classic.contains_key(column).then(|| (column.clone(), expr))
}

/// A modern date or instant column read back as a classic one of type `to`.
fn as_time(modern: String, from: ColType, to: ColType) -> Option<ColumnExpr> {
    match (from, to) {
        (a, b) if a == b => Some(ColumnExpr::Source { column: modern }),
        (ColType::DateTime, ColType::Date) => Some(ColumnExpr::Floor {
            column: modern,
            floor: NO_FLOOR,
            kind: TimeKind::Date,
        }),
        (ColType::Date, ColType::DateTime) => Some(ColumnExpr::DateToInstant { column: modern }),
        _ => None,
    }
}

/// A forward column filled with nothing from the classic row: a new field.
fn is_new_value(e: &ColumnExpr) -> bool {
    matches!(
        e,
        ColumnExpr::Null
            | ColumnExpr::Const(_)
            | ColumnExpr::UpgradeTime
            | ColumnExpr::UpgradeActor
    )
}

/// The classic audit fields from the modern ones: created on/by from the carried
/// values where the record had them (records made before the upgrade), else from the
/// modern record's own; modified on/by from the modern record's.
fn audit_back(
    back: &mut HashMap<String, ColumnExpr>,
    se: &Entity,
    source: &Catalog,
    te: &Entity,
    upgrade: &Upgrade,
    modern_types: &HashMap<&str, ColType>,
) {
    let classic = audit_field_names(source.version);
    let modern = audit_field_names(upgrade.target.version);
    for (c, m) in classic.iter().zip(modern.iter()) {
        let (Some(cf), Some(mf)) = (
            se.field(source.version, c),
            te.field(upgrade.target.version, m),
        ) else {
            continue;
        };
        let (Some(cc), Some(mc)) = (field_columns(cf).pop(), field_columns(mf).pop()) else {
            continue;
        };
        if cc.ty != mc.ty || modern_types.get(mc.name.as_str()) != Some(&mc.ty) {
            continue;
        }
        let mut columns = match back.remove(&cc.name) {
            Some(ColumnExpr::Source { column }) => vec![column],
            _ => Vec::new(),
        };
        if !columns.contains(&mc.name) {
            columns.push(mc.name);
        }
        back.insert(cc.name, ColumnExpr::FirstOf { columns });
    }
}

/// The modern audit fields' columns: the platform fills them, a revert reads them.
fn audit_columns(te: &Entity, upgrade: &Upgrade) -> Vec<String> {
    let version = upgrade.target.version;
    audit_field_names(version)
        .iter()
        .filter_map(|n| te.field(version, n))
        .flat_map(field_columns)
        .map(|c| c.name)
        .collect()
}

/// Lost columns grouped by their field.
fn lost_fields(te: &Entity, upgrade: &Upgrade, lost: Vec<(String, String)>) -> Vec<LostField> {
    let mut out: Vec<LostField> = Vec::new();
    for c in entity_columns(te, upgrade.target.version) {
        let Some((_, reason)) = lost.iter().find(|(name, _)| *name == c.name) else {
            continue;
        };
        if c.name == KEY || c.name == VERSION_COLUMN {
            continue;
        }
        match out.iter_mut().find(|f| f.field == c.field) {
            Some(f) => f.columns.push(c.name),
            None => out.push(LostField {
                field: c.field,
                columns: vec![c.name],
                reason: reason.clone(),
            }),
        }
    }
    out
}
