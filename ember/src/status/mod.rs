//! What the web UI and the REST API show (Spark's `org.apache.spark.status`): a store filled by
//! a listener of the bus ([`store`], a stage's tasks in a [`task_table`]), its views in the REST
//! API's shapes ([`views`], [`api`]), and the redaction of secrets in what they show
//! ([`redact`]).

pub mod api;
pub mod redact;
pub mod store;
pub mod task_table;
pub mod views;

pub use store::{AppStatusStore, Retention};
