//! Hadoop's `FileOutputCommitter` (algorithm 1, Spark's default) for `save_as_text_file`.
//!
//! Tasks write into private attempt directories, a task's output becomes visible to the job only
//! when the task commits, and the job's output appears in the output directory only when the job
//! commits. So a failed or speculative attempt never leaves a half-written or duplicated part
//! file, and readers can trust `_SUCCESS`.
//!
//! Layout, as Hadoop's (with the committed task file directly under the job attempt directory),
//! except that the job attempt directory is named by a token unique to each job rather than by
//! the application attempt (`0`), so that a task of an aborted save still running when the same
//! path is saved again cannot write into, or commit to, the new job:
//! ```text
//! output/_temporary/<job>/_temporary/attempt_00003_1/part-00003   written by task 3, attempt 1
//! output/_temporary/<job>/part-00003                              after commit_task(3, 1)
//! output/part-00003, output/_SUCCESS                              after commit_job
//! ```
//!
//! Only the driver creates `output` and `output/_temporary/<job>`; tasks create directories
//! below those one level at a time and never their parents. That is what lets an abort finish:
//! once [`TextOutputCommitter::abort_job`] has removed the output, a task of the aborted job
//! still running (Spark does not wait for them either) fails to write instead of recreating it.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{BufWriter, ErrorKind, Write};
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

use crate::error::{EmberError, Result};

/// Buffer of a part-file writer: large writes, few system calls.
const WRITE_BUFFER: usize = 256 << 10;

/// How many times [`TextOutputCommitter::abort_job`] sweeps the output: a task of the aborted
/// job still running can add a file to a directory being removed (the removal then fails with
/// "directory not empty"), but not more than once per directory it already created.
const ABORT_SWEEPS: usize = 16;

/// A name for one job's attempt directory, unique among the jobs of this and other drivers.
pub fn new_job_token() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{}-{}-{nanos:x}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Creates `dir` whose parent must exist; an existing `dir` is fine.
fn create_dir_in_existing(dir: &Path) -> Result<()> {
    match fs::create_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(EmberError::io(dir, e)),
    }
}

/// Moves the files of the tree `src` into the tree `dst` (whose root exists), creating
/// directories one level at a time; returns how many files moved.
fn move_tree(src: &Path, dst: &Path) -> Result<usize> {
    let mut moved = 0;
    for entry in fs::read_dir(src).map_err(|e| EmberError::io(src, e))? {
        let entry = entry.map_err(|e| EmberError::io(src, e))?;
        let to = dst.join(entry.file_name());
        let kind = entry
            .file_type()
            .map_err(|e| EmberError::io(entry.path(), e))?;
        if kind.is_dir() {
            create_dir_in_existing(&to)?;
            moved += move_tree(&entry.path(), &to)?;
        } else {
            fs::rename(entry.path(), &to).map_err(|e| EmberError::io(entry.path(), e))?;
            moved += 1;
        }
    }
    Ok(moved)
}

/// Spark's part-file name for a partition (`part-00007`).
pub(crate) fn part_name(partition: usize) -> String {
    format!("part-{partition:05}")
}

/// Commits the text output of one `save_as_text_file` job (see the module docs).
///
/// All methods take `&self` and the type is `Send + Sync`, so task threads share one committer.
pub struct TextOutputCommitter {
    output: PathBuf,
    /// `output/_temporary/0`: committed task files live here until the job commits.
    job_attempt_dir: PathBuf,
    /// Which attempt committed each partition; the first one wins.
    committed: Mutex<HashMap<usize, u64>>,
}

impl TextOutputCommitter {
    /// Starts a job writing to `output`, which must not exist: Spark refuses to overwrite
    /// ([`EmberError::OutputExists`]). Creates `output/_temporary/<job>`, `job` being a
    /// [`new_job_token`] the tasks are given.
    pub fn setup_job(output: &Path, job: &str) -> Result<Self> {
        match fs::symlink_metadata(output) {
            Ok(_) => return Err(EmberError::OutputExists(output.display().to_string())),
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(EmberError::io(output, e)),
        }
        let job_attempt_dir = output.join("_temporary").join(job);
        fs::create_dir_all(&job_attempt_dir).map_err(|e| EmberError::io(&job_attempt_dir, e))?;
        tracing::debug!(output = %output.display(), "output job set up");
        Ok(TextOutputCommitter {
            output: output.to_path_buf(),
            job_attempt_dir,
            committed: Mutex::new(HashMap::new()),
        })
    }

    /// The committer as a task sees it: the job was set up by the driver, possibly in another
    /// process, so what was committed is learnt from the files, not from memory.
    pub fn for_task(output: &Path, job: &str) -> Self {
        TextOutputCommitter {
            output: output.to_path_buf(),
            job_attempt_dir: output.join("_temporary").join(job),
            committed: Mutex::new(HashMap::new()),
        }
    }

