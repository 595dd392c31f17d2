//! The house rules for the source tree, checked on every `cargo test`: no import cycle between
//! modules, no file over 500 lines outside test modules, every module opening with a `//!` line
//! that says its one job (no "and" in it), and no `unsafe` outside `src/secret.rs`.
//!
//! This is the "equivalent check" to `cargo modules dependencies --acyclic` (which would need a
//! rust-analyzer build in CI): modules are files, and an edge is any path a module names —
//! `crate::…`, `super::…`, `self::…`, or a child module's name used in its parent — resolved to the
//! deepest module it reaches. `mod x;` itself is ownership, not an edge. Test modules (`#[cfg(test)]
//! mod …`, files named `tests.rs` or `*_tests.rs`) are left out of the graph and the line counts.
//!
//! Each rule ratchets against a baseline in `tests/layout/`: what is listed there is a known debt
//! that may shrink but never grow, and a line that no longer applies must be deleted.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

const MAX_LINES: usize = 500;
const UNSAFE_HOME: &str = "src/secret.rs";

/// One source file seen as a module.
struct Module {
    /// `crate`-relative path, e.g. `["scheduler", "timing"]`; empty for the crate root.
    path: Vec<String>,
    /// The file, relative to the repository root.
    file: String,
    /// The text with comments and string/char literals blanked (same length, same lines).
    code: String,
    /// Whether the whole file is a test module.
    is_test: bool,
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every crate in the repository: the root package's `src/` and each `crates/*/src`.
fn crate_roots() -> Vec<PathBuf> {
    let mut roots = vec![repo().join("src")];
    if let Ok(entries) = std::fs::read_dir(repo().join("crates")) {
        let mut more: Vec<PathBuf> =
            entries.filter_map(Result::ok).map(|e| e.path().join("src")).filter(|p| p.is_dir()).collect();
        more.sort();
        roots.extend(more);
    }
    roots
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn modules(root: &Path) -> Vec<Module> {
    let mut files = Vec::new();
    rust_files(root, &mut files);
    let mut out = Vec::new();
    for f in files {
        let rel = f.strip_prefix(root).unwrap();
        let mut path: Vec<String> =
            rel.with_extension("").components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
        if matches!(path.last().map(String::as_str), Some("mod" | "lib" | "main")) {
            path.pop();
        }
        // `src/bin/x.rs` and `src/main.rs` are crate roots of their own: not part of the library's graph.
        if rel.starts_with("bin") || rel == Path::new("main.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        let name = path.last().cloned().unwrap_or_default();
        out.push(Module {
            is_test: name == "tests" || name.ends_with("_tests"),
            path,
            file: f.strip_prefix(repo()).unwrap().to_string_lossy().into_owned(),
            code: blank_comments_and_literals(&text),
        });
    }
    // A file declared as `#[cfg(test)] mod x;` is a test module too.
    let declared_tests: BTreeSet<Vec<String>> = out
        .iter()
        .flat_map(|m| {
            test_module_declarations(&m.code).into_iter().map(|child| {
                let mut p = m.path.clone();
                p.push(child);
                p
            })
        })
        .collect();
    for m in &mut out {
        if declared_tests.iter().any(|t| m.path.starts_with(t)) {
            m.is_test = true;
        }
    }
    out
}

/// Replaces comments and the insides of string and char literals with spaces, keeping newlines,
/// so that later scans see only code and line numbers stay true.
fn blank_comments_and_literals(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = b.to_vec();
    let blank = |out: &mut Vec<u8>, from: usize, to: usize| {
        for c in &mut out[from..to] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
    };
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                let end = text[i..].find('\n').map_or(b.len(), |n| i + n);
                blank(&mut out, i, end);
                i = end;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let (mut depth, mut j) = (1, i + 2);
                while j < b.len() && depth > 0 {
                    if b[j] == b'/' && b.get(j + 1) == Some(&b'*') {
                        depth += 1;
                        j += 2;
                    } else if b[j] == b'*' && b.get(j + 1) == Some(&b'/') {
                        depth -= 1;
                        j += 2;
                    } else {
                        j += 1;
                    }
                }
                blank(&mut out, i, j);
                i = j;
            }
            b'r' | b'b' if raw_string_start(b, i).is_some() => {
                let (hashes, open) = raw_string_start(b, i).unwrap();
                let close: Vec<u8> = std::iter::once(b'"').chain(std::iter::repeat_n(b'#', hashes)).collect();
                let mut j = open + 1;
                while j < b.len() && !b[j..].starts_with(&close) {
                    j += 1;
                }
                blank(&mut out, open + 1, j.min(b.len()));
                i = (j + close.len()).min(b.len());
            }
            b'"' => {
                let mut j = i + 1;
                while j < b.len() && b[j] != b'"' {
                    j += if b[j] == b'\\' { 2 } else { 1 };
                }
                blank(&mut out, i + 1, j.min(b.len()));
                i = j + 1;
            }
            b'\'' => {
                // A char literal ('x', '\n', '\u{1F600}') or a lifetime ('a): only the former closes.
                let close = if b.get(i + 1) == Some(&b'\\') {
                    b[i + 2..].iter().position(|&c| c == b'\'').map(|n| i + 2 + n)
                } else {
                    let ch = text[i + 1..].chars().next().map_or(1, char::len_utf8);
                    (b.get(i + 1 + ch) == Some(&b'\'')).then_some(i + 1 + ch)
                };
                match close {
                    Some(end) => {
                        blank(&mut out, i + 1, end);
                        i = end + 1;
                    }
                    None => i += 1,
                }
            }
            _ => {
                // Skip identifiers whole, so the `r` or `b` inside one is never a literal's prefix.
                if b[i].is_ascii_alphanumeric() || b[i] == b'_' {
                    while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                        i += 1;
                    }
                } else {
                    i += 1;
                }
            }
        }
    }
    String::from_utf8(out).expect("blanking keeps UTF-8: only ASCII-delimited spans are replaced")
}

