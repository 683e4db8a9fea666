//! Shared set-up of the end-to-end tests: the same job suite runs on every master.

use std::path::PathBuf;
use std::process::Command;

use ember::prelude::*;

/// The masters every job of the suite runs on. `local[3]` with `ember.test.serializeLocal`
/// sends results through serialization, as cluster mode does.
pub fn masters() -> Vec<(&'static str, Vec<(&'static str, &'static str)>)> {
    vec![
        ("local[2]", vec![]),
        ("local[1]", vec![]),
        ("local[3]", vec![("ember.test.serializeLocal", "true")]),
        ("local-cluster[2,1,1024]", vec![]),
    ]
}

/// Whether tasks run in other processes (side effects of `foreach` are not visible here).
pub fn is_cluster(master: &str) -> bool {
    master.starts_with("local-cluster")
}

/// A context on `master` with `extra` settings, quiet, without the web UI and with a fixed
/// scheduler seed.
pub fn context(master: &str, extra: &[(&str, &str)]) -> Context {
    let mut conf = EmberConf::new()
        .set_master(master)
        .set_app_name("ember-test")
        .set("ember.ui.showConsoleProgress", "false")
        // Dozens of applications run at once here: the ones that test the UI ask for it.
        .set("ember.ui.enabled", "false")
        .set("ember.scheduler.seed", "42");
    for (k, v) in extra {
        conf = conf.set(*k, *v);
    }
    Context::new(conf).expect("context starts")
}

/// Runs `f` once per master.
pub fn for_each_master(mut f: impl FnMut(&Context, &str)) {
    for (m, extra) in masters() {
        let ctx = context(m, &extra);
        f(&ctx, m);
        ctx.stop();
    }
}

/// Sorted copy.
pub fn sorted<T: Ord + Clone>(v: &[T]) -> Vec<T> {
    let mut v = v.to_vec();
    v.sort();
    v
}

/// The path of example program `name`. A full `cargo test` builds the examples beside the test
/// binaries; a run of the integration tests alone does not, so build the example then, with the
/// same cargo.
pub fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target profile dir");
    let path = dir.join("examples").join(name);
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "ember", "--example", name])
            .status()
            .expect("run cargo build for the example");
        assert!(status.success(), "building example {name} failed");
    }
    path
}
