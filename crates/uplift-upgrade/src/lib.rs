//! The environment upgrade. An upgrade is an append-only log of events; its state is a
//! fold over them, so the log is both the audit trail and what a restarted server
//! resumes from.

pub mod events;
pub mod items;
pub mod plans;
pub mod progress;
pub mod runner;
pub mod state;
