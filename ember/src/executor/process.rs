//! Executor processes: the same program started in executor mode.

/// Runs before `main` (see `ship`): becomes an executor if this process was started as one.
pub(crate) fn maybe_run_executor() {}