    /// The job's output directory.
    #[cfg(any(test, feature = "testing"))]
    pub fn output(&self) -> &Path {
        &self.output
    }

    fn attempt_dir(&self, partition: usize, attempt: u64) -> PathBuf {
        self.job_attempt_dir
            .join("_temporary")
            .join(format!("attempt_{partition:05}_{attempt}"))
    }

    fn attempt_file(&self, partition: usize, attempt: u64) -> PathBuf {
        self.attempt_dir(partition, attempt)
            .join(part_name(partition))
    }

    /// Writes one task attempt's records, one line each followed by `\n`, into the attempt's
    /// private part file (created even when there are no records, as Spark does). Returns the
    /// number of records and bytes written. A retry of the same attempt number starts afresh.
    /// Fails (with a not-found I/O error) once the job was aborted or committed.
    pub fn write_task_output<I: Iterator<Item = String>>(
        &self,
        partition: usize,
        attempt: u64,
        lines: I,
    ) -> Result<(u64, u64)> {
        let dir = self.attempt_dir(partition, attempt);
        create_dir_in_existing(&self.job_attempt_dir.join("_temporary"))?;
        create_dir_in_existing(&dir)?;
        let path = dir.join(part_name(partition));
        let file = File::create(&path).map_err(|e| EmberError::io(&path, e))?;
        crate::metrics::count_file_op(true);
        let mut w = BufWriter::with_capacity(WRITE_BUFFER, file);
        let (mut records, mut bytes) = (0u64, 0u64);
        for line in lines {
            w.write_all(line.as_bytes())
                .map_err(|e| EmberError::io(&path, e))?;
            w.write_all(b"\n").map_err(|e| EmberError::io(&path, e))?;
            records += 1;
            bytes += line.len() as u64 + 1;
        }
        // The final flush is where a full disk shows up; `drop` would swallow that error.
        w.into_inner()
            .map_err(|e| EmberError::io(&path, e.into_error()))?;
        Ok((records, bytes))
    }

    /// Runs `write` on one task attempt's private directory, where it may create files and
    /// `column=value` subdirectories (the writers of `csv`, JSON lines, Parquet and
    /// `partition_by`); returns what `write` returns. Commit with
    /// [`commit_task_files`](Self::commit_task_files).
    pub fn write_task_files<R>(
        &self,
        partition: usize,
        attempt: u64,
        write: impl FnOnce(&Path) -> Result<R>,
    ) -> Result<R> {
        let dir = self.attempt_dir(partition, attempt);
        create_dir_in_existing(&self.job_attempt_dir.join("_temporary"))?;
        create_dir_in_existing(&dir)?;
        write(&dir)
    }

