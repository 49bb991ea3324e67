//! The wire types of the admin, maker and upgrade API: every request and response body
//! the server sends or accepts outside the OData data API, and the error body.
//!
//! They are apart from the storage and domain types on purpose: the service layer
//! converts into them explicitly, so a change to how something is stored cannot change
//! the contract by accident, and the CLI decodes the same types the server encodes.
//! Documents users write (entity, app and flow definitions) travel as JSON objects;
//! the server validates them against the catalog, which no schema can express.

pub mod admin;
pub mod apps;
pub mod error;
pub mod flows;
pub mod items;
pub mod upgrade;

pub use error::{ErrorBody, ErrorDetail};

/// A JSON object a user wrote (a definition, a privilege map): validated by the
/// server, carried as is.
pub type Document = serde_json::Value;

/// A list answer: `{"value": [...]}`, as OData lists are.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Listing<T> {
    pub value: Vec<T>,
}
