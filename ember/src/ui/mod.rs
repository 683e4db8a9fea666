//! What a person sees: the console progress bar, and the driver's HTTP server with the REST API
//! (`/api/v1`) and the web UI's pages.

pub mod console_progress;
pub mod html;
pub mod metrics_system;
pub mod pages;
pub mod rest;
pub mod server;
pub mod svg;
pub mod threads;
