//! The crate's layers (module map in `lib.rs`), checked: no module uses one of a higher layer,
//! and no file-level cycle exists beyond the few listed (and explained) in [`ALLOWED_CYCLES`].
//!
//! A file uses another when its code (before `#[cfg(test)]`; tests may reach anywhere) names a
//! path into it: `crate::a::b::Item`, `super::x`, `self::x`, a child module of a `mod.rs` by
//! its name, each also inside grouped imports (`use crate::{a, b::{c, d}}`). A re-export
//! (`pub use child::Item` in a `mod.rs`, `pub use a::Item` in `lib.rs`) is a module's interface,
//! not a use: a path through it (`crate::Item`, `crate::a::Item`) counts as a use of the file that
//! defines the item. Method calls are not paths: a type whose `impl` is split across files (the
//! protocol's `Shared`) shows only through the paths those files name.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// File-level cycles that are allowed, each with why (the module map in `lib.rs` says the same).
/// A cycle found that is not inside one of these fails the test; an entry that is no longer
/// exactly a cycle fails it too (update the list).
const ALLOWED_CYCLES: &[(&[&str], &str)] = &[
    (
        // The protocol's state: `Shared` and `Proc` (shared.rs) hold the per-concern files'
        // types (a `Session`, reference `Counts`, `Slots`, the `Loading` names, a fork's
        // `Inherited` state) and call their helpers (stripes' stamps); those files implement
        // `Shared`'s methods (`impl Shared` is split by concern) and so name it back.
        &[
            "protocol/budget.rs",
            "protocol/clock.rs",
            "protocol/fork.rs",
            "protocol/refs.rs",
            "protocol/session.rs",
            "protocol/shared.rs",
            "protocol/slots.rs",
            "protocol/stripes.rs",
        ],
        "impl Shared is split across the protocol's per-concern files, whose types its fields are",
    ),
    (
        // Import and export: `interop/mod.rs` is the vocabulary (`Format`, `InteropError`,
        // `ImportedArray`, the output and progress helpers) and the dispatch by format to the
        // per-format files, which use that vocabulary.
        &[
            "interop/feather.rs",
            "interop/mod.rs",
            "interop/npy.rs",
            "interop/npz.rs",
            "interop/parquet.rs",
        ],
        "interop/mod.rs dispatches to the per-format files and holds the vocabulary they use",
    ),
];

