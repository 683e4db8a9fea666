//! The FAIR scheduler's pools from `ember.scheduler.allocation.file`, in Spark's
//! `fairscheduler.xml` format (Spark's `FairSchedulableBuilder` reading its file). The scheduler
//! core builds its pool tree from the parsed [`PoolConfig`]s and never sees the file.

use std::path::Path;

use tracing::info;

use ember_scheduler::pool::{PoolConfig, SchedulingMode};

use crate::conf::SCHEDULER_ALLOCATION_FILE;
use crate::error::{EmberError, Result};

fn bad_file(path: &str, reason: String) -> EmberError {
    EmberError::Config {
        key: SCHEDULER_ALLOCATION_FILE.to_string(),
        value: path.to_string(),
        reason,
    }
}

/// Reads pools from an allocation file in Spark's `fairscheduler.xml` format.
///
/// A file that cannot be read is an [`EmberError::Io`] naming it; a file that is not valid XML
/// or has an invalid pool is an [`EmberError::Config`] whose value is the path.
pub fn load_allocation_file(path: impl AsRef<Path>) -> Result<Vec<PoolConfig>> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|e| EmberError::io(path, e))?;
    let pools = parse_allocations(&text, &path.display().to_string())?;
    info!("Creating Fair Scheduler pools from {}", path.display());
    Ok(pools)
}

/// Parses the text of an allocation file; `path` only names the file in errors.
///
/// ```xml
/// <allocations>
///   <pool name="production">
///     <schedulingMode>FAIR</schedulingMode><weight>2</weight><minShare>1</minShare>
///   </pool>
/// </allocations>
/// ```
///
/// Missing or blank elements take the defaults (FIFO, 1, 0). Unlike Spark, which logs a warning
/// and falls back to the default, a value that is present but invalid is an error: a typo in a
/// pool's weight would otherwise silently change how the cluster is shared.
pub fn parse_allocations(xml: &str, path: &str) -> Result<Vec<PoolConfig>> {
    let doc = roxmltree::Document::parse(xml)
        .map_err(|e| bad_file(path, format!("not valid XML: {e}")))?;
    let mut pools: Vec<PoolConfig> = Vec::new();
    let mut names = std::collections::HashSet::new();
    // Spark looks for `pool` elements anywhere in the document (`xml \\ "pool"`).
    for node in doc.descendants().filter(|n| n.has_tag_name("pool")) {
        let name = node.attribute("name").map(str::trim).unwrap_or("");
        if name.is_empty() {
            let pos = doc.text_pos_at(node.range().start);
            return Err(bad_file(
                path,
                format!(
                    "the <pool> element at line {} has no name attribute",
                    pos.row
                ),
            ));
        }
        if !names.insert(name) {
            return Err(bad_file(
                path,
                format!("pool {name:?} is defined more than once"),
            ));
        }
        let mut pool = PoolConfig::new(name);
        if let Some(text) = child_text(node, "schedulingMode") {
            pool.mode = SchedulingMode::from_name(&text).ok_or_else(|| {
                bad_file(
                    path,
                    format!("pool {name:?}: schedulingMode {text:?} is not FIFO or FAIR"),
                )
            })?;
        }
        if let Some(text) = child_text(node, "weight") {
            pool.weight = parse_count(&text).ok_or_else(|| {
                bad_file(
                    path,
                    format!("pool {name:?}: weight {text:?} is not a non-negative whole number"),
                )
            })?;
        }
        if let Some(text) = child_text(node, "minShare") {
            pool.min_share = parse_count(&text).ok_or_else(|| {
                bad_file(
                    path,
                    format!("pool {name:?}: minShare {text:?} is not a non-negative whole number"),
                )
            })?;
        }
        pools.push(pool);
    }
    Ok(pools)
}

/// The trimmed text of the first child element `tag` of `node`; `None` when absent or blank.
fn child_text(node: roxmltree::Node<'_, '_>, tag: &str) -> Option<String> {
    let child = node.children().find(|c| c.has_tag_name(tag))?;
    let text: String = child
        .descendants()
        .filter(|d| d.is_text())
        .filter_map(|d| d.text())
        .collect();
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

fn parse_count(text: &str) -> Option<u32> {
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ember_scheduler::pool::RootPool;

    #[test]
    fn parses_allocation_file() {
        let xml = r#"<?xml version="1.0"?>
            <allocations>
              <pool name="production">
                <schedulingMode>fair</schedulingMode>
                <weight> 2 </weight>
                <minShare>1</minShare>
              </pool>
              <pool name="test"><weight></weight></pool>
            </allocations>"#;
        let pools = parse_allocations(xml, "/etc/fair.xml").unwrap();
        assert_eq!(
            pools,
            vec![
                PoolConfig {
                    name: "production".into(),
                    mode: SchedulingMode::Fair,
                    weight: 2,
                    min_share: 1
                },
                PoolConfig::new("test"),
            ]
        );
        let root = RootPool::new(SchedulingMode::Fair, &pools);
        let names: Vec<&str> = root
            .pools()
            .iter()
            .map(|p| p.config().name.as_str())
            .collect();
        assert_eq!(names, ["production", "test", "default"]);
    }

    #[test]
    fn allocation_file_errors_name_the_file() {
        let check = |xml: &str, needle: &str| {
            let err = parse_allocations(xml, "/etc/fair.xml").unwrap_err();
            match &err {
                EmberError::Config { key, value, reason } => {
                    assert_eq!(key, "ember.scheduler.allocation.file");
                    assert_eq!(value, "/etc/fair.xml");
                    assert!(
                        reason.contains(needle),
                        "{reason:?} should mention {needle:?}"
                    );
                }
                other => panic!("unexpected error {other:?}"),
            }
        };
        check("<allocations><pool name='a'>", "not valid XML");
        check(
            "<allocations><pool><weight>1</weight></pool></allocations>",
            "no name attribute",
        );
        check(
            "<allocations><pool name='a'><weight>two</weight></pool></allocations>",
            "weight \"two\"",
        );
        check(
            "<allocations><pool name='a'><minShare>-1</minShare></pool></allocations>",
            "minShare \"-1\"",
        );
        check(
            "<allocations><pool \
             name='a'><schedulingMode>NONE</schedulingMode></pool></allocations>",
            "NONE",
        );
        check(
            "<allocations><pool name='a'/><pool name='a'/></allocations>",
            "more than once",
        );
    }

    #[test]
    fn loads_allocation_file_from_disk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fairscheduler.xml");
        std::fs::write(
            &path,
            "<allocations><pool name='etl'><weight>3</weight></pool></allocations>",
        )
        .unwrap();
        let pools = load_allocation_file(&path).unwrap();
        assert_eq!(pools[0].weight, 3);
        let missing = dir.path().join("missing.xml");
        match load_allocation_file(&missing).unwrap_err() {
            EmberError::Io { path, .. } => assert!(path.ends_with("missing.xml")),
            other => panic!("unexpected error {other:?}"),
        }
    }
}
