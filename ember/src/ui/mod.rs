//! What a person sees: the console progress bar, and the driver's HTTP server with the REST API
//! (`/api/v1`).

pub mod console_progress;
pub mod rest;
pub mod server;
