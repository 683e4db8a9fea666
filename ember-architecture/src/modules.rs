//! The graph of a crate's top-level modules and its cycles.
//!
//! A crate's top-level modules are the `mod` items of its root file (`lib.rs` or `main.rs`); a
//! file belongs to the top-level module its path starts with (`src/a.rs`, `src/a/mod.rs`,
//! `src/a/b.rs` are all in `a`), and an inline `mod x { … }` of the root file is a top-level
//! module of its own. Module `b` depends on module `a` when code in `b` (not a comment or a
//! string) names a path that resolves into `a`:
//!
//! - `crate::a…`, `$crate::a…`, and each entry of `crate::{a, c::d}`;
//! - `super::…` that climbs out of `b` to the crate root, then names `a` (or a group);
//! - `crate::X` or `super::X` where `X` is re-exported by the root file from `a` (`pub use a::X;`),
//!   which is the same dependency on `a` under another name.
//!
//! Code of the root file outside inline modules is the pseudo-module [`ROOT`]. A glob import of
//! the crate root (`use crate::*`, or `use super::*` that reaches it) in a module's own file would
//! hide what the module depends on, so it is reported as an error; in the root file (its
//! `mod tests { use super::*; }`) it is a dependency on [`ROOT`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::source::{strip, tokenize, Token};

/// The name of the crate root's own code in the graph.
pub const ROOT: &str = "(crate root)";

/// Where a dependency was seen: a file and a line.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Site {
    /// The file, relative to the crate's directory.
    pub file: String,
    /// 1-based line.
    pub line: usize,
}

/// The module graph of one crate: for each top-level module, the modules it depends on, each
/// with the first place the dependency was seen.
#[derive(Clone, Debug, Default)]
pub struct ModuleGraph {
    /// Module → (module it depends on → first site).
    pub edges: BTreeMap<String, BTreeMap<String, Site>>,
    /// Problems that make the graph unreliable (glob imports of the root).
    pub errors: Vec<String>,
}

/// One source file: its path relative to the crate (`src/a/b.rs`) and its text.
pub struct SourceFile {
    /// Path relative to the crate's directory, with `/` separators.
    pub path: String,
    /// The file's content.
    pub text: String,
}

/// Reads every `.rs` file under `crate_dir/src`.
pub fn read_sources(crate_dir: &Path) -> std::io::Result<Vec<SourceFile>> {
    let mut files = Vec::new();
    let mut todo = vec![crate_dir.join("src")];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                todo.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path)?;
                let rel: PathBuf = path
                    .strip_prefix(crate_dir)
                    .map(Path::to_path_buf)
                    .unwrap_or(path);
                files.push(SourceFile {
                    path: rel.to_string_lossy().replace('\\', "/"),
                    text,
                });
            }
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

/// The module path of a file below `src/`: `src/a/b.rs` → `[a, b]`, `src/a/mod.rs` → `[a]`, the
/// root file → `[]`.
fn module_path(path: &str) -> Vec<String> {
    let rel = path.strip_prefix("src/").unwrap_or(path);
    let rel = rel.strip_suffix(".rs").unwrap_or(rel);
    let mut parts: Vec<String> = rel.split('/').map(str::to_string).collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    if parts.len() == 1 && (parts[0] == "lib" || parts[0] == "main") {
        parts.clear();
    }
    parts
}

/// The top-level modules and root re-exports declared by the root file's tokens.
struct Root {
    modules: BTreeSet<String>,
    /// Name re-exported at the root → the top-level module it comes from.
    reexports: BTreeMap<String, String>,
}

fn read_root(tokens: &[Token]) -> Root {
    let mut modules = BTreeSet::new();
    let mut reexports = BTreeMap::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < tokens.len() {
        match tokens[i].text.as_str() {
            "{" => depth += 1,
            "}" => depth = depth.saturating_sub(1),
            "mod" if depth == 0 => {
                if let Some(name) = tokens.get(i + 1) {
                    modules.insert(name.text.clone());
                }
            }
            // `internal!(a, b);`: `ember`'s declaration of modules that only its `testing`
            // feature makes public.
            "internal" if depth == 0 && tokens.get(i + 1).is_some_and(|t| t.text == "!") => {
                let end = tokens[i..]
                    .iter()
                    .position(|t| t.text == ")")
                    .map_or(tokens.len(), |p| i + p);
                for t in &tokens[(i + 3).min(end)..end] {
                    if t.text != "," {
                        modules.insert(t.text.clone());
                    }
                }
                i = end;
            }
            "use" if depth == 0 => {
                // `use a::b::{C, D};` at the root: C and D are names of module `a`.
                let end = tokens[i..]
                    .iter()
                    .position(|t| t.text == ";")
                    .map_or(tokens.len(), |p| i + p);
                let mut path = &tokens[i + 1..end];
                if path
                    .first()
                    .is_some_and(|t| t.text == "crate" || t.text == "self")
                    && path.get(1).is_some_and(|t| t.text == "::")
                {
                    path = &path[2..];
                }
                if let Some(module) = path.first() {
                    for name in imported_names(path) {
                        reexports.insert(name, module.text.clone());
                    }
                }
                i = end;
            }
            _ => {}
        }
        i += 1;
    }
    reexports.retain(|_, m| modules.contains(m));
    Root { modules, reexports }
}

