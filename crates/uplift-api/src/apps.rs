//! Model-driven apps: drafts, published versions and the player's answers.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::Document;

/// A definition together with the database it reads and writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BoundApp {
    /// The app definition (`name`, `owner`, `editors`, `views`, `forms`, `commands`).
    #[schema(value_type = Object)]
    pub definition: Document,
    pub database: String,
}

/// A published, immutable version of an app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AppVersion {
    pub version: i64,
    #[schema(value_type = Object)]
    pub definition: Document,
    pub database: String,
    pub published_at: String,
    pub published_by: String,
}

/// An app as the caller may see it: the draft only for its owner, editors and admins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct App {
    pub name: String,
    pub owner: String,
    pub editors: Vec<String>,
    pub published: Option<AppVersion>,
    /// When its published version was last played (RFC 3339, UTC; recorded at most
    /// once a minute), `null` if never.
    #[serde(default)]
    pub last_used_at: Option<String>,
    /// Absent when the caller may not see it; `null` when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub draft: Option<Option<BoundApp>>,
}

/// `POST …/apps/{app}/publish`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Published {
    pub version: i64,
    pub app: App,
}

/// `POST …/apps/{app}/commands/{command}/run`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandRun {
    /// The id of the record the command runs on.
    pub record: String,
}

/// A queued run (202).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RunStarted {
    pub run: String,
    /// The flow it runs, when an app command started it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow: Option<String>,
}
