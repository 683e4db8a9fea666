//! Scratch directories that outlived their process.
//!
//! Every Ember process keeps its shuffle files, spills and blocks in one directory of the temp
//! dir (or `ember.local.dir`) named after its PID: `ember-PID-…` for a driver (local mode's
//! embedded executor included) and `ember-executor-PID-…` for an executor. A process deletes its
//! own when it stops, even on SIGINT or SIGTERM, and a `local-cluster` driver deletes those of its
//! executors that die. What nothing can clean is the directory of a process killed outright
//! with nobody left to notice: a local-mode driver hit by SIGKILL or the OOM killer. Spark leaves
//! its `blockmgr-*` directories behind in that case; Ember removes them at the next start of an
//! application on the machine instead, as [`sweep`] does.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The name prefixes of Ember's scratch directories; the PID follows, then `-`.
const PREFIXES: [&str; 2] = ["ember-executor-", "ember-"];

/// The PID a scratch directory's name carries, if it is one of Ember's.
fn owner_pid(name: &str) -> Option<u32> {
    PREFIXES.iter().find_map(|prefix| {
        let rest = name.strip_prefix(prefix)?;
        let (pid, tail) = rest.split_once('-')?;
        if pid.is_empty() || tail.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        pid.parse().ok()
    })
}

/// Deletes the directories in `root` that an Ember process of this user left behind and whose
/// PID runs no process any more; returns how many it deleted. A PID that runs something (the
/// owner, or another process that reused the number) keeps its directory. Without `/proc` it
/// deletes nothing: it cannot tell the living from the dead.
pub(crate) fn sweep(root: &Path) -> usize {
    let proc = Path::new("/proc");
    let Ok(me) = std::fs::metadata(proc.join("self")) else {
        return 0;
    };
    let Ok(entries) = std::fs::read_dir(root) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.filter_map(|e| e.ok()) {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(owner_pid) else {
            continue;
        };
        // A directory of this user, not a link or a file someone put under that name.
        let Ok(meta) = entry.path().symlink_metadata() else {
            continue;
        };
        if !meta.is_dir() || meta.uid() != me.uid() || pid == std::process::id() {
            continue;
        }
        if proc.join(pid.to_string()).exists() {
            continue;
        }
        if std::fs::remove_dir_all(entry.path()).is_ok() {
            tracing::info!(
                "Deleted {}, left by process {pid}, which no longer runs",
                entry.path().display()
            );
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_scratch_directories_give_their_pid() {
        assert_eq!(owner_pid("ember-123-18a2b-0"), Some(123));
        assert_eq!(owner_pid("ember-executor-77-3-00ff"), Some(77));
        assert_eq!(owner_pid("ember-executor-77-"), None);
        assert_eq!(owner_pid("ember-hs-check.abc"), None);
        assert_eq!(owner_pid("ember-12a-x"), None);
        assert_eq!(owner_pid("ember--x"), None);
        assert_eq!(owner_pid("spark-123-x"), None);
        assert_eq!(owner_pid("ember-99999999999999999999-x"), None);
    }

    /// A PID far above any kernel's `pid_max` (2^22) that still fits a `u32`: never running.
    const DEAD: u32 = 4_000_000_000;

    #[test]
    fn directories_of_dead_processes_go_and_the_rest_stay() {
        let root = tempfile::tempdir().unwrap();
        let dead = root.path().join(format!("ember-{DEAD}-1f-0"));
        let dead_executor = root.path().join(format!("ember-executor-{DEAD}-2-ab"));
        let alive = root
            .path()
            .join(format!("ember-{}-1f-0", std::process::id()));
        let parent_alive = root.path().join("ember-1-1f-0");
        let not_ours = root.path().join(format!("ember-hs-check.{DEAD}"));
        let file = root.path().join(format!("ember-{DEAD}-file"));
        for d in [&dead, &dead_executor, &alive, &parent_alive, &not_ours] {
            std::fs::create_dir_all(d.join("blockmgr")).unwrap();
            std::fs::write(d.join("blockmgr/shuffle_0_0_0.data"), b"x").unwrap();
        }
        std::fs::write(&file, b"x").unwrap();
        let link = root.path().join(format!("ember-{DEAD}-link"));
        std::os::unix::fs::symlink(&alive, &link).unwrap();

        assert_eq!(sweep(root.path()), 2);
        assert!(!dead.exists() && !dead_executor.exists());
        for kept in [&alive, &parent_alive, &not_ours, &file] {
            assert!(kept.exists(), "{} was deleted", kept.display());
        }
        assert!(link.symlink_metadata().is_ok() && alive.join("blockmgr").exists());
    }
}