/// `r"`, `r#"`, `br"`, `br#"` at `i`: the number of hashes and the index of the opening quote.
fn raw_string_start(b: &[u8], i: usize) -> Option<(usize, usize)> {
    if i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_') {
        return None;
    }
    let mut j = i;
    if b[j] == b'b' {
        j += 1;
    }
    if b.get(j) != Some(&b'r') {
        return None;
    }
    j += 1;
    let hashes = b[j..].iter().take_while(|&&c| c == b'#').count();
    (b.get(j + hashes) == Some(&b'"')).then_some((hashes, j + hashes))
}

/// The names of `#[cfg(test)] mod x;` declarations (test modules kept in files of their own).
fn test_module_declarations(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(n) = rest.find("#[cfg(test)]") {
        rest = &rest[n + "#[cfg(test)]".len()..];
        let item = rest.trim_start();
        let item = item.strip_prefix("pub(crate) ").or_else(|| item.strip_prefix("pub ")).unwrap_or(item);
        if let Some(decl) = item.strip_prefix("mod ") {
            let name: String = decl.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if decl[name.len()..].trim_start().starts_with(';') {
                out.push(name);
            }
        }
    }
    out
}

/// The code with every `#[cfg(test)] mod x { … }` block blanked (lines kept), and the number of
/// lines those blocks took.
fn without_test_blocks(code: &str) -> (String, usize) {
    let mut out = code.as_bytes().to_vec();
    let mut removed = 0;
    let mut from = 0;
    while let Some(n) = code[from..].find("#[cfg(test)]") {
        let start = from + n;
        from = start + 1;
        let after = &code[start + "#[cfg(test)]".len()..];
        let item = after.trim_start();
        let item = item.strip_prefix("pub(crate) ").or_else(|| item.strip_prefix("pub ")).unwrap_or(item);
        if !item.starts_with("mod ") {
            continue;
        }
        let Some(open) = code[start..].find(['{', ';']).map(|k| start + k) else { continue };
        if code.as_bytes()[open] == b';' {
            continue;
        }
        let mut depth = 0;
        let mut end = open;
        for (k, c) in code[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = open + k + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        removed += code[start..end].matches('\n').count() + 1;
        for c in &mut out[start..end] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
        from = end;
    }
    (String::from_utf8(out).unwrap(), removed)
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Every path the code names that starts at `crate`, `super` or `self`, or at one of `children`
/// (the module's own submodules), expanded through `use` groups: `crate::a::{b, c::d}` gives
/// `crate::a::b` and `crate::a::c::d`. Each comes with its line number.
fn named_paths(code: &str, children: &BTreeSet<String>) -> Vec<(Vec<String>, usize)> {
    let b = code.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if !is_ident(b[i]) || (i > 0 && (is_ident(b[i - 1]) || b[i - 1] == b':')) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && is_ident(b[i]) {
            i += 1;
        }
        let first = &code[start..i];
        let rooted = matches!(first, "crate" | "super" | "self") || children.contains(first);
        if !rooted || !code[i..].starts_with("::") {
            continue;
        }
        let line = code[..start].matches('\n').count() + 1;
        let (paths, end) = path_tree(code, start);
        for p in paths {
            out.push((p, line));
        }
        i = end.max(i);
    }
    out
}

/// Parses the path (or `use` tree) that begins at `at`; returns every leaf path and where it ended.
fn path_tree(code: &str, at: usize) -> (Vec<Vec<String>>, usize) {
    let b = code.as_bytes();
    let mut prefix = Vec::new();
    let mut i = at;
    loop {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i < b.len() && b[i] == b'{' {
            // A group: each member is a tree of its own under `prefix`.
            let mut leaves = Vec::new();
            i += 1;
            loop {
                while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b',') {
                    i += 1;
                }
                if i >= b.len() || b[i] == b'}' {
                    break;
                }
                let (sub, end) = path_tree(code, i);
                for s in sub {
                    let mut p = prefix.clone();
                    p.extend(s);
                    leaves.push(p);
                }
                // Skip what a member may carry after its path (`as x`), up to the next separator.
                i = end;
                let mut depth = 0;
                while i < b.len() {
                    match b[i] {
                        b'{' => depth += 1,
                        b'}' if depth == 0 => break,
                        b'}' => depth -= 1,
                        b',' if depth == 0 => break,
                        _ => {}
                    }
                    i += 1;
                }
            }
            return (leaves, i + 1);
        }
        let start = i;
        while i < b.len() && is_ident(b[i]) {
            i += 1;
        }
        if start == i {
            // `*` or anything else ends the path here.
            return (vec![prefix], i);
        }
        prefix.push(code[start..i].to_string());
        if code[i..].starts_with("::") {
            i += 2;
        } else {
            return (vec![prefix], i);
        }
    }
}

