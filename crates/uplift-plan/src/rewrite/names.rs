//! Where a source name lands in the target catalog: the change list read as a map from
//! source entities and property paths to target ones.

use std::cell::RefCell;
use std::collections::BTreeSet;

use uplift_model::entity::KEY;
use uplift_model::{Catalog, Entity, Field, FieldType};

use crate::changes::{Action, ChangeList, FieldChange};

/// The source catalog, the target catalog and the change list between them. It also
/// notes every source entity and property it is asked about, which is what a rewritten
/// definition uses ([`NameMap::take_uses`]).
pub struct NameMap<'a> {
    pub source: &'a Catalog,
    pub target: &'a Catalog,
    pub changes: &'a ChangeList,
    uses: RefCell<BTreeSet<String>>,
}

/// What became of a source entity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntityTarget {
    Upgraded(String),
    /// Not upgraded; the plan's reason.
    Deprecated(String),
    /// Not an entity of the source catalog.
    Unknown,
}

/// What became of a source property path (`Name`, `Site/city`, `Price/code`).
#[derive(Debug, Clone, PartialEq)]
pub enum PathTarget {
    /// One target path; `options` maps a picklist's labels to the option values.
    One {
        path: Vec<String>,
        options: Option<Vec<(String, i64)>>,
    },
    /// A complex field as a whole: the fields it was flattened into.
    Many(Vec<String>),
    /// Not upgraded, with the plan's reason and the target field nearest to it.
    Dropped {
        reason: String,
        suggestion: Option<String>,
    },
    Unknown,
}

impl<'a> NameMap<'a> {
    pub fn new(source: &'a Catalog, target: &'a Catalog, changes: &'a ChangeList) -> Self {
        NameMap {
            source,
            target,
            changes,
            uses: RefCell::new(BTreeSet::new()),
        }
    }

    /// The source entities (`Contact`) and properties (`Contact.FullName/last_name`)
    /// asked about since the last call, sorted.
    pub fn take_uses(&self) -> Vec<String> {
        self.uses.take().into_iter().collect()
    }

    pub fn entity(&self, source: &str) -> EntityTarget {
        self.uses.borrow_mut().insert(source.to_string());
        if self.source.entity(source).is_none() {
            return EntityTarget::Unknown;
        }
        match self.changes.entity(source) {
            Some(c) => match (&c.target, c.action) {
                (Some(t), _) if c.action != Action::Dropped => EntityTarget::Upgraded(t.clone()),
                _ => EntityTarget::Deprecated(c.reason.clone().unwrap_or_default()),
            },
            None => EntityTarget::Unknown,
        }
    }

    /// The target of `path` on source entity `entity`.
    pub fn path(&self, entity: &str, path: &[String]) -> PathTarget {
        let mut uses = self.uses.borrow_mut();
        uses.insert(entity.to_string());
        uses.insert(format!("{entity}.{}", path.join("/")));
        drop(uses);
        let (Some(source), Some(change)) =
            (self.source.entity(entity), self.changes.entity(entity))
        else {
            return PathTarget::Unknown;
        };
        let Some((first, rest)) = path.split_first() else {
            return PathTarget::Unknown;
        };
        if first == KEY && rest.is_empty() {
            return one(vec![KEY.to_string()]);
        }
        let (Some(field), Some(fc)) = (
            source.field(self.source.version, first),
            change.field(first),
        ) else {
            return PathTarget::Unknown;
        };
        if fc.action == Action::Dropped {
            return PathTarget::Dropped {
                reason: fc.reason.clone().unwrap_or_default(),
                suggestion: self.nearest(change.target.as_deref(), field),
            };
        }
        self.mapped(field, fc, change.target.as_deref(), rest)
    }

    fn mapped(
        &self,
        field: &Field,
        fc: &FieldChange,
        target_entity: Option<&str>,
        rest: &[String],
    ) -> PathTarget {
        let parts = field.ty.parts().unwrap_or_default();
        match (fc.action, rest) {
            (Action::Flattened, []) => PathTarget::Many(fc.targets.clone()),
            (Action::Flattened, [part]) => match parts.iter().position(|p| p == part) {
                Some(i) if i < fc.targets.len() => one(vec![fc.targets[i].clone()]),
                _ => PathTarget::Unknown,
            },
            (_, []) => match fc.targets.first() {
                Some(t) => PathTarget::One {
                    path: vec![t.clone()],
                    options: self.options(field, target_entity, t),
                },
                None => PathTarget::Unknown,
            },
            (_, [part]) if parts.contains(&part.as_str()) => {
                let Some(t) = fc.targets.first() else {
                    return PathTarget::Unknown;
                };
                let part = money_part(&field.ty, part);
                one(vec![t.clone(), part.to_string()])
            }
            _ => PathTarget::Unknown,
        }
    }

    /// A picklist's labels with the values the target's option set gave them.
    fn options(
        &self,
        field: &Field,
        target_entity: Option<&str>,
        target_field: &str,
    ) -> Option<Vec<(String, i64)>> {
        let FieldType::Picklist { options } = &field.ty else {
            return None;
        };
        let target = self.target_field(target_entity?, target_field)?;
        let FieldType::OptionSet { options: values } = &target.ty else {
            return None;
        };
        Some(
            options
                .iter()
                .zip(values)
                .map(|(label, v)| (label.clone(), i64::from(v.value)))
                .collect(),
        )
    }

    fn target_field(&self, entity: &str, field: &str) -> Option<&Field> {
        self.target
            .entity(entity)?
            .field(self.target.version, field)
    }

    /// The target field whose display name is the dropped field's (`Modified on` →
    /// `modifiedon`), the nearest thing a maker can use instead.
    fn nearest(&self, target_entity: Option<&str>, field: &Field) -> Option<String> {
        let entity: &Entity = self.target.entity(target_entity?)?;
        let shown: Vec<String> = field
            .display_name
            .values()
            .map(|l| l.to_lowercase())
            .collect();
        entity
            .all_fields(self.target.version)
            .find(|f| {
                f.display_name
                    .values()
                    .any(|l| shown.contains(&l.to_lowercase()))
            })
            .map(|f| f.name.clone())
    }
}

fn one(path: Vec<String>) -> PathTarget {
    PathTarget::One {
        path,
        options: None,
    }
}

/// A Currency part under its Money name (`code` → `currency`); other parts keep theirs.
fn money_part<'p>(ty: &FieldType, part: &'p str) -> &'p str {
    match (ty, part) {
        (FieldType::Currency, "code") => "currency",
        _ => part,
    }
}
