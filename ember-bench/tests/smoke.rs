//! Smoke test: the whole harness at 1/1000 size, one run of every workload (and `W3-map`), on
//! `local[2]`.
//! Checks that every sanity check passes and every workload reports; no timing assertions.

use std::process::Command;

#[test]
fn all_workloads_at_small_scale() {
    let dir = std::env::temp_dir().join(format!("ember-bench-smoke-{}", std::process::id()));
    let corpus = dir.join("corpus-w3.txt");
    let out = Command::new(env!("CARGO_BIN_EXE_ember-bench"))
        .args([
            "--master", "local[2]", "--scale", "0.001", "--runs", "1", "--corpus",
        ])
        .arg(&corpus)
        .args(["all", "w3-map"])
        .output()
        .expect("ember-bench runs");
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    let results: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("RESULT "))
        .collect();
    assert_eq!(results.len(), 8, "stdout:\n{stdout}");
    for (line, id) in results
        .iter()
        .zip(["W1", "W2", "W3", "W4", "W5", "W6", "W7", "W3-map"])
    {
        assert!(
            line.starts_with(&format!("RESULT {id} local[2] min=")),
            "{line}"
        );
    }
    assert!(!stdout.contains("SANITY FAIL"), "stdout:\n{stdout}");
    assert!(
        stdout.lines().any(|l| l.starts_with("PEAK_RSS_KB self=")),
        "stdout:\n{stdout}"
    );
}

#[test]
fn unavailable_master_fails_cleanly() {
    // Cluster modes may not exist yet: the harness must exit non-zero without panicking, so that
    // compare.sh can report the column as not available. Once they exist this still holds for
    // a malformed URL.
    let out = Command::new(env!("CARGO_BIN_EXE_ember-bench"))
        .args(["--master", "local-cluster[oops]", "W2"])
        .output()
        .expect("ember-bench runs");
    assert_eq!(out.status.code(), Some(2));
}
