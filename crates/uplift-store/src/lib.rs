//! Storage for the platform: the two database engines behind one interface, the SQL
//! that the catalog turns into (tables, record queries, `$filter`), and the control
//! plane (environments, users, tokens, roles).
//!
//! Engines know SQL, not upgrades or HTTP: everything here takes catalogs and values
//! from `uplift-model` and returns rows and typed errors.

pub mod bulk;
pub mod capture;
pub mod checksum;
pub mod control;
pub mod copy;
pub mod ddl;
pub mod decimal_sql;
pub mod engine;
pub mod envdb;
pub mod error;
pub mod filter_sql;
pub mod gate;
pub mod outbox;
pub mod reader_role;
pub mod records;
pub mod sql;
pub mod store;
pub mod tally;
pub mod transform_sql;

pub use engine::{Conn, Dialect, Pool, Tx};
pub use envdb::EnvDb;
pub use error::StoreError;
pub use store::{Backend, PROD_DATABASE, Space, Store};

/// Result alias for this crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
