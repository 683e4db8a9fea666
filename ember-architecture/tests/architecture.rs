//! The architecture of the workspace, checked (ARCHITECTURE.md, "Crates"): which crate may
//! depend on which, what the scheduler core and the network layer must never pull in, and that
//! no crate's top-level modules depend on each other in a cycle.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use ember_architecture::lockfile::Lockfile;
use ember_architecture::modules::{cycles, describe, module_graph, read_sources};
use ember_architecture::source::{strip, tokenize};

/// The workspace's crates and the Ember crates each may depend on (directly; the closure
/// follows, since the allowed graph is itself a DAG).
const CRATES: [(&str, &[&str]); 7] = [
    ("ember-common", &[]),
    ("ember-scheduler", &["ember-common"]),
    ("ember-net", &["ember-common"]),
    ("ember-macros", &[]),
    (
        "ember",
        &[
            "ember-common",
            "ember-scheduler",
            "ember-net",
            "ember-macros",
        ],
    ),
    ("ember-bench", &["ember"]),
    ("ember-architecture", &[]),
];

/// What the scheduler core may depend on directly: ember-common and small pure crates.
const SCHEDULER_MAY_USE: [&str; 6] = [
    "ember-common",
    "serde",
    "thiserror",
    "tracing",
    "rand",
    "rustc-hash",
];

/// Crates the scheduler core must not reach, even through another crate: async runtimes and
/// sockets, channels, locks it does not need, XML, serialization formats, compression.
const SCHEDULER_MUST_NOT_REACH: [&str; 8] = [
    "tokio",
    "mio",
    "socket2",
    "crossbeam",
    "roxmltree",
    "postcard",
    "lz4",
    "parking_lot",
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace holds this crate")
        .to_path_buf()
}

fn lockfile() -> Lockfile {
    let path = workspace().join("Cargo.lock");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    Lockfile::parse(&text).unwrap_or_else(|e| panic!("{e}"))
}

fn is_ember(name: &str) -> bool {
    CRATES.iter().any(|(c, _)| *c == name)
}

#[test]
fn every_crate_of_the_workspace_is_known_here() {
    let manifest =
        std::fs::read_to_string(workspace().join("Cargo.toml")).expect("the workspace manifest");
    let members = manifest
        .split("members = [")
        .nth(1)
        .and_then(|s| s.split(']').next())
        .expect("a members list");
    let members: BTreeSet<&str> = members
        .split(',')
        .map(|m| m.trim().trim_matches('"'))
        .filter(|m| !m.is_empty())
        .collect();
    let known: BTreeSet<&str> = CRATES.iter().map(|(c, _)| *c).collect();
    assert_eq!(
        members, known,
        "a new crate needs its place in CRATES (and in ARCHITECTURE.md)"
    );
}

#[test]
fn crates_depend_only_on_the_crates_below_them() {
    let lock = lockfile();
    for (name, allowed) in CRATES {
        assert!(lock.package(name).is_some(), "{name} is not in Cargo.lock");
        // A crate's dev-dependency on itself only turns on its `testing` feature.
        let ember_deps: BTreeSet<String> = lock
            .direct_dependencies(name)
            .into_iter()
            .filter(|d| is_ember(d) && d != name)
            .collect();
        let allowed: BTreeSet<String> = allowed.iter().map(|s| s.to_string()).collect();
        assert!(
            ember_deps.is_subset(&allowed),
            "{name} depends on {:?}; it may depend on {allowed:?} only",
            ember_deps.difference(&allowed).collect::<Vec<_>>()
        );
    }
}

#[test]
fn the_scheduler_core_reaches_no_runtime_socket_channel_or_codec() {
    let lock = lockfile();
    let direct = lock.direct_dependencies("ember-scheduler");
    let extra: Vec<&String> = direct
        .iter()
        .filter(|d| !SCHEDULER_MAY_USE.contains(&d.as_str()))
        .collect();
    assert!(
        extra.is_empty(),
        "ember-scheduler depends on {extra:?}: only ember-common and small pure crates are allowed"
    );
    let closure = lock.closure("ember-scheduler");
    let banned: Vec<&String> = closure
        .iter()
        .filter(|c| {
            SCHEDULER_MUST_NOT_REACH.iter().any(|b| c.starts_with(b))
                || (is_ember(c) && c.as_str() != "ember-common")
        })
        .collect();
    assert!(
        banned.is_empty(),
        "ember-scheduler reaches {banned:?} (its closure: {closure:?})"
    );
}