/// The deepest known module a path reaches, from module `from`.
fn resolve(path: &[String], from: &[String], known: &BTreeSet<Vec<String>>) -> Option<Vec<String>> {
    let mut base: Vec<String> = Vec::new();
    let mut rest = path;
    match path.first().map(String::as_str) {
        Some("crate") => rest = &path[1..],
        Some("super" | "self") => {
            base = from.to_vec();
            while let Some(first) = rest.first() {
                match first.as_str() {
                    "super" => {
                        base.pop();
                    }
                    "self" => {}
                    _ => break,
                }
                rest = &rest[1..];
            }
        }
        _ => base = from.to_vec(),
    }
    let full: Vec<String> = base.into_iter().chain(rest.iter().cloned()).collect();
    (0..=full.len()).rev().map(|n| full[..n].to_vec()).find(|p| known.contains(p))
}

fn name(path: &[String]) -> String {
    if path.is_empty() { "crate".to_string() } else { path.join("::") }
}

struct Graph {
    /// module -> (module it names -> the first `file:line` naming it)
    edges: BTreeMap<String, BTreeMap<String, String>>,
}

fn graph(mods: &[Module]) -> Graph {
    let known: BTreeSet<Vec<String>> = mods.iter().map(|m| m.path.clone()).collect();
    let mut edges: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for m in mods.iter().filter(|m| !m.is_test) {
        let children: BTreeSet<String> = known
            .iter()
            .filter(|k| k.len() == m.path.len() + 1 && k.starts_with(&m.path))
            .map(|k| k.last().unwrap().clone())
            .collect();
        let (code, _) = without_test_blocks(&m.code);
        for (path, line) in named_paths(&code, &children) {
            let Some(target) = resolve(&path, &m.path, &known) else { continue };
            if target == m.path || mods.iter().any(|t| t.path == target && t.is_test) {
                continue;
            }
            edges
                .entry(name(&m.path))
                .or_default()
                .entry(name(&target))
                .or_insert_with(|| format!("{}:{line}", m.file));
        }
    }
    Graph { edges }
}

