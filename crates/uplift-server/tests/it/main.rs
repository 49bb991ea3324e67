//! Integration tests of the HTTP API, each run on SQLite and on PostgreSQL.

mod apps;
mod authorization;
mod catalog;
mod databases;
mod errors;
mod flows;
mod openapi;
mod query;
mod records;
mod security;
mod support;
mod upgrade;
