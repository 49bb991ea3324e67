//! A database's catalog: its version and entities.

use serde::{Deserialize, Serialize};

use crate::entity::Entity;
use crate::types::SchemaVersion;

/// The metadata of one database. Each database (production, a test copy) has its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Catalog {
    pub version: SchemaVersion,
    pub entities: Vec<Entity>,
}

impl Catalog {
    pub fn empty(version: SchemaVersion) -> Self {
        Catalog {
            version,
            entities: Vec::new(),
        }
    }

    pub fn entity(&self, name: &str) -> Option<&Entity> {
        self.entities.iter().find(|e| e.name == name)
    }

    /// An entity by its OData entity set name (`accounts`).
    pub fn entity_by_set(&self, set: &str) -> Option<&Entity> {
        self.entities.iter().find(|e| e.set_name == set)
    }

    pub fn entity_ignore_case(&self, name: &str) -> Option<&Entity> {
        self.entities
            .iter()
            .find(|e| e.name.eq_ignore_ascii_case(name))
    }
}
