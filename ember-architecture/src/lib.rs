//! # ember-architecture
//!
//! The checks that keep Ember's architecture from rotting, as plain functions over text, run by
//! `tests/architecture.rs` in `cargo test --workspace`:
//!
//! - [`lockfile`]: the crates of the workspace and their dependency closures, read from
//!   `Cargo.lock` (which lists normal, build and dev dependencies alike, so a test-only dependency
//!   counts too);
//! - [`modules`]: the graph of a crate's top-level modules (`crate::a` used in module `b` is an
//!   edge `b → a`, whether it comes through a `use`, a `use crate::{a, b}` group, a `super::` path
//!   that leaves the module, or a full path in an expression) and its cycles.
//!
//! Architecture invariant: this crate reads files and nothing else. It depends on no crate at
//! all, invokes no `cargo`, and needs no network, so the checks run wherever the tests run.

pub mod lockfile;
pub mod modules;
pub mod source;
