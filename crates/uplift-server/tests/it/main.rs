//! Integration tests of the HTTP API. Each `#[engine_test]` is two tests,
//! `<name>::sqlite` and `<name>::postgres`, so a failure names its engine.

mod apps;
mod authorization;
mod capture;
mod catalog;
mod complete;
mod databases;
mod errors;
mod flows;
mod fuzz;
mod items;
mod migration;
mod openapi;
mod plans;
mod query;
mod records;
mod revert;
mod security;
mod support;
mod transform_oracle;
mod upgrade;
mod verification;
mod web;
mod web_player;