/// Strongly connected components with more than one module (Tarjan), each sorted.
fn cycles(g: &Graph) -> Vec<BTreeSet<String>> {
    struct Tarjan<'a> {
        g: &'a Graph,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        found: Vec<BTreeSet<String>>,
    }
    impl<'a> Tarjan<'a> {
        fn visit(&mut self, v: &'a str) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.g.edges.get(v).into_iter().flat_map(|e| e.keys()) {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).unwrap();
                    *lv = (*lv).min(lw);
                } else if self.on_stack.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).unwrap();
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut scc = BTreeSet::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    scc.insert(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if scc.len() > 1 {
                    self.found.push(scc);
                }
            }
        }
    }
    let mut t = Tarjan {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in g.edges.keys() {
        if !t.index.contains_key(v.as_str()) {
            t.visit(v);
        }
    }
    t.found.sort();
    t.found
}

fn baseline(name: &str) -> Vec<String> {
    let path = repo().join("tests/layout").join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// Checks `found` (key -> detail) against a baseline of keys: a new key fails, and so does a
/// baseline line that no longer applies.
fn ratchet(rule: &str, file: &str, found: &BTreeMap<String, String>, allowed: &[String]) -> String {
    let mut report = String::new();
    for (key, detail) in found {
        if !allowed.contains(key) {
            let _ = writeln!(report, "{rule}: {detail}");
        }
    }
    for key in allowed {
        if !found.contains_key(key) {
            let _ = writeln!(report, "tests/layout/{file}: `{key}` no longer applies: delete the line");
        }
    }
    report
}

fn all_modules() -> Vec<Module> {
    crate_roots().iter().flat_map(|r| modules(r)).collect()
}

#[test]
fn no_import_cycle_between_modules() {
    let allowed = baseline("cycles.txt");
    let mut report = String::new();
    let mut stale: BTreeSet<&String> = allowed.iter().collect();
    for root in crate_roots() {
        let mods = modules(&root);
        let g = graph(&mods);
        for scc in cycles(&g) {
            let members = scc.iter().cloned().collect::<Vec<_>>().join(" ");
            // A known cycle may shrink (its line must then be shrunk to match) but never grow.
            let within = allowed.iter().find(|line| {
                let set: BTreeSet<&str> = line.split_whitespace().collect();
                scc.iter().all(|m| set.contains(m.as_str()))
            });
            match within {
                Some(line) if *line == members => {
                    stale.remove(line);
                }
                Some(line) => {
                    stale.remove(line);
                    let _ = writeln!(
                        report,
                        "tests/layout/cycles.txt: the cycle `{line}` shrank: replace the line with `{members}`"
                    );
                }
                None => {
                    let _ = writeln!(report, "import cycle between {members}:");
                    for from in &scc {
                        for (to, at) in g.edges.get(from).into_iter().flatten() {
                            if scc.contains(to) {
                                let _ = writeln!(report, "    {from} -> {to}   ({at})");
                            }
                        }
                    }
                }
            }
        }
    }
    for line in stale {
        let _ = writeln!(report, "tests/layout/cycles.txt: the cycle `{line}` is gone: delete the line");
    }
    assert!(report.is_empty(), "\n{report}");
}

#[test]
fn no_file_over_the_line_limit_outside_tests() {
    let mut found = BTreeMap::new();
    for m in all_modules().iter().filter(|m| !m.is_test) {
        let total = m.code.lines().count();
        let (_, in_tests) = without_test_blocks(&m.code);
        let lines = total.saturating_sub(in_tests);
        if lines > MAX_LINES {
            found.insert(m.file.clone(), format!("{} has {lines} lines outside its tests (limit {MAX_LINES})", m.file));
        }
    }
    let report = ratchet("too long", "long_files.txt", &found, &baseline("long_files.txt"));
    assert!(report.is_empty(), "\n{report}");
}

#[test]
fn every_module_opens_with_a_line_saying_its_job() {
    let mut found = BTreeMap::new();
    for root in crate_roots() {
        let mut files = Vec::new();
        rust_files(&root, &mut files);
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            let rel = f.strip_prefix(repo()).unwrap().to_string_lossy().into_owned();
            let first = text.lines().next().unwrap_or("");
            let doc = first.strip_prefix("//!").map(str::trim).unwrap_or("");
            if doc.is_empty() {
                found.insert(
                    rel.clone(),
                    format!("{rel}: the first line must be a `//!` line saying the module's one job"),
                );
            }
        }
    }
    let report = ratchet("no module doc", "undocumented.txt", &found, &baseline("undocumented.txt"));
    assert!(report.is_empty(), "\n{report}");
}

