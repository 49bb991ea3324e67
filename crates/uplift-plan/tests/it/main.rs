//! Behaviour of plans as the upgrade relies on it, on catalogs built here (the classic
//! standard entities plus custom entities that use every classic type).

mod catalog;
mod inverse;
mod plan_file;
mod properties;
mod rewrite;
mod rows;
mod security;
mod support;
