//! The network runtime of a process.

/// The small tokio runtime a driver or an executor runs its network I/O on (task code never
/// runs there), with threads named `name`.
pub fn network_runtime(name: &str) -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(name)
        .enable_all()
        .build()
}