/// The first line of a module's doc with its code spans (`` `…` ``) left out: the words that say
/// its job.
fn job_words(first_line: &str) -> String {
    first_line.split('`').step_by(2).collect::<Vec<_>>().join(" ")
}

/// A module's first line names one job: no "and" in it (outside code spans). A file whose job
/// needs "and" to describe does two jobs, and is a split to do (issue #18).
#[test]
fn every_module_s_first_line_says_one_job() {
    let mut found = BTreeMap::new();
    for root in crate_roots() {
        let mut files = Vec::new();
        rust_files(&root, &mut files);
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            let rel = f.strip_prefix(repo()).unwrap().to_string_lossy().into_owned();
            let Some(doc) = text.lines().next().and_then(|l| l.strip_prefix("//!")) else { continue };
            let words = job_words(doc);
            if words.split(|c: char| !c.is_alphanumeric()).any(|w| w.eq_ignore_ascii_case("and")) {
                found.insert(
                    rel.clone(),
                    format!("{rel}: its first line says \"and\": say its one job, or split it:{doc}"),
                );
            }
        }
    }
    let report = ratchet("two jobs", "two_jobs.txt", &found, &baseline("two_jobs.txt"));
    assert!(report.is_empty(), "\n{report}");
}

#[test]
fn the_job_words_leave_code_spans_out() {
    assert_eq!(job_words("The `a and b` keys: x"), "The   keys: x");
    assert!(job_words("`sls`, `dsw` and `tcr`").contains(" and "));
}

#[test]
fn no_unsafe_outside_the_secret_module() {
    let mut found = BTreeMap::new();
    for m in all_modules() {
        if m.file == UNSAFE_HOME {
            continue;
        }
        let b = m.code.as_bytes();
        let lines: Vec<usize> = m
            .code
            .match_indices("unsafe")
            .filter(|(at, _)| {
                let before = at.checked_sub(1).map(|k| b[k]);
                let after = b.get(at + "unsafe".len()).copied();
                !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
            })
            .map(|(at, _)| m.code[..at].matches('\n').count() + 1)
            .collect();
        if !lines.is_empty() {
            // Keyed by file and count: a listed file that gains an `unsafe` fails like a new one.
            let at: Vec<String> = lines.iter().map(|l| format!("{}:{l}", m.file)).collect();
            let key = format!("{} {}", m.file, lines.len());
            found.insert(key, format!("`unsafe` outside {UNSAFE_HOME}: {}", at.join(", ")));
        }
    }
    let report = ratchet("unsafe", "unsafe.txt", &found, &baseline("unsafe.txt"));
    assert!(report.is_empty(), "\n{report}");
}

#[test]
fn the_scanner_sees_paths_and_not_comments_or_strings() {
    let code = blank_comments_and_literals(
        "use crate::a::{b, c::{d, e as f}};\n// crate::x::y\nlet s = \"crate::q\"; let c = '{'; let l: &'a str = r#\"super::z\"#;\nsuper::g::h();\n",
    );
    let paths: Vec<String> =
        named_paths(&code, &BTreeSet::new()).into_iter().map(|(p, l)| format!("{}@{l}", p.join("::"))).collect();
    assert_eq!(paths, ["crate::a::b@1", "crate::a::c::d@1", "crate::a::c::e@1", "super::g::h@4"]);
    let (_, removed) = without_test_blocks("fn a() {}\n#[cfg(test)]\nmod tests {\n    fn b() { let x = 1; }\n}\n");
    assert_eq!(removed, 4);
}