/// The names a `use` path brings into scope (its last segments, or `x as y`'s `y`).
fn imported_names(path: &[Token]) -> Vec<String> {
    let mut names = Vec::new();
    let mut i = 0;
    while i < path.len() {
        let t = &path[i].text;
        let is_ident = t
            .chars()
            .next()
            .is_some_and(|c| c.is_alphanumeric() || c == '_');
        let followed_by_path = path.get(i + 1).is_some_and(|n| n.text == "::");
        if is_ident && !followed_by_path && t != "as" && t != "self" {
            names.push(t.clone());
        }
        i += 1;
    }
    names
}

/// Builds the module graph of the crate whose sources are `files` (paths relative to the crate
/// directory; the root is `src/lib.rs`, else `src/main.rs`).
pub fn module_graph(files: &[SourceFile]) -> ModuleGraph {
    let mut graph = ModuleGraph::default();
    let root_file = files
        .iter()
        .find(|f| f.path == "src/lib.rs")
        .or_else(|| files.iter().find(|f| f.path == "src/main.rs"));
    let Some(root_file) = root_file else {
        graph.errors.push("no src/lib.rs or src/main.rs".into());
        return graph;
    };
    let root = read_root(&tokenize(&strip(&root_file.text)));
    for m in &root.modules {
        graph.edges.entry(m.clone()).or_default();
    }
    for file in files {
        let base = module_path(&file.path);
        // Binaries of a package (src/bin/*) and files of another root are not this crate's modules.
        if base.first().is_some_and(|m| !root.modules.contains(m)) && !base.is_empty() {
            continue;
        }
        if !base.is_empty() || file.path == root_file.path {
            scan_file(file, &base, &root, &mut graph);
        }
    }
    graph
}

/// Records the dependencies of one file's code.
fn scan_file(file: &SourceFile, base: &[String], root: &Root, graph: &mut ModuleGraph) {
    let tokens = tokenize(&strip(&file.text));
    // Inline modules open at this point: (name, brace depth inside them).
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut pending_mod: Option<String> = None;
    let mut i = 0;
    while i < tokens.len() {
        let t = tokens[i].text.as_str();
        match t {
            "mod" => {
                pending_mod = tokens.get(i + 1).map(|n| n.text.clone());
                i += 1;
                continue;
            }
            "{" => {
                depth += 1;
                if let Some(name) = pending_mod.take() {
                    inline.push((name, depth));
                }
            }
            ";" => pending_mod = None,
            "}" => {
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
                depth = depth.saturating_sub(1);
            }
            _ => {}
        }
        let current: Vec<String> = base
            .iter()
            .cloned()
            .chain(inline.iter().map(|(n, _)| n.clone()))
            .collect();
        let Some(from) = current.first().cloned() else {
            // Root code outside any inline module.
            if (t == "crate" || t == "$crate" || t == "super" || t == "self")
                && tokens.get(i + 1).is_some_and(|n| n.text == "::")
            {
                let targets = resolve(&tokens, i, &[], root, file, graph);
                for target in targets {
                    add_edge(graph, ROOT, &target, file, tokens[i].line);
                }
            }
            i += 1;
            continue;
        };
        if (t == "crate" || t == "$crate" || t == "super")
            && tokens.get(i + 1).is_some_and(|n| n.text == "::")
        {
            for target in resolve(&tokens, i, &current, root, file, graph) {
                if target != from {
                    add_edge(graph, &from, &target, file, tokens[i].line);
                }
            }
            // Skip the rest of this path's leading keywords (`super::super::`).
            while tokens.get(i).is_some_and(|t| {
                t.text == "super" || t.text == "crate" || t.text == "$crate" || t.text == "::"
            }) {
                i += 1;
            }
            continue;
        }
        i += 1;
    }
}

fn add_edge(graph: &mut ModuleGraph, from: &str, to: &str, file: &SourceFile, line: usize) {
    graph.edges.entry(to.to_string()).or_default();
    graph
        .edges
        .entry(from.to_string())
        .or_default()
        .entry(to.to_string())
        .or_insert(Site {
            file: file.path.clone(),
            line,
        });
}

