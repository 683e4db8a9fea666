//! Unpacking archives (Spark's `Utils.unpack`): `.zip` (and `.jar`), `.tar.gz`, `.tgz` and
//! `.tar`, into a directory; any other name is copied as it is, as Spark does.
//!
//! An archive comes from the user, so nothing in it may reach outside the directory: an entry
//! whose path is absolute or has a `..` component is refused (the "zip slip"), and so is a link
//! whose target is absolute or has a `..` (with targets that never climb, a path through links
//! stays inside too). Entries other than files, directories and links (devices, fifos) are
//! refused as well. Tar entries are written with the `tar` crate's `unpack_in`, which also
//! refuses to write through a link that leads outside.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use crate::error::{EmberError, Result};

/// Unpacks `archive`, whose file name is `name` (its extension says how), into `dest`, which
/// is created. Refuses an entry that would land outside `dest`, naming the archive and entry.
pub fn unpack(archive: &Path, name: &str, dest: &Path) -> Result<()> {
    let lower = name.to_ascii_lowercase();
    let io = |path: &Path, e: std::io::Error| EmberError::io(path, e);
    if lower.ends_with(".zip") || lower.ends_with(".jar") {
        std::fs::create_dir_all(dest).map_err(|e| io(dest, e))?;
        unzip(archive, name, dest)
    } else if lower.ends_with(".tar.gz") || lower.ends_with(".tgz") {
        std::fs::create_dir_all(dest).map_err(|e| io(dest, e))?;
        let file = File::open(archive).map_err(|e| io(archive, e))?;
        untar(
            flate2::read::GzDecoder::new(BufReader::new(file)),
            name,
            dest,
        )
    } else if lower.ends_with(".tar") {
        std::fs::create_dir_all(dest).map_err(|e| io(dest, e))?;
        let file = File::open(archive).map_err(|e| io(archive, e))?;
        untar(BufReader::new(file), name, dest)
    } else {
        tracing::warn!(
            "Cannot unpack {}, just copying it to {}.",
            archive.display(),
            dest.display()
        );
        std::fs::copy(archive, dest)
            .map(drop)
            .map_err(|e| io(dest, e))
    }
}

fn outside(name: &str, entry: &str, dest: &Path) -> EmberError {
    EmberError::UnsafeArchiveEntry {
        archive: name.to_string(),
        entry: entry.to_string(),
        reason: format!(
            "expanding it would create a file outside of {}",
            dest.display()
        ),
    }
}

fn corrupt(name: &str, reason: impl std::fmt::Display) -> EmberError {
    EmberError::Archive {
        archive: name.to_string(),
        reason: reason.to_string(),
    }
}

/// The checked path of entry `entry` below `dest`.
fn entry_path(name: &str, entry: &str, dest: &Path) -> Result<PathBuf> {
    let rel = Path::new(entry);
    if !super::is_plain_relative(rel) {
        return Err(outside(name, entry, dest));
    }
    Ok(dest.join(rel))
}

/// Refuses a link target that is absolute or climbs with `..`.
fn check_link(name: &str, entry: &str, target: &Path, dest: &Path) -> Result<()> {
    if super::is_plain_relative(target) {
        return Ok(());
    }
    Err(EmberError::UnsafeArchiveEntry {
        archive: name.to_string(),
        entry: entry.to_string(),
        reason: format!(
            "it links to {}, which may lead outside of {}",
            target.display(),
            dest.display()
        ),
    })
}

fn unzip(archive: &Path, name: &str, dest: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let file = File::open(archive).map_err(|e| EmberError::io(archive, e))?;
    let mut zip = zip::ZipArchive::new(BufReader::new(file)).map_err(|e| corrupt(name, e))?;
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(|e| corrupt(name, e))?;
        let entry_name = entry.name().to_string();
        let path = entry_path(name, &entry_name, dest)?;
        if entry.is_dir() {
            std::fs::create_dir_all(&path).map_err(|e| EmberError::io(&path, e))?;
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| EmberError::io(parent, e))?;
        }
        if entry.is_symlink() {
            let mut target = String::new();
            entry
                .read_to_string(&mut target)
                .map_err(|e| corrupt(name, e))?;
            check_link(name, &entry_name, Path::new(&target), dest)?;
            super::remove_path(&path).map_err(|e| EmberError::io(&path, e))?;
            std::os::unix::fs::symlink(&target, &path).map_err(|e| EmberError::io(&path, e))?;
            continue;
        }
        let mut out = File::create(&path).map_err(|e| EmberError::io(&path, e))?;
        std::io::copy(&mut entry, &mut out)
            .map_err(|e| corrupt(name, format!("{entry_name}: {e}")))?;
        if let Some(mode) = entry.unix_mode() {
            // Keep the permission bits (an executable script stays one), never set-id bits.
            let perms = std::fs::Permissions::from_mode(mode & 0o777);
            std::fs::set_permissions(&path, perms).map_err(|e| EmberError::io(&path, e))?;
        }
    }
    Ok(())
}

