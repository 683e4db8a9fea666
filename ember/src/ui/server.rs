//! The driver's HTTP server (Spark's `SparkUI` on its Jetty server): the REST API and the web UI,
//! on `ember.ui.port` (4040, or the next free port), served by axum on a one-thread tokio
//! runtime of its own (`ember-ui`), so no request ever runs on the scheduler's threads.

use std::net::{IpAddr, SocketAddr, TcpListener};
use std::thread::JoinHandle;

use axum::Router;
use tracing::{info, warn};

use crate::conf;
use crate::error::{EmberError, Result};

/// The running server.
pub struct UiServer {
    address: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// Binds `port` on `host`, or the next ones up to `max_retries` when taken (Spark's
/// `Utils.startServiceOnPort`); port 0 takes any free port.
pub fn bind(service: &str, host: IpAddr, port: u16, max_retries: u32) -> Result<TcpListener> {
    let tries = if port == 0 { 1 } else { max_retries + 1 };
    for offset in 0..tries {
        let p = if port == 0 {
            0
        } else {
            port.checked_add(offset as u16).unwrap_or(0)
        };
        match TcpListener::bind((host, p)) {
            Ok(l) => return Ok(l),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && offset + 1 < tries => {
                warn!(
                    "Service '{service}' could not bind on port {p}. Attempting port {}.",
                    p + 1
                );
            }
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => break,
            Err(e) => {
                return Err(EmberError::io(
                    format!("binding {service} to {host}:{p}"),
                    e,
                ))
            }
        }
    }
    Err(EmberError::Config {
        key: conf::UI_PORT.into(),
        value: port.to_string(),
        reason: format!(
            "Service '{service}' failed after {max_retries} retries (starting from {port})! \
             Consider explicitly setting the appropriate port for the service '{service}' (for \
             example ember.ui.port for EmberUI) to an available port or increasing \
             ember.port.maxRetries."
        ),
    })
}

impl UiServer {
    /// Serves `app` on `listener` from a thread of its own.
    pub fn start(listener: TcpListener, app: Router) -> Result<Self> {
        let address = listener
            .local_addr()
            .map_err(|e| EmberError::io("the UI's address", e))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| EmberError::io("the UI's socket", e))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| EmberError::io("ember-ui runtime", e))?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("ember-ui".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                        let _ = rx.await;
                    });
                    if let Err(e) = serve.await {
                        warn!("the web UI stopped: {e}");
                    }
                });
            })
            .map_err(|e| EmberError::io("ember-ui thread", e))?;
        Ok(UiServer {
            address,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// Its URL (`http://host:port`).
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Stops serving and waits for the server's thread. Idempotent.
    pub fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for UiServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Logs where the UI is, as Spark does.
pub fn log_started(server: &UiServer) {
    info!(
        "Bound EmberUI to {}, and started at {}",
        server.address.ip(),
        server.url()
    );
}
