//! The output commit protocol for object stores, where a rename is a copy and a directory is a
//! key prefix: Hadoop S3A's staging committer, with multipart uploads.
//!
//! - **Task**: the part files are written on the executor's local disk (the same writers as for
//!   local output), then each is uploaded as a multipart upload *to its final key*. An upload is
//!   invisible (not in GET, HEAD or LIST) until it is completed. The task attempt then writes a
//!   small pending manifest, `<out>/_temporary/<job>/<attempt>.pending` (JSON: each file's key,
//!   upload id and part ETags), and its result names the attempt.
//! - **Job commit** (driver): lists the manifests, completes the uploads of the attempts the
//!   scheduler took the results of (one per partition), aborts every other attempt's, deletes
//!   `_temporary/`, and writes `_SUCCESS` last.
//! - **Job abort** (driver): writes `_temporary/<job>/_ABORTED`, then aborts the uploads of every
//!   manifest of the job and deletes the manifests. A task attempt still running checks for that
//!   marker after writing its manifest and aborts its own uploads when it is there (a manifest
//!   written before the marker is seen by the driver's listing, one written after sees the
//!   marker: S3, GCS and Azure list and read their own writes).
//!
//! What it guarantees, and what not (ARCHITECTURE.md, "Object stores"):
//! - nothing of a job's output is visible before job commit, and nothing of a failed job's ever
//!   (only the `_temporary/<job>/_ABORTED` marker stays, which readers skip as hidden and a later
//!   job's commit removes);
//! - job commit is not atomic across files: a driver dying in the middle leaves the files it
//!   completed visible, without `_SUCCESS`, as S3A's committers do; readers that need the whole
//!   output check `_SUCCESS`;
//! - an executor dying between starting an upload and writing its manifest leaves an upload that
//!   no manifest names; it is never visible, but the service keeps (and bills) its parts until
//!   a bucket lifecycle rule (`AbortIncompleteMultipartUpload`) removes it, as S3A recommends.

use std::path::{Path, PathBuf};

use object_store::multipart::PartId;
use object_store::path::Path as Key;
use object_store::{ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

use crate::error::{EmberError, Result};
use crate::io::cloud::{list_all, os_error, run, scheme_of, Bucket, Scheme};

/// Bytes of one part of a multipart upload: above S3's 5 MiB minimum, so a file smaller than
/// this is one part (S3 takes a last part of any size).
pub const PART_SIZE: usize = 8 << 20;

/// The marker of an aborted job, under its `_temporary/<job>/`.
const ABORTED: &str = "_ABORTED";

/// One file of a task attempt's output, uploaded but not completed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingFile {
    /// The final key.
    pub key: String,
    /// The multipart upload's id; empty for an empty file, which job commit writes with a PUT
    /// (a multipart upload needs at least one part).
    pub upload_id: String,
    /// The parts' ETags, in order.
    pub parts: Vec<String>,
    /// The file's size.
    pub len: u64,
}

/// A task attempt's pending manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The job token.
    pub job: String,
    /// The partition.
    pub partition: usize,
    /// The task attempt id.
    pub attempt: u64,
    /// Whether every part is uploaded (false while the attempt uploads: a job commit must not
    /// use it, an abort aborts its uploads).
    pub complete: bool,
    /// The files.
    pub files: Vec<PendingFile>,
}

/// Commits one job's output to an object store (see the module docs). Cheap to build; the
/// driver and every task build their own from the output URL and the job token.
pub struct CloudCommitter {
    bucket: std::sync::Arc<Bucket>,
    out_url: String,
    out: Key,
    job: String,
    part_size: usize,
}

impl CloudCommitter {
    /// The committer of job `job` writing to `out_url` in `bucket`.
    pub fn new(bucket: std::sync::Arc<Bucket>, out_url: &str, job: &str) -> Result<Self> {
        if scheme_of(out_url) == Scheme::Http || bucket.multipart.is_none() {
            return Err(EmberError::Argument(format!(
                "cannot write output to {out_url}: http(s) is a read-only file system"
            )));
        }
        let out = bucket.key(out_url)?;
        Ok(CloudCommitter {
            bucket,
            out_url: out_url.trim_end_matches('/').to_string(),
            out,
            job: job.to_string(),
            part_size: PART_SIZE,
        })
    }