fn untar(reader: impl Read, name: &str, dest: &Path) -> Result<()> {
    use tar::EntryType;
    let mut tar = tar::Archive::new(reader);
    tar.set_preserve_permissions(false);
    tar.set_overwrite(true);
    let entries = tar.entries().map_err(|e| corrupt(name, e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| corrupt(name, e))?;
        let path = entry.path().map_err(|e| corrupt(name, e))?.into_owned();
        let entry_name = path.display().to_string();
        if path.components().all(|c| c == std::path::Component::CurDir) {
            // "./": the archive's root, which is `dest`.
            continue;
        }
        entry_path(name, &entry_name, dest)?;
        match entry.header().entry_type() {
            // A pax header for the whole archive: nothing to write.
            EntryType::XGlobalHeader => continue,
            EntryType::Regular
            | EntryType::Directory
            | EntryType::Continuous
            | EntryType::GNUSparse => {}
            EntryType::Symlink | EntryType::Link => {
                let target = entry
                    .link_name()
                    .map_err(|e| corrupt(name, e))?
                    .ok_or_else(|| corrupt(name, format!("link {entry_name} has no target")))?
                    .into_owned();
                check_link(name, &entry_name, &target, dest)?;
            }
            other => {
                return Err(EmberError::UnsafeArchiveEntry {
                    archive: name.to_string(),
                    entry: entry_name,
                    reason: format!("entries of type {other:?} are not unpacked"),
                })
            }
        }
        // `unpack_in` also refuses to write through a link that leads outside `dest`.
        let written = entry
            .unpack_in(dest)
            .map_err(|e| corrupt(name, format!("{entry_name}: {e}")))?;
        if !written {
            return Err(outside(name, &entry_name, dest));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn tar_bytes(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            // `set_path` refuses `..`, as it should for honest archives: write the raw name.
            let raw = &mut h.as_old_mut().name;
            raw[..path.len()].copy_from_slice(path.as_bytes());
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn zip_bytes(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        for (path, data) in entries {
            w.start_file(*path, opts).unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn every_format_unpacks_into_the_directory() {
        let d = tempfile::tempdir().unwrap();
        let files: &[(&str, &[u8])] = &[("a.txt", b"alpha"), ("sub/b.txt", b"beta")];
        let tar = tar_bytes(files);
        for (name, bytes) in [
            ("x.tar", tar.clone()),
            ("x.tar.gz", gz(&tar)),
            ("x.TGZ", gz(&tar)),
            ("x.zip", zip_bytes(files)),
        ] {
            let archive = d.path().join(name);
            std::fs::write(&archive, bytes).unwrap();
            let dest = d.path().join(format!("out-{name}"));
            unpack(&archive, name, &dest).unwrap();
            assert_eq!(
                std::fs::read(dest.join("a.txt")).unwrap(),
                b"alpha",
                "{name}"
            );
            assert_eq!(
                std::fs::read(dest.join("sub/b.txt")).unwrap(),
                b"beta",
                "{name}"
            );
        }
    }

    #[test]
    fn other_names_are_copied_as_they_are() {
        let d = tempfile::tempdir().unwrap();
        let archive = d.path().join("model.bin");
        std::fs::write(&archive, b"weights").unwrap();
        let dest = d.path().join("model");
        unpack(&archive, "model.bin", &dest).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"weights");
    }

    #[test]
    fn entries_that_escape_are_refused_naming_the_archive_and_entry() {
        let d = tempfile::tempdir().unwrap();
        let evil: &[(&str, &[u8])] = &[("ok.txt", b"fine"), ("../escaped.txt", b"gotcha")];
        let absolute: &[(&str, &[u8])] = &[("/tmp/ember-absolute-entry", b"gotcha")];
        for (name, bytes) in [
            ("evil.tar", tar_bytes(evil)),
            ("evil.tgz", gz(&tar_bytes(evil))),
            ("evil.zip", zip_bytes(evil)),
            ("abs.zip", zip_bytes(absolute)),
        ] {
            let archive = d.path().join(name);
            std::fs::write(&archive, bytes).unwrap();
            let dest = d.path().join("out").join(name);
            let err = unpack(&archive, name, &dest).unwrap_err();
            assert!(
                matches!(&err, EmberError::UnsafeArchiveEntry { archive, entry, .. }
                    if archive == name && entry.contains("escaped.txt") || entry.starts_with('/')),
                "{name}: {err}"
            );
            let message = err.to_string();
            assert!(message.contains(name), "{message}");
            assert!(!d.path().join("out/escaped.txt").exists());
        }
        assert!(!Path::new("/tmp/ember-absolute-entry").exists());
    }

    #[test]
    fn links_that_climb_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_link_name("../../etc").unwrap();
        h.set_cksum();
        b.append_data(&mut h, "etc", std::io::empty()).unwrap();
        let archive = d.path().join("links.tar");
        std::fs::write(&archive, b.into_inner().unwrap()).unwrap();
        let err = unpack(&archive, "links.tar", &d.path().join("out")).unwrap_err();
        assert!(err.to_string().contains("links to ../../etc"), "{err}");
    }

    #[test]
    fn a_corrupt_archive_is_an_error_not_a_panic() {
        let d = tempfile::tempdir().unwrap();
        for name in ["bad.zip", "bad.tar.gz", "bad.tar"] {
            let archive = d.path().join(name);
            std::fs::write(&archive, vec![0x5a; 3000]).unwrap();
            assert!(
                unpack(&archive, name, &d.path().join("o")).is_err(),
                "{name}"
            );
        }
    }
}