/// The top-level modules (or [`ROOT`]) a path starting at `tokens[i]` (`crate`, `$crate` or
/// `super`) resolves into, from module `current`.
fn resolve(
    tokens: &[Token],
    i: usize,
    current: &[String],
    root: &Root,
    file: &SourceFile,
    graph: &mut ModuleGraph,
) -> Vec<String> {
    let mut j = i;
    let mut path: Vec<String> = match tokens[j].text.as_str() {
        "crate" | "$crate" => {
            j += 2;
            Vec::new()
        }
        "self" => {
            j += 2;
            current.to_vec()
        }
        _ => {
            let mut p = current.to_vec();
            while tokens.get(j).is_some_and(|t| t.text == "super")
                && tokens.get(j + 1).is_some_and(|t| t.text == "::")
            {
                p.pop();
                j += 2;
            }
            p
        }
    };
    if !path.is_empty() {
        // Still inside a top-level module: that module, whatever follows.
        return vec![path.remove(0)];
    }
    // At the crate root: the next segment (or each entry of a group) says where.
    let Some(next) = tokens.get(j) else {
        return Vec::new();
    };
    let names: Vec<String> = match next.text.as_str() {
        "{" => group_heads(tokens, j),
        // Code of the root file (its inline `tests` module) may see everything the root does;
        // a module of its own file must say what it uses.
        "*" if module_path(&file.path).is_empty() => vec![ROOT.to_string()],
        "*" => {
            graph.errors.push(format!(
                "{}:{}: glob import of the crate root hides dependencies",
                file.path, next.line
            ));
            Vec::new()
        }
        name => vec![name.to_string()],
    };
    names
        .into_iter()
        .map(|n| {
            if root.modules.contains(&n) {
                n
            } else if let Some(m) = root.reexports.get(&n) {
                m.clone()
            } else {
                ROOT.to_string()
            }
        })
        .collect()
}

/// The first segment of each entry of the `{…}` group opening at `tokens[j]`.
fn group_heads(tokens: &[Token], j: usize) -> Vec<String> {
    let mut heads = Vec::new();
    let mut depth = 0;
    let mut expect_head = true;
    for t in &tokens[j..] {
        match t.text.as_str() {
            "{" => {
                depth += 1;
                if depth > 1 {
                    expect_head = false;
                }
            }
            "}" => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            "," if depth == 1 => expect_head = true,
            text if depth == 1 && expect_head => {
                if text != "self" {
                    heads.push(text.to_string());
                }
                expect_head = false;
            }
            _ => {}
        }
    }
    heads
}

/// The cycles of a graph: each strongly connected component of more than one module, as one
/// concrete cycle `a → b → … → a`, with where each edge was seen.
pub fn cycles(graph: &ModuleGraph) -> Vec<Vec<(String, String, Site)>> {
    let nodes: Vec<&String> = graph.edges.keys().collect();
    let index: BTreeMap<&String, usize> = nodes.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let succ: Vec<Vec<usize>> = nodes
        .iter()
        .map(|n| {
            graph.edges[*n]
                .keys()
                .filter_map(|m| index.get(m).copied())
                .collect()
        })
        .collect();
    let mut out = Vec::new();
    for scc in strongly_connected(&succ) {
        if scc.len() < 2 {
            continue;
        }
        // A shortest way back to the first module, from its first successor in the component.
        let members: BTreeSet<usize> = scc.iter().copied().collect();
        let start = *scc.iter().min().unwrap_or(&0);
        let mut prev: BTreeMap<usize, usize> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([start]);
        let mut found = None;
        'bfs: while let Some(n) = queue.pop_front() {
            for &m in &succ[n] {
                if !members.contains(&m) {
                    continue;
                }
                if m == start {
                    found = Some(n);
                    break 'bfs;
                }
                if let std::collections::btree_map::Entry::Vacant(e) = prev.entry(m) {
                    e.insert(n);
                    queue.push_back(m);
                }
            }
        }
        let Some(last) = found else { continue };
        let mut path = vec![last];
        while let Some(&p) = prev.get(path.last().unwrap_or(&start)) {
            path.push(p);
            if p == start {
                break;
            }
        }
        if path.last() != Some(&start) {
            path.push(start);
        }
        path.reverse();
        path.push(start);
        let cycle = path
            .windows(2)
            .map(|w| {
                let (a, b) = (nodes[w[0]], nodes[w[1]]);
                (a.clone(), b.clone(), graph.edges[a][b].clone())
            })
            .collect();
        out.push(cycle);
    }
    out
}

