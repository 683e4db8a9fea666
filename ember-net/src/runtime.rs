//! The network runtime of a process.

/// The small tokio runtime a driver or an executor runs its network I/O on (task code never
/// runs there), with threads named `name`.
pub fn network_runtime(name: &str) -> std::io::Result<tokio::runtime::Runtime> {
    network_runtime_with(name, || {})
}

/// [`network_runtime`], with `on_thread_start` run first on each of its threads (workers and
/// the blocking pool alike): what a process sets up per thread (an executor's signal stack).
pub fn network_runtime_with(
    name: &str,
    on_thread_start: fn(),
) -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(name)
        .on_thread_start(on_thread_start)
        .enable_all()
        .build()
}