    /// The same with another part size (tests).
    #[cfg(test)]
    fn with_part_size(mut self, n: usize) -> Self {
        self.part_size = n;
        self
    }

    fn child(&self, rel: &str) -> Key {
        let mut k = self.out.clone();
        for part in rel.split('/').filter(|p| !p.is_empty()) {
            k = k.join(part);
        }
        k
    }

    fn temporary(&self) -> Key {
        self.out.clone().join("_temporary")
    }

    fn job_dir(&self) -> Key {
        self.temporary().join(self.job.as_str())
    }

    fn manifest_key(&self, attempt: u64) -> Key {
        self.job_dir().join(format!("{attempt}.pending"))
    }

    fn err(&self, key: &Key) -> impl Fn(object_store::Error) -> EmberError + '_ {
        let url = self.bucket.url(key);
        move |e| os_error(&url, e)
    }

    /// Spark's `checkOutputSpecs`: the output must not exist, i.e. no object has its key or
    /// lies under it, except what aborted jobs left in `_temporary/`.
    pub fn setup_job(&self) -> Result<()> {
        let temporary = format!("{}/", self.temporary());
        let under = list_all(&self.bucket, &self.out)?;
        if under
            .iter()
            .any(|m| !m.location.as_ref().starts_with(&temporary))
        {
            return Err(EmberError::OutputExists(self.out_url.clone()));
        }
        if under.is_empty() {
            let store = self.bucket.store.clone();
            let out = self.out.clone();
            match run(async move { store.head(&out).await })? {
                Ok(_) => return Err(EmberError::OutputExists(self.out_url.clone())),
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(os_error(&self.out_url, e)),
            }
        }
        tracing::debug!(output = %self.out_url, "object-store output job set up");
        Ok(())
    }

    fn put_manifest(&self, m: &Manifest) -> Result<()> {
        let key = self.manifest_key(m.attempt);
        let body = serde_json::to_vec(m).map_err(|e| EmberError::Internal(e.to_string()))?;
        let store = self.bucket.store.clone();
        let k = key.clone();
        run(async move { store.put(&k, PutPayload::from(body)).await })?
            .map_err(self.err(&key))?;
        Ok(())
    }

    /// Uploads the files of `staging` (a task attempt's local output directory, which may hold
    /// `column=value` subdirectories) to their final keys without completing them, and writes
    /// the attempt's manifest. Returns the number of files. Fails if the job was aborted
    /// meanwhile, after aborting this attempt's uploads.
    pub fn commit_task(&self, partition: usize, attempt: u64, staging: &Path) -> Result<usize> {
        let mut local = Vec::new();
        collect_files(staging, staging, &mut local)?;
        local.sort();
        let multipart = self.multipart()?;
        let mut manifest = Manifest {
            job: self.job.clone(),
            partition,
            attempt,
            complete: false,
            files: Vec::with_capacity(local.len()),
        };
        // Every upload is named in a manifest before its first part is sent, so that a job
        // abort finds the uploads of an attempt that dies while sending.
        for (rel, path) in &local {
            let key = self.child(rel);
            let len = std::fs::metadata(path)
                .map_err(|e| EmberError::io(path, e))?
                .len();
            let upload_id = if len == 0 {
                String::new()
            } else {
                let mp = multipart.clone();
                let k = key.clone();
                run(async move { mp.create_multipart(&k).await })?.map_err(self.err(&key))?
            };
            manifest.files.push(PendingFile {
                key: key.to_string(),
                upload_id,
                parts: Vec::new(),
                len,
            });
        }
        self.put_manifest(&manifest)?;
        let uploaded = self.upload_parts(&local, &mut manifest);
        let uploaded = uploaded.and_then(|()| {
            manifest.complete = true;
            self.put_manifest(&manifest)
        });
        if let Err(e) = uploaded {
            self.abort_manifest(&manifest);
            self.delete(&self.manifest_key(attempt));
            return Err(e);
        }
        if self.exists(&self.job_dir().join(ABORTED))? {
            self.abort_manifest(&manifest);
            self.delete(&self.manifest_key(attempt));
            return Err(EmberError::Internal(format!(
                "the job writing {} was aborted while partition {partition} was committed",
                self.out_url
            )));
        }
        Ok(local.len())
    }

    fn multipart(&self) -> Result<std::sync::Arc<dyn object_store::multipart::MultipartStore>> {
        self.bucket.multipart.clone().ok_or_else(|| {
            EmberError::Argument(format!("{} is a read-only file system", self.out_url))
        })
    }

    fn upload_parts(&self, local: &[(String, PathBuf)], manifest: &mut Manifest) -> Result<()> {
        use std::io::Read;
        let multipart = self.multipart()?;
        for ((_, path), file) in local.iter().zip(manifest.files.iter_mut()) {
            if file.upload_id.is_empty() {
                continue;
            }
            let key = Key::from(file.key.as_str());
            let mut f = std::fs::File::open(path).map_err(|e| EmberError::io(path, e))?;
            let mut index = 0;
            loop {
                let mut buf = Vec::with_capacity(self.part_size);
                (&mut f)
                    .take(self.part_size as u64)
                    .read_to_end(&mut buf)
                    .map_err(|e| EmberError::io(path, e))?;
                if buf.is_empty() {
                    break;
                }
                let last = buf.len() < self.part_size;
                let (mp, k, id) = (multipart.clone(), key.clone(), file.upload_id.clone());
                let part = run(async move {
                    mp.put_part(&k, &id, index, PutPayload::from(buf)).await
                })?
                .map_err(self.err(&key))?;
                file.parts.push(part.content_id);
                index += 1;
                if last {
                    break;
                }
            }
        }
        Ok(())
    }

    fn exists(&self, key: &Key) -> Result<bool> {
        let store = self.bucket.store.clone();
        let k = key.clone();
        match run(async move { store.head(&k).await })? {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(os_error(&self.bucket.url(key), e)),
        }
    }

    /// Best effort: logged, not returned.
    fn delete(&self, key: &Key) {
        let store = self.bucket.store.clone();
        let k = key.clone();
        match run(async move { store.delete(&k).await }) {
            Ok(Ok(())) | Ok(Err(object_store::Error::NotFound { .. })) => {}
            Ok(Err(e)) => tracing::warn!(key = %key, error = %e, "could not delete"),
            Err(e) => tracing::warn!(key = %key, error = %e, "could not delete"),
        }
    }

    /// Aborts the uploads a manifest names. Best effort: logged.
    fn abort_manifest(&self, m: &Manifest) {
        let Ok(multipart) = self.multipart() else {
            return;
        };
        for f in m.files.iter().filter(|f| !f.upload_id.is_empty()) {
            let (mp, k, id) = (
                multipart.clone(),
                Key::from(f.key.as_str()),
                f.upload_id.clone(),
            );
            match run(async move { mp.abort_multipart(&k, &id).await }) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(key = %f.key, error = %e, "could not abort upload"),
                Err(e) => tracing::warn!(key = %f.key, error = %e, "could not abort upload"),
            }
        }
    }

    fn read_manifest(&self, key: &Key) -> Result<Manifest> {
        let store = self.bucket.store.clone();
        let k = key.clone();
        let bytes = run(async move {
            match store.get(&k).await {
                Ok(r) => r.bytes().await,
                Err(e) => Err(e),
            }
        })?
        .map_err(self.err(key))?;
        serde_json::from_slice(&bytes).map_err(|e| EmberError::CorruptFile {
            path: self.bucket.url(key),
            message: e.to_string(),
        })
    }

    /// The manifests under `_temporary/` (of every job: an earlier job's are zombies' leftovers).
    fn manifests(&self) -> Result<Vec<(Key, Manifest)>> {
        let mut out = Vec::new();
        for m in list_all(&self.bucket, &self.temporary())? {
            if m.location.as_ref().ends_with(".pending") {
                let manifest = self.read_manifest(&m.location)?;
                out.push((m.location, manifest));
            }
        }
        Ok(out)
    }

    /// Completes the uploads of the attempts in `winners` (one per partition: the attempts whose
    /// results the job kept), aborts all others, removes `_temporary/` and writes `_SUCCESS`.
    /// Returns the number of files made visible.
    pub fn commit_job(&self, winners: &[u64]) -> Result<usize> {
        let manifests = self.manifests()?;
        let mut chosen = Vec::new();
        for (_, m) in &manifests {
            if m.job == self.job && winners.contains(&m.attempt) {
                if !m.complete {
                    return Err(EmberError::Internal(format!(
                        "the committed attempt {} of partition {} of {} has an incomplete \
                         manifest",
                        m.attempt, m.partition, self.out_url
                    )));
                }
                chosen.push(m);
            } else {
                self.abort_manifest(m);
            }
        }
        if chosen.len() != winners.len() {
            return Err(EmberError::Internal(format!(
                "{} committed task attempts of {} but {} manifests",
                winners.len(),
                self.out_url,
                chosen.len()
            )));
        }
        let multipart = self.multipart()?;
        let mut files = 0;
        for m in &chosen {
            for f in &m.files {
                let key = Key::from(f.key.as_str());
                let (mp, store, k) = (multipart.clone(), self.bucket.store.clone(), key.clone());
                let (id, parts) = (f.upload_id.clone(), f.parts.clone());
                run(async move {
                    if id.is_empty() {
                        store.put(&k, PutPayload::new()).await.map(|_| ())
                    } else {
                        let parts = parts.into_iter().map(|content_id| PartId { content_id });
                        mp.complete_multipart(&k, &id, parts.collect()).await.map(|_| ())
                    }
                })?
                .map_err(self.err(&key))?;
                files += 1;
            }
        }
        for m in list_all(&self.bucket, &self.temporary())? {
            self.delete(&m.location);
        }
        let success = self.out.clone().join("_SUCCESS");
        let store = self.bucket.store.clone();
        let k = success.clone();
        run(async move { store.put(&k, PutPayload::new()).await })?.map_err(self.err(&success))?;
        tracing::debug!(output = %self.out_url, files, "object-store output job committed");
        Ok(files)
    }

    /// Marks the job aborted, aborts the uploads of its manifests and deletes them. Best effort:
    /// errors are logged. Files an interrupted [`commit_job`](Self::commit_job) completed stay.
    pub fn abort_job(&self) {
        let marker = self.job_dir().join(ABORTED);
        let store = self.bucket.store.clone();
        let k = marker.clone();
        let marked = run(async move { store.put(&k, PutPayload::new()).await })
            .and_then(|r| r.map_err(|e| os_error(&self.out_url, e)));
        if let Err(e) = marked {
            tracing::warn!(output = %self.out_url, error = %e, "could not mark the job aborted");
        }
        match self.manifests() {
            Ok(manifests) => {
                for (key, m) in manifests.iter().filter(|(_, m)| m.job == self.job) {
                    self.abort_manifest(m);
                    self.delete(key);
                }
            }
            Err(e) => {
                tracing::warn!(output = %self.out_url, error = %e, "could not list pending uploads")
            }
        }
    }
}