/// The layer of a file, by its path under `src/` (`format/dtype.rs`). The element types are
/// layer 0 with the error vocabulary that names them.
fn layer(rel: &str) -> Option<u8> {
    let mut parts = rel.split('/').map(|p| p.trim_end_matches(".rs"));
    let top = parts.next()?;
    if top == "format" && matches!(parts.next(), Some("dtype" | "lifecycle")) {
        return Some(0);
    }
    Some(match top {
        "error" | "failpoint" | "sync" => 0,
        "format" => 1,
        "fs" => 2,
        "catalog" => 3,
        "protocol" => 4,
        "array" | "batch" | "budget" | "container" | "hold" | "interop" | "load" | "open"
        | "table" | "umbrella" | "writer" => 5,
        "adopt" | "fsck" | "rebuild" => 6,
        _ => return None,
    })
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The code of a source file that counts: before its test module (`#[cfg(test)] mod … {`),
/// without `//` comments.
fn code_of(text: &str) -> String {
    let end = text
        .match_indices("#[cfg(test)]")
        .map(|(at, _)| at)
        .find(|&at| {
            let next = text[at + "#[cfg(test)]".len()..].trim_start();
            next.starts_with("mod ") && next.lines().next().is_some_and(|l| l.ends_with('{'))
        })
        .unwrap_or(text.len());
    text[..end]
        .lines()
        .map(|l| match l.find("//") {
            Some(at) => &l[..at],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The paths of the path tree at the start of `s` (`a::b::{c, d::{e, f}}` gives `a::b::c`,
/// `a::b::d::e`, `a::b::d::f`), as segments; `self` inside braces names the prefix.
fn path_tree(s: &str) -> Vec<Vec<String>> {
    fn tree(s: &[char], i: &mut usize, prefix: &[String], out: &mut Vec<Vec<String>>) {
        let mut path = prefix.to_vec();
        loop {
            while *i < s.len() && s[*i].is_whitespace() {
                *i += 1;
            }
            if *i < s.len() && s[*i] == '{' {
                *i += 1;
                loop {
                    tree(s, i, &path, out);
                    while *i < s.len() && s[*i].is_whitespace() {
                        *i += 1;
                    }
                    match s.get(*i) {
                        Some(',') => *i += 1,
                        Some('}') => {
                            *i += 1;
                            break;
                        }
                        _ => return,
                    }
                    while *i < s.len() && s[*i].is_whitespace() {
                        *i += 1;
                    }
                    if s.get(*i) == Some(&'}') {
                        *i += 1;
                        break;
                    }
                }
                return;
            }
            let start = *i;
            while *i < s.len() && is_ident(s[*i]) {
                *i += 1;
            }
            if *i == start {
                break;
            }
            let seg: String = s[start..*i].iter().collect();
            if seg != "self" || path.is_empty() {
                path.push(seg);
            }
            if s.get(*i) == Some(&':') && s.get(*i + 1) == Some(&':') {
                *i += 2;
            } else {
                break;
            }
        }
        out.push(path);
    }
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    tree(&chars, &mut 0, &[], &mut out);
    out
}

/// Every path the code names that starts with one of `roots` (`crate`, `super`, `self`, or a
/// child module's name), at the start of a path (not after `::` or inside an identifier), with
/// the line it starts on.
fn paths_from(code: &str, roots: &[String]) -> Vec<(usize, Vec<String>)> {
    let mut out = Vec::new();
    for root in roots {
        let needle = format!("{root}::");
        for (at, _) in code.match_indices(&needle) {
            let before = code[..at].chars().next_back();
            if before.is_some_and(|c| is_ident(c) || c == ':') {
                continue;
            }
            let line = code[..at].matches('\n').count() + 1;
            out.extend(path_tree(&code[at..]).into_iter().map(|p| (line, p)));
        }
    }
    out
}

/// The module of a file: `a/b.rs` and `a/b/mod.rs` are `[a, b]`.
fn module_of(rel: &str) -> Vec<String> {
    if rel == "lib.rs" {
        return Vec::new();
    }
    let rel = rel.trim_end_matches(".rs");
    let mut m: Vec<String> = rel.split('/').map(String::from).collect();
    if m.last().is_some_and(|l| l == "mod") {
        m.pop();
    }
    m
}

/// The file that holds the longest prefix of `module::…` (`lib.rs` for the crate root), and the
/// length of that prefix.
fn file_of(files: &BTreeSet<String>, segs: &[String]) -> (String, usize) {
    (1..=segs.len())
        .rev()
        .find_map(|k| {
            let base = segs[..k].join("/");
            [format!("{base}.rs"), format!("{base}/mod.rs")]
                .into_iter()
                .find(|f| files.contains(f))
                .map(|f| (f, k))
        })
        .unwrap_or_else(|| ("lib.rs".to_string(), 0))
}

/// The re-export statements of `code` (`pub use …;`, `pub(crate) use …;`): their offsets and
/// text after the keyword.
fn reexport_statements(code: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for prefix in ["pub use ", "pub(crate) use ", "pub(super) use "] {
        for (at, _) in code.match_indices(prefix) {
            if code[..at].chars().next_back().is_some_and(is_ident) {
                continue;
            }
            let end = code[at..].find(';').map_or(code.len(), |e| at + e);
            out.push((at + prefix.len(), end));
        }
    }
    out
}

/// The file-level graph: for each file, the files it uses (with the line of the first use).
fn graph(src: &Path) -> BTreeMap<String, BTreeMap<String, usize>> {
    let mut paths = Vec::new();
    sources(src, &mut paths);
    let rel = |f: &Path| {
        f.strip_prefix(src)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/")
    };
    let files: BTreeSet<String> = paths.iter().map(|f| rel(f)).collect();
    let codes: BTreeMap<String, String> = paths
        .iter()
        .map(|f| (rel(f), code_of(&std::fs::read_to_string(f).unwrap())))
        .collect();
    // What `lib.rs` and each `mod.rs` re-export: item -> the module it comes from.
    let mut reexports: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    for (f, code) in &codes {
        if f != "lib.rs" && !f.ends_with("mod.rs") {
            continue;
        }
        let module = module_of(f);
        for (start, end) in reexport_statements(code) {
            let text = &code[start..end];
            let (base, text) = match text.strip_prefix("crate::") {
                Some(rest) => (Vec::new(), rest),
                None => (module.clone(), text.strip_prefix("self::").unwrap_or(text)),
            };
            for p in path_tree(text) {
                if let (Some(item), true) = (p.last(), p.len() >= 2) {
                    let mut from = base.clone();
                    from.extend(p[..p.len() - 1].iter().cloned());
                    reexports
                        .entry(f.clone())
                        .or_default()
                        .insert(item.clone(), from);
                }
            }
        }
    }
    let mut g: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for (f, code) in &codes {
        if f == "lib.rs" || f == "layering.rs" {
            continue;
        }
        let module = module_of(f);
        // Re-exports are the module's interface, not uses: blanked out (lines kept).
        let mut code = code.clone();
        for (start, end) in reexport_statements(&code.clone()) {
            let blank: String = code[start..end]
                .chars()
                .map(|c| if c == '\n' { c } else { ' ' })
                .collect();
            code.replace_range(start..end, &blank);
        }
        let code = &code;
        let mut roots = vec!["crate".to_string(), "super".into(), "self".into()];
        if f.ends_with("mod.rs") {
            // Child modules, named as paths from here.
            for line in code.lines() {
                let l = line.trim_start();
                if let Some(rest) = ["mod ", "pub mod ", "pub(crate) mod "]
                    .iter()
                    .find_map(|p| l.strip_prefix(p))
                {
                    if let Some(name) = rest.strip_suffix(';') {
                        roots.push(name.trim().to_string());
                    }
                }
            }
        }
        for (line, p) in paths_from(code, &roots) {
            let Some(head) = p.first() else { continue };
            let mut rest = &p[1..];
            let mut segs: Vec<String> = match head.as_str() {
                "crate" => Vec::new(),
                "self" => module.clone(),
                "super" => {
                    let mut m = module[..module.len().saturating_sub(1)].to_vec();
                    while rest.first().is_some_and(|s| s == "super") {
                        m.pop();
                        rest = &rest[1..];
                    }
                    m
                }
                child => {
                    let mut m = module.clone();
                    m.push(child.to_string());
                    m
                }
            };
            segs.extend(rest.iter().cloned());
            let (mut target, mut k) = file_of(&files, &segs);
            // Through re-exports (a chain of them, as `lib.rs` over a `mod.rs`) to the defining file.
            for _ in 0..4 {
                let Some(to) = segs
                    .get(k)
                    .and_then(|item| reexports.get(&target)?.get(item))
                else {
                    break;
                };
                let mut next = to.clone();
                next.extend(segs[k..].iter().cloned());
                let (t, nk) = file_of(&files, &next);
                if t == target {
                    break;
                }
                segs = next;
                (target, k) = (t, nk);
            }
            if &target != f && target != "lib.rs" {
                g.entry(f.clone())
                    .or_default()
                    .entry(target)
                    .or_insert(line);
            }
        }
        g.entry(f.clone()).or_default();
    }
    g
}

/// The strongly connected components of `g` with more than one file (Tarjan's algorithm).
fn cycles(g: &BTreeMap<String, BTreeMap<String, usize>>) -> Vec<BTreeSet<String>> {
    struct State<'a> {
        g: &'a BTreeMap<String, BTreeMap<String, usize>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        out: Vec<BTreeSet<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on.insert(v);
        for w in s.g[v].keys() {
            let w = w.as_str();
            if !s.g.contains_key(w) {
                continue;
            }
            if !s.index.contains_key(w) {
                visit(s, w);
                let l = s.low[v].min(s.low[w]);
                s.low.insert(v, l);
            } else if s.on.contains(w) {
                let l = s.low[v].min(s.index[w]);
                s.low.insert(v, l);
            }
        }
        if s.low[v] == s.index[v] {
            let mut c = BTreeSet::new();
            while let Some(w) = s.stack.pop() {
                s.on.remove(w);
                c.insert(w.to_string());
                if w == v {
                    break;
                }
            }
            if c.len() > 1 {
                s.out.push(c);
            }
        }
    }
    let mut s = State {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in g.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn no_module_uses_a_module_of_a_higher_layer() {
    let g = graph(&src());
    let mut checked = 0;
    let mut violations = Vec::new();
    for (f, uses) in &g {
        if f == "lib.rs" || f == "layering.rs" {
            continue;
        }
        let own = layer(f).unwrap_or_else(|| panic!("{f}: not in any layer of the module map"));
        for (to, line) in uses {
            let Some(l) = layer(to) else { continue };
            checked += 1;
            if l > own {
                violations.push(format!("{f}:{line}: layer {own} uses {to} (layer {l})"));
            }
        }
    }
    assert!(
        checked > 100,
        "the scan found only {checked} uses between files: is it reading the sources?"
    );
    assert!(
        violations.is_empty(),
        "upward dependencies:\n{}",
        violations.join("\n")
    );
}

#[test]
fn no_file_level_cycle_beyond_the_allowed_ones() {
    let g = graph(&src());
    let found = cycles(&g);
    let allowed: Vec<(BTreeSet<String>, &str)> = ALLOWED_CYCLES
        .iter()
        .map(|(files, why)| (files.iter().map(|f| f.to_string()).collect(), *why))
        .collect();
    let mut unexplained = Vec::new();
    for c in &found {
        if !allowed.iter().any(|(a, _)| c.is_subset(a)) {
            let edges: Vec<String> = c
                .iter()
                .flat_map(|f| {
                    g[f].iter()
                        .filter(|(to, _)| c.contains(*to))
                        .map(move |(to, line)| format!("  {f}:{line} uses {to}"))
                })
                .collect();
            unexplained.push(format!("{c:?}:\n{}", edges.join("\n")));
        }
    }
    assert!(
        unexplained.is_empty(),
        "file-level cycles not in ALLOWED_CYCLES:\n{}",
        unexplained.join("\n")
    );
    for (a, why) in &allowed {
        assert!(
            found.iter().any(|c| c == a),
            "ALLOWED_CYCLES lists {a:?} ({why}), which is not (or no longer exactly) a cycle: \
             update the list"
        );
    }
}

#[test]
fn the_scan_sees_grouped_imports_super_paths_and_reexports() {
    assert_eq!(
        path_tree("crate::{a, b::{c, d}, e::f::{self, G}};"),
        [
            vec!["crate", "a"],
            vec!["crate", "b", "c"],
            vec!["crate", "b", "d"],
            vec!["crate", "e", "f"],
            vec!["crate", "e", "f", "G"],
        ]
        .map(|p| p.into_iter().map(String::from).collect::<Vec<_>>())
    );
    let g = graph(&src());
    // `use super::{intent_tx, now_ms, …}` in the catalog's batch rows.
    assert!(g["catalog/batch.rs"].contains_key("catalog/mod.rs"));
    // `use crate::fs::inspect::{daf_own_file, …}` and `crate::format::name::ArrayName`.
    assert!(g["adopt.rs"].contains_key("fs/inspect.rs"));
    assert!(g["adopt.rs"].contains_key("format/name.rs"));
    // `crate::protocol::Shared` is `protocol/shared.rs` (re-exported by `protocol/mod.rs`), and
    // `crate::Array` (re-exported by `lib.rs`) is `open.rs`.
    assert!(g["container.rs"].contains_key("protocol/shared.rs"));
    assert!(g["interop/mod.rs"].contains_key("open.rs"));
}