#[test]
fn the_network_layer_and_the_common_types_stay_below_the_engine() {
    let lock = lockfile();
    for (name, forbidden) in [
        ("ember-net", &["ember", "ember-scheduler"][..]),
        (
            "ember-common",
            &["ember", "ember-scheduler", "ember-net"][..],
        ),
    ] {
        let closure = lock.closure(name);
        let reached: Vec<&&str> = forbidden.iter().filter(|f| closure.contains(**f)).collect();
        assert!(reached.is_empty(), "{name} reaches {reached:?}");
    }
    let common = lock.direct_dependencies("ember-common");
    assert!(
        common.iter().all(|d| d == "serde"),
        "ember-common should stay plain data: it depends on {common:?}"
    );
}

#[test]
fn the_scheduler_core_uses_no_thread_socket_file_system_clock_or_global_rng() {
    // Names that would let the core decide by something other than its inputs.
    const FORBIDDEN: [&str; 10] = [
        "std::net",
        "std::fs",
        "std::thread",
        "SystemTime",
        "Instant",
        "thread_rng",
        "rand::rng",
        "from_os_rng",
        "OsRng",
        "from_entropy",
    ];
    let files =
        read_sources(&workspace().join("ember-scheduler")).expect("the scheduler's sources");
    let mut found = Vec::new();
    for file in &files {
        let code = strip(&file.text);
        let tokens = tokenize(&code);
        for (i, t) in tokens.iter().enumerate() {
            // Rebuild `a::b` from the tokens so that spacing does not matter.
            let two = match (tokens.get(i + 1), tokens.get(i + 2)) {
                (Some(sep), Some(next)) if sep.text == "::" => format!("{}::{}", t.text, next.text),
                _ => String::new(),
            };
            for f in FORBIDDEN {
                if t.text == f || two == f {
                    found.push(format!("{}:{}: {f}", file.path, t.line));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "the scheduler core must take time, randomness and I/O from its callers:\n{}",
        found.join("\n")
    );
}

#[test]
fn no_crate_has_a_cycle_between_its_top_level_modules() {
    let mut problems = Vec::new();
    for (name, _) in CRATES {
        let files = read_sources(&workspace().join(name))
            .unwrap_or_else(|e| panic!("reading {name}'s sources: {e}"));
        let graph = module_graph(&files);
        assert!(
            graph.edges.len() > 1 || name == "ember-architecture" || files.len() <= 1,
            "{name}: no modules found"
        );
        problems.extend(graph.errors.iter().map(|e| format!("{name}: {e}")));
        problems.extend(
            cycles(&graph)
                .iter()
                .map(|c| format!("{name}: module cycle {}", describe(c))),
        );
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn the_module_graph_of_ember_is_really_read() {
    // Guards the check itself: a few dependencies that must be seen, so that a parser that
    // silently finds nothing cannot pass the test above.
    let graph = module_graph(&read_sources(&workspace().join("ember")).expect("ember's sources"));
    for (from, to) in [
        ("rdd", "context"),
        ("context", "scheduler"),
        ("shuffle", "task"),
        ("task", "storage"),
        ("storage", "memory"),
    ] {
        assert!(
            graph.edges.get(from).is_some_and(|e| e.contains_key(to)),
            "expected {from} → {to} in {:?}",
            graph.edges.get(from)
        );
    }
}

/// The longest line a source file may have; `cargo fmt` keeps code within it (`rustfmt.toml`),
/// and this catches what it cannot wrap: comments and string literals.
const MAX_COLUMNS: usize = 100;

#[test]
fn no_source_line_is_longer_than_100_columns() {
    let mut long = Vec::new();
    let mut stack = vec![workspace()];
    while let Some(dir) = stack.pop() {
        let entries =
            std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
        for entry in entries {
            let entry = entry.unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
            let path = entry.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if path.is_dir() {
                if !name.starts_with('.') && name != "target" {
                    stack.push(path);
                }
            } else if name.ends_with(".rs") {
                let text = std::fs::read_to_string(&path)
                    .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
                for (i, line) in text.lines().enumerate() {
                    let columns = line.chars().count();
                    if columns > MAX_COLUMNS {
                        long.push(format!("{}:{}: {columns} columns", path.display(), i + 1));
                    }
                }
            }
        }
    }
    assert!(
        long.is_empty(),
        "lines longer than {MAX_COLUMNS} columns:\n{}",
        long.join("\n")
    );
}
