//! Environments, their catalogs, users, tokens and security roles.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::Document;

/// `GET /api/health`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok` while the server answers and reaches its control plane (a 503 otherwise).
    pub status: String,
    /// `sqlite` or `postgres`.
    pub engine: String,
}

/// A user's role on the platform as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PlatformRole {
    Admin,
    Maker,
    User,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum UserStatus {
    Active,
    Disabled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SchemaVersion {
    Classic,
    Modern,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SecurityMode {
    /// Every active user may do everything.
    Open,
    /// Security roles decide, per entity and privilege.
    Restricted,
}

/// A user (`GET /api/me`, `/api/users`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct User {
    pub email: String,
    pub display_name: String,
    pub role: PlatformRole,
    pub status: UserStatus,
    /// RFC 3339, UTC, milliseconds.
    pub created_at: String,
}

/// `POST /api/users`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub email: String,
    pub display_name: String,
    /// `user` when not given.
    #[serde(default = "default_role")]
    pub role: PlatformRole,
}

fn default_role() -> PlatformRole {
    PlatformRole::User
}

/// `PATCH /api/users/{email}`: only the fields given change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserChange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<UserStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<PlatformRole>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// `POST /api/tokens`: a token for `user` (the caller when not given).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// A new token: shown once, stored only as a hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NewToken {
    pub user: String,
    pub token: String,
}

/// A token as listed: its id (to revoke it by), whose it is, its label; never the
/// token itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Token {
    pub id: String,
    pub user: String,
    pub label: String,
    pub created_at: String,
}

/// An environment as listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Environment {
    pub name: String,
    pub schema_version: SchemaVersion,
    pub security_mode: SecurityMode,
    pub created_at: String,
    /// The database that serves as production.
    pub database: String,
}

/// `GET /api/environments/{env}`: the environment, its engine and its entities.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EnvironmentDetail {
    #[serde(flatten)]
    pub environment: Environment,
    pub engine: String,
    /// Logical entity names.
    pub entities: Vec<String>,
}

/// `POST /api/environments`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEnvironment {
    pub name: String,
    /// `classic` when not given.
    #[serde(default = "default_version")]
    pub schema_version: SchemaVersion,
    /// `restricted` when not given.
    #[serde(default = "default_mode")]
    pub security_mode: SecurityMode,
}

fn default_version() -> SchemaVersion {
    SchemaVersion::Classic
}
fn default_mode() -> SecurityMode {
    SecurityMode::Restricted
}

/// Where a field or entity comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    System,
    Standard,
    Custom,
}

/// A field in the definition format users write, plus its origin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Field {
    pub name: String,
    /// The field type's name (`Text`, `Money`, `Lookup`, `SingleLineText`, …).
    #[serde(rename = "type")]
    pub ty: String,
    pub origin: Origin,
    pub required: bool,
    /// Labels by language.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub display_name: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u32>,
    /// Picklist labels, or option-set `{value, label}` entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Document>,
    /// The entity a lookup points at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// `Text`, `Email`, `Phone` or `Url`, for `SingleLineText`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// For `DateTime` (modern): whether it holds a date only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_only: Option<bool>,
}

/// An entity of a catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Entity {
    pub name: String,
    pub display_name: BTreeMap<String, String>,
    pub set_name: String,
    pub business_key: Option<String>,
    pub origin: Origin,
    pub fields: Vec<Field>,
    /// The fields every entity of the schema version has.
    pub system_fields: Vec<Field>,
}

/// `GET /api/environments/{env}/entities`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Catalog {
    pub schema_version: SchemaVersion,
    pub entities: Vec<Entity>,
}

/// `PUT /api/environments/{env}/entities`: entity definitions by logical name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EntitiesDocument {
    /// Each value is an entity definition (`display_name`, `set_name`, `fields`, …).
    #[schema(value_type = BTreeMap<String, Object>)]
    pub entities: BTreeMap<String, Document>,
}

/// One change a catalog edit made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CatalogChange {
    /// A new entity, by name.
    CreatedEntity(String),
    /// A new field, as `Entity.Field`.
    AddedField(String),
}

/// What a catalog edit changed (nothing, when it was already so).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CatalogChanges {
    pub changes: Vec<CatalogChange>,
}

/// Privileges per entity: `{"Account": ["Create", "Read"]}`.
pub type Privileges = BTreeMap<String, BTreeSet<String>>;

/// `PUT /api/environments/{env}/roles/{role}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleDefinition {
    #[schema(value_type = BTreeMap<String, Vec<String>>)]
    pub privileges: Privileges,
}

/// A security role of an environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Role {
    pub env: String,
    pub name: String,
    #[schema(value_type = BTreeMap<String, Vec<String>>)]
    pub privileges: Privileges,
}

/// A role as listed, with its members' e-mails (`null` when it has none).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RoleWithMembers {
    pub name: String,
    #[schema(value_type = BTreeMap<String, Vec<String>>)]
    pub privileges: Privileges,
    pub members: Option<Vec<String>>,
}

/// `POST /api/environments/{env}/roles/{role}/members`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMember {
    pub user: String,
}

/// A role assignment that was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Membership {
    pub env: String,
    pub role: String,
    pub user: String,
}
