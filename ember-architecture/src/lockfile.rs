//! The packages of a `Cargo.lock` and their dependencies.
//!
//! The format (versions 3 and 4) is a sequence of `[[package]]` tables with `name`, `version` and
//! a `dependencies` array whose entries are `"name"`, `"name version"` or
//! `"name version (source)"` (the longer forms only when several versions of `name` are locked).

use std::collections::{BTreeMap, BTreeSet};

/// One locked package.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Package {
    /// The package's name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// Its dependencies as written in the lock file (`name` or `name version …`).
    pub dependencies: Vec<String>,
}

/// The packages of a lock file.
#[derive(Clone, Debug, Default)]
pub struct Lockfile {
    packages: Vec<Package>,
}

impl Lockfile {
    /// Parses the text of a `Cargo.lock`.
    pub fn parse(text: &str) -> Result<Lockfile, String> {
        let mut packages = Vec::new();
        let mut current: Option<Package> = None;
        let mut in_deps = false;
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line == "[[package]]" {
                packages.extend(current.take());
                current = Some(Package {
                    name: String::new(),
                    version: String::new(),
                    dependencies: Vec::new(),
                });
                in_deps = false;
                continue;
            }
            if line.starts_with('[') {
                // Another table ([metadata], [[patch.unused]]): not a package.
                packages.extend(current.take());
                in_deps = false;
                continue;
            }
            let Some(pkg) = current.as_mut() else {
                continue;
            };
            if in_deps {
                if line == "]" {
                    in_deps = false;
                } else if let Some(dep) = quoted(line.trim_end_matches(',')) {
                    pkg.dependencies.push(dep);
                } else if !line.is_empty() {
                    return Err(format!(
                        "Cargo.lock line {}: unexpected {line:?} in a dependencies array",
                        i + 1
                    ));
                }
                continue;
            }
            if let Some(v) = line.strip_prefix("name = ") {
                pkg.name =
                    quoted(v).ok_or_else(|| format!("Cargo.lock line {}: bad name", i + 1))?;
            } else if let Some(v) = line.strip_prefix("version = ") {
                pkg.version =
                    quoted(v).ok_or_else(|| format!("Cargo.lock line {}: bad version", i + 1))?;
            } else if let Some(v) = line.strip_prefix("dependencies = [") {
                // Either an array over several lines, or one on this line.
                match v.strip_suffix(']') {
                    Some(inline) => pkg
                        .dependencies
                        .extend(inline.split(',').filter_map(|d| quoted(d.trim()))),
                    None => in_deps = true,
                }
            }
        }
        packages.extend(current.take());
        if let Some(p) = packages.iter().find(|p| p.name.is_empty()) {
            return Err(format!("Cargo.lock has a package without a name: {p:?}"));
        }
        Ok(Lockfile { packages })
    }

    /// The locked packages.
    pub fn packages(&self) -> &[Package] {
        &self.packages
    }

    /// The package called `name` (the first one, when several versions are locked).
    pub fn package(&self, name: &str) -> Option<&Package> {
        self.packages.iter().find(|p| p.name == name)
    }

    /// The package a dependency entry names: `name`, or `name version …` for one of several.
    fn resolve(&self, entry: &str) -> Option<&Package> {
        let mut parts = entry.split_whitespace();
        let name = parts.next()?;
        match parts.next() {
            Some(version) => self
                .packages
                .iter()
                .find(|p| p.name == name && p.version == version),
            None => self.package(name),
        }
    }

    /// The names of the direct dependencies of `name`.
    pub fn direct_dependencies(&self, name: &str) -> BTreeSet<String> {
        self.package(name)
            .map(|p| {
                p.dependencies
                    .iter()
                    .filter_map(|d| d.split_whitespace().next())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The names of every package `name` depends on, directly or not (not `name` itself).
    pub fn closure(&self, name: &str) -> BTreeSet<String> {
        let mut seen: BTreeMap<(String, String), ()> = BTreeMap::new();
        let mut todo: Vec<&Package> = self.package(name).into_iter().collect();
        let mut names = BTreeSet::new();
        while let Some(p) = todo.pop() {
            for entry in &p.dependencies {
                let Some(dep) = self.resolve(entry) else {
                    continue;
                };
                if seen
                    .insert((dep.name.clone(), dep.version.clone()), ())
                    .is_none()
                {
                    names.insert(dep.name.clone());
                    todo.push(dep);
                }
            }
        }
        names
    }
}

/// The content of a `"…"` string (lock files never escape anything in these fields).
fn quoted(s: &str) -> Option<String> {
    let s = s.trim();
    s.strip_prefix('"')?.strip_suffix('"').map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCK: &str = r#"
version = 4

[[package]]
name = "app"
version = "0.1.0"
dependencies = [
 "core",
 "rand 0.9.2",
]

[[package]]
name = "core"
version = "0.1.0"
dependencies = ["leaf"]

[[package]]
name = "leaf"
version = "1.0.0"

[[package]]
name = "rand"
version = "0.8.5"
dependencies = [
 "old-dep",
]

[[package]]
name = "rand"
version = "0.9.2"
dependencies = [
 "rand_core 0.9.3",
]

[[package]]
name = "rand_core"
version = "0.9.3"

[[package]]
name = "old-dep"
version = "1.0.0"
"#;

    #[test]
    fn closures_follow_the_locked_versions() {
        let lock = Lockfile::parse(LOCK).unwrap();
        assert_eq!(lock.packages().len(), 7);
        assert_eq!(
            lock.direct_dependencies("app"),
            ["core", "rand"].map(String::from).into()
        );
        // Through rand 0.9.2, never the other rand's dependency.
        assert_eq!(
            lock.closure("app"),
            ["core", "leaf", "rand", "rand_core"]
                .map(String::from)
                .into()
        );
        assert_eq!(lock.closure("leaf"), BTreeSet::new());
    }

    #[test]
    fn garbage_in_a_dependencies_array_is_an_error() {
        let bad = "[[package]]\nname = \"a\"\nversion = \"1\"\ndependencies = [\n what\n]\n";
        assert!(Lockfile::parse(bad).unwrap_err().contains("line 5"));
    }
}