/// Tarjan's algorithm, iteratively (a deep module graph must not overflow the stack).
fn strongly_connected(succ: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let n = succ.len();
    let (mut index, mut low, mut on_stack) = (vec![usize::MAX; n], vec![0; n], vec![false; n]);
    let (mut next, mut stack, mut out) = (0, Vec::new(), Vec::new());
    for v in 0..n {
        if index[v] != usize::MAX {
            continue;
        }
        let mut work = vec![(v, 0usize)];
        while let Some(&mut (node, ref mut child)) = work.last_mut() {
            if *child == 0 && index[node] == usize::MAX {
                index[node] = next;
                low[node] = next;
                next += 1;
                stack.push(node);
                on_stack[node] = true;
            }
            if let Some(&m) = succ[node].get(*child) {
                *child += 1;
                if index[m] == usize::MAX {
                    work.push((m, 0));
                } else if on_stack[m] {
                    low[node] = low[node].min(index[m]);
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[node]);
            }
            if low[node] == index[node] {
                let mut component = Vec::new();
                while let Some(m) = stack.pop() {
                    on_stack[m] = false;
                    component.push(m);
                    if m == node {
                        break;
                    }
                }
                out.push(component);
            }
        }
    }
    out
}

/// A cycle as a message: `a → b (src/a.rs:3) → a (src/b.rs:9)`.
pub fn describe(cycle: &[(String, String, Site)]) -> String {
    let mut s = cycle.first().map(|(a, _, _)| a.clone()).unwrap_or_default();
    for (_, b, site) in cycle {
        s.push_str(&format!(" → {b} ({}:{})", site.file, site.line));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(list: &[(&str, &str)]) -> Vec<SourceFile> {
        list.iter()
            .map(|(p, t)| SourceFile {
                path: p.to_string(),
                text: t.to_string(),
            })
            .collect()
    }

    fn deps(g: &ModuleGraph, m: &str) -> Vec<String> {
        g.edges
            .get(m)
            .map(|e| e.keys().cloned().collect())
            .unwrap_or_default()
    }

    #[test]
    fn every_kind_of_path_is_a_dependency() {
        let g = module_graph(&files(&[
            (
                "src/lib.rs",
                "pub mod a; pub mod b; pub mod c; mod d; pub mod e;\npub use e::Thing;\npub mod \
                 prelude { pub use crate::a::A; }",
            ),
            (
                "src/a.rs",
                "use crate::{b::B, c};\nfn f() { crate::d::g(); }\n#[cfg(test)] mod tests { use \
                 super::*; }",
            ),
            ("src/b/mod.rs", "mod inner;\nuse super::c::C;\n"),
            (
                "src/b/inner.rs",
                "use super::super::d;\nfn f() -> crate::Thing { todo!() }",
            ),
            (
                "src/c.rs",
                "// crate::a in a comment\nconst S: &str = \"crate::b\";\nuse self::x::Y;\nmod x \
                 { pub struct Y; }",
            ),
            ("src/d.rs", "macro_rules! m { () => { $crate::c::f() } }"),
            ("src/e.rs", "pub struct Thing;"),
        ]));
        assert!(g.errors.is_empty(), "{:?}", g.errors);
        assert_eq!(deps(&g, "a"), ["b", "c", "d"]);
        assert_eq!(deps(&g, "b"), ["c", "d", "e"]);
        assert_eq!(deps(&g, "c"), Vec::<String>::new());
        assert_eq!(deps(&g, "d"), ["c"]);
        assert_eq!(deps(&g, "prelude"), ["a"]);
        assert_eq!(
            g.edges["b"]["e"],
            Site {
                file: "src/b/inner.rs".into(),
                line: 2
            }
        );
        assert!(cycles(&g).is_empty());
    }

    #[test]
    fn a_cycle_is_found_and_named_with_its_sites() {
        let g = module_graph(&files(&[
            ("src/lib.rs", "mod a; internal!(b, c); mod leaf;"),
            ("src/a.rs", "use crate::b;\nuse crate::leaf;"),
            ("src/b.rs", "\n\nfn f() { super::c::g() }"),
            ("src/c.rs", "pub fn g() {}\nuse crate::{leaf, a::X};"),
            ("src/leaf.rs", ""),
        ]));
        let found = cycles(&g);
        assert_eq!(found.len(), 1);
        assert_eq!(
            describe(&found[0]),
            "a → b (src/a.rs:1) → c (src/b.rs:3) → a (src/c.rs:2)"
        );
    }

    #[test]
    fn a_glob_import_of_the_root_is_an_error() {
        let g = module_graph(&files(&[
            ("src/lib.rs", "mod a;"),
            ("src/a.rs", "use super::*;"),
        ]));
        assert_eq!(g.errors.len(), 1, "{:?}", g.errors);
    }
}