    /// Makes every file of one attempt's directory part of the job's output (see
    /// [`write_task_files`](Self::write_task_files)). The first attempt to commit a partition
    /// wins (decided by creating a marker file, so across processes too); a later one's output
    /// is discarded and `Ok` returned.
    pub fn commit_task_files(&self, partition: usize, attempt: u64) -> Result<()> {
        let marker = self
            .job_attempt_dir
            .join(format!(".{}.committed", part_name(partition)));
        match File::options().write(true).create_new(true).open(&marker) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                tracing::info!(
                    partition,
                    attempt,
                    "commit denied: partition already committed"
                );
                self.abort_task(partition, attempt);
                return Ok(());
            }
            Err(e) => return Err(EmberError::io(&marker, e)),
        }
        let dir = self.attempt_dir(partition, attempt);
        move_tree(&dir, &self.job_attempt_dir)?;
        if let Err(e) = fs::remove_dir_all(&dir) {
            tracing::debug!(dir = %dir.display(), error = %e, "could not remove attempt directory");
        }
        Ok(())
    }

    /// Makes one attempt's output the partition's committed output. The first attempt to commit
    /// a partition wins; a later attempt's commit is refused quietly (its output is deleted and
    /// `Ok` returned), because it is a speculative or zombie duplicate whose result the
    /// scheduler ignores anyway, not a failure. Committing the same attempt twice is harmless.
    pub fn commit_task(&self, partition: usize, attempt: u64) -> Result<()> {
        let mut committed = self.committed.lock();
        if let Some(&winner) = committed.get(&partition) {
            if winner != attempt {
                tracing::info!(
                    partition,
                    attempt,
                    winner,
                    "commit denied: partition already committed by another attempt"
                );
                self.abort_task(partition, attempt);
            }
            return Ok(());
        }
        let src = self.attempt_file(partition, attempt);
        let dst = self.job_attempt_dir.join(part_name(partition));
        // A committed file on disk that the map does not know was committed through another
        // committer of the same job (another process); keep it rather than overwrite it.
        if fs::symlink_metadata(&dst).is_ok() {
            tracing::info!(
                partition,
                attempt,
                "commit denied: partition committed elsewhere"
            );
            self.abort_task(partition, attempt);
            return Ok(());
        }
        fs::rename(&src, &dst).map_err(|e| EmberError::io(&src, e))?;
        committed.insert(partition, attempt);
        drop(committed);
        let dir = self.attempt_dir(partition, attempt);
        if let Err(e) = fs::remove_dir(&dir) {
            tracing::debug!(dir = %dir.display(), error = %e, "could not remove attempt directory");
        }
        Ok(())
    }

    /// Discards one attempt's uncommitted output (a failed or denied attempt). Best effort:
    /// leftovers are removed by [`commit_job`](Self::commit_job) or [`abort_job`](Self::abort_job).
    pub fn abort_task(&self, partition: usize, attempt: u64) {
        let dir = self.attempt_dir(partition, attempt);
        if let Err(e) = fs::remove_dir_all(&dir) {
            if e.kind() != ErrorKind::NotFound {
                tracing::warn!(
                    dir = %dir.display(),
                    error = %e,
                    "could not remove task attempt output"
                );
            }
        }
    }

    /// Moves every committed part file into the output directory, removes `_temporary`, and
    /// writes an empty `_SUCCESS` marker last, so its presence means the output is complete.
    pub fn commit_job(&self) -> Result<()> {
        let dir = &self.job_attempt_dir;
        let entries = fs::read_dir(dir).map_err(|e| EmberError::io(dir, e))?;
        let mut moved = 0usize;
        for entry in entries {
            let entry = entry.map_err(|e| EmberError::io(dir, e))?;
            let name = entry.file_name();
            let bytes = name.as_encoded_bytes();
            if bytes.starts_with(b"part-") {
                let dst = self.output.join(&name);
                fs::rename(entry.path(), &dst).map_err(|e| EmberError::io(entry.path(), e))?;
                moved += 1;
            } else if bytes.contains(&b'=') && !bytes.starts_with(b"_") && !bytes.starts_with(b".")
            {
                // A `partition_by` directory: merged into the output's, file by file.
                let dst = self.output.join(&name);
                create_dir_in_existing(&dst)?;
                moved += move_tree(&entry.path(), &dst)?;
            }
        }
        let temporary = self.output.join("_temporary");
        fs::remove_dir_all(&temporary).map_err(|e| EmberError::io(&temporary, e))?;
        let success = self.output.join("_SUCCESS");
        File::create(&success).map_err(|e| EmberError::io(&success, e))?;
        tracing::debug!(output = %self.output.display(), parts = moved, "output job committed");
        Ok(())
    }

    /// Removes the whole output directory, `_temporary` included, so a failed job leaves
    /// nothing behind and a rerun can use the same path (Spark's `abortJob` removes only
    /// `_temporary` and leaves an empty directory that makes the rerun fail; the directory did
    /// not exist before the job, so all of it is the job's). Tasks of the job still running
    /// cannot recreate it (see the module docs); one of them adding a file while the tree is
    /// being removed only makes another sweep necessary. Best effort: errors are logged.
    pub fn abort_job(&self) {
        for _ in 0..ABORT_SWEEPS {
            match fs::remove_dir_all(&self.output) {
                Ok(()) => return,
                Err(e) if e.kind() == ErrorKind::NotFound => return,
                Err(e) => {
                    tracing::debug!(
                        output = %self.output.display(),
                        error = %e,
                        "output of aborted job changed while removed; sweeping again"
                    )
                }
            }
        }
        if let Err(e) = fs::remove_dir_all(&self.output) {
            if e.kind() != ErrorKind::NotFound {
                tracing::warn!(
                    output = %self.output.display(),
                    error = %e,
                    "could not remove output of aborted job"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn lines(v: &[&str]) -> impl Iterator<Item = String> {
        v.iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .into_iter()
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<TextOutputCommitter>();
    }

    #[test]
    fn full_job_writes_parts_and_success() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let c = TextOutputCommitter::setup_job(&out, "j").unwrap();
        assert!(out.join("_temporary/j").is_dir());
        assert_eq!(
            c.write_task_output(0, 0, lines(&["a", "bc"])).unwrap(),
            (2, 5)
        );
        assert_eq!(c.write_task_output(1, 0, lines(&[])).unwrap(), (0, 0));
        c.commit_task(0, 0).unwrap();
        c.commit_task(1, 0).unwrap();
        assert!(out.join("_temporary/j/part-00000").is_file());
        assert!(
            !out.join("part-00000").exists(),
            "invisible before the job commits"
        );
        c.commit_job().unwrap();
        assert_eq!(names(&out), ["_SUCCESS", "part-00000", "part-00001"]);
        assert_eq!(
            fs::read_to_string(out.join("part-00000")).unwrap(),
            "a\nbc\n"
        );
        assert_eq!(fs::read_to_string(out.join("part-00001")).unwrap(), "");
        assert_eq!(fs::read(out.join("_SUCCESS")).unwrap(), b"");
    }

    #[test]
    fn existing_output_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let err = TextOutputCommitter::setup_job(tmp.path(), "j")
            .err()
            .unwrap();
        assert_eq!(
            err,
            EmberError::OutputExists(tmp.path().display().to_string())
        );
        assert!(
            names(tmp.path()).is_empty(),
            "nothing created in the existing directory"
        );
    }

    #[test]
    fn first_commit_wins() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let c = TextOutputCommitter::setup_job(&out, "j").unwrap();
        c.write_task_output(0, 1, lines(&["speculative"])).unwrap();
        c.write_task_output(0, 0, lines(&["original"])).unwrap();
        c.commit_task(0, 1).unwrap();
        c.commit_task(0, 0).unwrap();
        c.commit_task(0, 1).unwrap();
        assert!(!c.attempt_dir(0, 0).exists(), "loser's output discarded");
        c.commit_job().unwrap();
        assert_eq!(
            fs::read_to_string(out.join("part-00000")).unwrap(),
            "speculative\n"
        );
        assert_eq!(names(&out), ["_SUCCESS", "part-00000"]);
    }

    #[test]
    fn uncommitted_attempts_do_not_reach_output() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let c = TextOutputCommitter::setup_job(&out, "j").unwrap();
        c.write_task_output(0, 0, lines(&["failed attempt"]))
            .unwrap();
        c.abort_task(0, 0);
        c.write_task_output(0, 1, lines(&["retry"])).unwrap();
        c.write_task_output(1, 0, lines(&["never committed"]))
            .unwrap();
        c.commit_task(0, 1).unwrap();
        c.commit_job().unwrap();
        assert_eq!(names(&out), ["_SUCCESS", "part-00000"]);
        assert_eq!(
            fs::read_to_string(out.join("part-00000")).unwrap(),
            "retry\n"
        );
    }

    #[test]
    fn commit_without_output_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let c = TextOutputCommitter::setup_job(&tmp.path().join("out"), "j").unwrap();
        assert!(matches!(c.commit_task(3, 0), Err(EmberError::Io { .. })));
    }

    #[test]
    fn abort_job_removes_everything() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let c = TextOutputCommitter::setup_job(&out, "j").unwrap();
        c.write_task_output(0, 0, lines(&["x"])).unwrap();
        c.commit_task(0, 0).unwrap();
        c.write_task_output(1, 0, lines(&["y"])).unwrap();
        c.abort_job();
        assert!(!out.exists());
        assert!(
            TextOutputCommitter::setup_job(&out, "k").is_ok(),
            "a rerun can use the path"
        );
    }

    #[test]
    fn tasks_of_an_aborted_job_cannot_recreate_its_output() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let c = TextOutputCommitter::setup_job(&out, "old").unwrap();
        let straggler = TextOutputCommitter::for_task(&out, "old");
        c.abort_job();
        assert!(straggler.write_task_output(0, 0, lines(&["late"])).is_err());
        assert!(
            !out.exists(),
            "a task must not recreate the output of an aborted job"
        );
        // Nor write into a later job at the same path.
        let rerun = TextOutputCommitter::setup_job(&out, "new").unwrap();
        assert!(straggler.write_task_output(0, 0, lines(&["late"])).is_err());
        assert!(straggler.commit_task(0, 0).is_err());
        rerun.write_task_output(0, 1, lines(&["fresh"])).unwrap();
        rerun.commit_task(0, 1).unwrap();
        rerun.commit_job().unwrap();
        assert_eq!(names(&out), ["_SUCCESS", "part-00000"]);
        assert_eq!(
            fs::read_to_string(out.join("part-00000")).unwrap(),
            "fresh\n"
        );
    }

    #[test]
    fn concurrent_tasks() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let c = Arc::new(TextOutputCommitter::setup_job(&out, "j").unwrap());
        let handles: Vec<_> = (0..8usize)
            .map(|t| {
                let c = Arc::clone(&c);
                std::thread::spawn(move || {
                    // Two attempts of every partition race to commit.
                    for p in 0..16usize {
                        let attempt = t as u64 % 2;
                        let recs = (0..p).map(move |i| format!("{p}:{i}"));
                        c.write_task_output(p, attempt + 10 * t as u64, recs)
                            .unwrap();
                        c.commit_task(p, attempt + 10 * t as u64).unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        c.commit_job().unwrap();
        let got = names(&out);
        assert_eq!(got.len(), 17);
        for p in 0..16usize {
            let text = fs::read_to_string(out.join(part_name(p))).unwrap();
            let want: String = (0..p).map(|i| format!("{p}:{i}\n")).collect();
            assert_eq!(text, want);
        }
    }
}