/// The files under `dir`, as (`/`-separated path relative to `root`, path).
fn collect_files(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(|e| EmberError::io(dir, e))? {
        let entry = entry.map_err(|e| EmberError::io(dir, e))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| EmberError::io(&path, e))?;
        if kind.is_dir() {
            collect_files(root, &path, out)?;
        } else {
            let rel = path.strip_prefix(root).unwrap_or(&path);
            let rel: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            out.push((rel.join("/"), path));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use object_store::memory::InMemory;
    use object_store::ObjectStore;

    use super::*;

    fn bucket() -> (Arc<Bucket>, Arc<InMemory>) {
        let mem = Arc::new(InMemory::new());
        let b = Bucket {
            root: "s3://b".into(),
            store: mem.clone(),
            multipart: Some(mem.clone()),
        };
        (Arc::new(b), mem)
    }

    fn keys(mem: &Arc<InMemory>) -> Vec<String> {
        let mem = mem.clone();
        let mut v: Vec<String> = run(async move {
            use futures_util::TryStreamExt;
            mem.list(None).try_collect::<Vec<_>>().await
        })
        .unwrap()
        .unwrap()
        .into_iter()
        .map(|m| m.location.to_string())
        .collect();
        v.sort();
        v
    }

    fn get(mem: &Arc<InMemory>, key: &str) -> Vec<u8> {
        let (mem, k) = (mem.clone(), Key::from(key));
        run(async move { mem.get(&k).await.unwrap().bytes().await.unwrap() })
            .unwrap()
            .to_vec()
    }

    fn staged(files: &[(&str, &[u8])]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (rel, bytes) in files {
            let p = dir.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, bytes).unwrap();
        }
        dir
    }

    #[test]
    fn nothing_is_visible_before_job_commit_and_only_winners_after() {
        let (b, mem) = bucket();
        let driver = CloudCommitter::new(b.clone(), "s3://b/out", "j1").unwrap();
        driver.setup_job().unwrap();
        let big: Vec<u8> = (0..25u32).flat_map(|i| vec![i as u8; 10]).collect();
        let task = |p: usize, a: u64, files: &[(&str, &[u8])]| {
            let c = CloudCommitter::new(b.clone(), "s3://b/out", "j1")
                .unwrap()
                .with_part_size(64);
            let dir = staged(files);
            c.commit_task(p, a, dir.path()).unwrap()
        };
        assert_eq!(task(0, 10, &[("part-00000", b"a\n")]), 1);
        // Two attempts of partition 1; the scheduler kept attempt 12's result.
        task(1, 11, &[("part-00001", b"loser\n")]);
        task(1, 12, &[("x=1/part-00001", &big), ("x=2/part-00001", b"")]);
        let before = keys(&mem);
        assert!(
            before.iter().all(|k| k.starts_with("out/_temporary/j1/")),
            "only manifests before commit: {before:?}"
        );
        assert_eq!(driver.commit_job(&[10, 12]).unwrap(), 3);
        assert_eq!(
            keys(&mem),
            vec![
                "out/_SUCCESS",
                "out/part-00000",
                "out/x=1/part-00001",
                "out/x=2/part-00001"
            ]
        );
        assert_eq!(get(&mem, "out/x=1/part-00001"), big, "250 bytes in 64-byte parts");
        assert_eq!(get(&mem, "out/part-00000"), b"a\n");
        assert!(get(&mem, "out/x=2/part-00001").is_empty());
        // The output now exists.
        let again = CloudCommitter::new(b, "s3://b/out", "j2").unwrap();
        assert!(matches!(again.setup_job(), Err(EmberError::OutputExists(_))));
    }

    #[test]
    fn abort_leaves_only_the_marker_and_a_late_task_aborts_itself() {
        let (b, mem) = bucket();
        let driver = CloudCommitter::new(b.clone(), "s3://b/out", "j1").unwrap();
        driver.setup_job().unwrap();
        let c = CloudCommitter::new(b.clone(), "s3://b/out", "j1").unwrap();
        c.commit_task(0, 1, staged(&[("part-00000", b"x")]).path())
            .unwrap();
        driver.abort_job();
        assert_eq!(keys(&mem), vec!["out/_temporary/j1/_ABORTED"]);
        // A zombie attempt of the aborted job finds the marker and takes its upload back.
        let late = c.commit_task(1, 2, staged(&[("part-00001", b"y")]).path());
        assert!(late.is_err());
        assert_eq!(keys(&mem), vec!["out/_temporary/j1/_ABORTED"]);
        // The leftover marker does not make the output "exist"; the next job's commit removes
        // it, and aborts manifests an older job's zombie may have left.
        let next = CloudCommitter::new(b.clone(), "s3://b/out", "j2").unwrap();
        next.setup_job().unwrap();
        let t = CloudCommitter::new(b, "s3://b/out", "j2").unwrap();
        t.commit_task(0, 7, staged(&[("part-00000", b"z")]).path())
            .unwrap();
        next.commit_job(&[7]).unwrap();
        assert_eq!(keys(&mem), vec!["out/_SUCCESS", "out/part-00000"]);
    }

    #[test]
    fn a_winner_without_manifest_fails_the_commit() {
        let (b, _) = bucket();
        let driver = CloudCommitter::new(b, "s3://b/out", "j1").unwrap();
        driver.setup_job().unwrap();
        assert!(driver.commit_job(&[3]).is_err());
    }

    #[test]
    fn http_is_read_only() {
        let mem = Arc::new(InMemory::new());
        let b = Arc::new(Bucket {
            root: "http://host:8080".into(),
            store: mem,
            multipart: None,
        });
        let e = CloudCommitter::new(b, "http://host:8080/out", "j")
            .err()
            .unwrap();
        assert!(e.to_string().contains("read-only"), "{e}");
        assert!(e.to_string().contains("http://host:8080/out"), "{e}");
    }
}
