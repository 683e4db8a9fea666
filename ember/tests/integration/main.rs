//! Ember's end-to-end tests, one binary for all of them: one module per area, each starting real
//! applications on every master (`common`), in this process and in executor processes.
//!
//! One binary links the engine once, instead of once per area. Executor processes of
//! `local-cluster` tests are this binary itself, re-executed (`/proc/self/exe`): the executor
//! hook runs before the test harness's `main` and turns the process into an executor.
//!
//! The modules run in parallel in one process, so a test may not change process-wide state
//! (environment variables, the current directory); each application has its own directory,
//! and the one test that installs a `tracing` subscriber only adds to what it captures.

mod common;

mod accumulators;
mod barrier;
mod broadcast;
mod chaos;
mod cluster;
mod data_sources;
mod examples_cli;
mod exclusion;
mod failures;
mod files;
mod heartbeat;
mod integrity;
mod lifecycle;
mod monitoring;
mod netns;
mod object_store;
mod operators;
mod overflow;
mod properties;
mod recovery;
mod scheduling;
mod security;
mod speculation;
mod spill;
mod storage;
mod text_io;
mod ui_pages;
