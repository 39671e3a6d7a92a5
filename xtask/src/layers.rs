//! The code map's invariants, checked by `cargo xtask test` (rust-analyzer's tidy tests are the
//! model: a test of the architecture, not a linter):
//! - **Layers.** The server's top-level modules form the order [`ORDER`]; a module may name
//!   (`crate::…`, or `super::…` up to the crate root) only modules before it. So no import points
//!   up and no two modules import each other.
//! - **libtorch** (`tch`) is named only inside [`TORCH`]; everything above reaches it through them.
//! - **The code map is true.** Every module of `server`, `shared` and `frontend` is named in
//!   ARCHITECTURE.md, and every server module is in [`ORDER`].

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The server's modules, lowest first (ARCHITECTURE.md, "Layers").
pub const ORDER: &[&str] = &[
    // foundation
    "error",
    "io",
    "plot",
    // data, tch-free
    "data",
    "preprocess",
    "shift",
    "sources",
    // readers and writers of FD-Shifts folders and CSVs
    "csv_input",
    "fdshifts",
    "export",
    // libtorch
    "torch",
    "infer",
    "train",
    // use cases
    "recipe",
    "ingest",
    // the store and what reads it
    "store",
    "latent",
    // the benchmark over a recipe's stored seeds
    "bench",
    // surfaces
    "report",
    "http",
    "cli",
];

/// The only modules that may name `tch`.
pub const TORCH: &[&str] = &["torch", "infer", "train"];

/// Rust source with comments, string and char literals blanked out (same length, newlines kept),
/// so that a `crate::x` in a doc comment or a message is not an import.
fn code_only(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    let blank = |out: &mut Vec<u8>, c: u8| out.push(if c == b'\n' { b'\n' } else { b' ' });
    while i < b.len() {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    blank(&mut out, b[i]);
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let mut depth = 0usize;
                while i < b.len() {
                    if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                        depth += 1;
                        out.extend(b"  ");
                        i += 2;
                    } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                        depth -= 1;
                        out.extend(b"  ");
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        blank(&mut out, b[i]);
                        i += 1;
                    }
                }
            }
            b'r' if matches!(b.get(i + 1), Some(b'"' | b'#'))
                && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')) =>
            {
                // Raw string r#*"…"#*.
                let hashes = b[i + 1..].iter().take_while(|&&c| c == b'#').count();
                if b.get(i + 1 + hashes) != Some(&b'"') {
                    out.push(b[i]);
                    i += 1;
                    continue;
                }
                let close: Vec<u8> = std::iter::once(b'"').chain(std::iter::repeat_n(b'#', hashes)).collect();
                let start = i;
                i += 2 + hashes;
                while i < b.len() && !b[i..].starts_with(&close) {
                    i += 1;
                }
                i = (i + close.len()).min(b.len());
                for &c in &b[start..i] {
                    blank(&mut out, c);
                }
            }
            b'"' => {
                blank(&mut out, b[i]);
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    let step = if b[i] == b'\\' { 2 } else { 1 };
                    for &c in &b[i..(i + step).min(b.len())] {
                        blank(&mut out, c);
                    }
                    i += step;
                }
                if i < b.len() {
                    blank(&mut out, b[i]);
                    i += 1;
                }
            }
            // A char literal ('x', '\n', '\''); a lifetime ('a) is code.
            b'\'' if b.get(i + 1) == Some(&b'\\') || b.get(i + 2) == Some(&b'\'') => {
                let end = if b.get(i + 1) == Some(&b'\\') {
                    b[i + 2..]
                        .iter()
                        .position(|&c| c == b'\'')
                        .map_or(b.len(), |p| i + 3 + p)
                } else {
                    i + 3
                };
                for &c in &b[i..end.min(b.len())] {
                    blank(&mut out, c);
                }
                i = end;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn ident_at(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The first segment of each item of a `{a, b::c, d::{e, f}}` group starting at `s` (just after
/// the `{`).
fn group_heads(s: &str) -> Vec<&str> {
    let mut heads = Vec::new();
    let mut depth = 0;
    let mut item_start = true;
    for (k, c) in s.char_indices() {
        match c {
            '}' if depth == 0 => break,
            ',' if depth == 0 => item_start = true,
            c if c.is_whitespace() => {}
            c => {
                if std::mem::take(&mut item_start) {
                    heads.push(ident_at(&s[k..]));
                }
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    _ => {}
                }
            }
        }
    }
    heads
}

fn is_path_start(code: &str, at: usize) -> bool {
    let before = &code[..at];
    !(before.ends_with("::") || before.ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_'))
}

/// Every top-level module that `code` (a file `depth` modules below the crate root: 1 for `x.rs`
/// and `x/mod.rs`, 2 for `x/y.rs`) names, with its line.
pub fn crate_refs(code: &str, depth: usize) -> Vec<(usize, String)> {
    let line_of = |at: usize| code[..at].matches('\n').count() + 1;
    let mut refs = Vec::new();
    let mut push_path = |at: usize, rest: &str| {
        if let Some(group) = rest.strip_prefix('{') {
            refs.extend(group_heads(group).into_iter().map(|h| (line_of(at), h.to_string())));
        } else {
            let name = ident_at(rest);
            if !name.is_empty() {
                refs.push((line_of(at), name.to_string()));
            }
        }
    };
    for (at, _) in code.match_indices("crate::") {
        if is_path_start(code, at) {
            push_path(at, &code[at + "crate::".len()..]);
        }
    }
    for (at, _) in code.match_indices("super::") {
        if !is_path_start(code, at) {
            continue;
        }
        let mut rest = &code[at..];
        let mut ups = 0;
        while let Some(r) = rest.strip_prefix("super::") {
            ups += 1;
            rest = r;
        }
        if ups >= depth {
            push_path(at, rest);
        }
    }
    refs
}

/// Whether `code` names the `tch` crate.
pub fn names_tch(code: &str) -> Option<usize> {
    code.match_indices("tch::")
        .find(|&(at, _)| is_path_start(code, at))
        .map(|(at, _)| code[..at].matches('\n').count() + 1)
}

/// The problems in one file of module `module` (its top-level module), `depth` below the root.
pub fn check_file(module: &str, depth: usize, text: &str) -> Vec<(usize, String)> {
    let code = code_only(text);
    let Some(rank) = ORDER.iter().position(|m| *m == module) else {
        return vec![(
            1,
            format!("module `{module}` is not in the layer order (xtask/src/layers.rs, ARCHITECTURE.md)"),
        )];
    };
    let mut problems = Vec::new();
    for (line, target) in crate_refs(&code, depth) {
        match ORDER.iter().position(|m| *m == target) {
            Some(t) if t > rank => problems.push((
                line,
                format!(
                    "`{module}` imports `{target}`, a layer above it (order: {})",
                    ORDER.join(" < ")
                ),
            )),
            _ => {}
        }
    }
    if !TORCH.contains(&module) {
        if let Some(line) = names_tch(&code) {
            problems.push((
                line,
                format!("`{module}` names `tch`; libtorch stays in {}", TORCH.join(", ")),
            ));
        }
    }
    problems
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            rust_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
    Ok(())
}

/// Module path of a source file below `src` (`latent/tsne.rs` → `["latent", "tsne"]`).
fn module_path(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).expect("below src");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// Every problem in the workspace at `root`, as `file:line: message`.
pub fn check(root: &Path) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    let server = root.join("server/src");
    let mut files = Vec::new();
    rust_files(&server, &mut files)?;
    for file in &files {
        let path = module_path(&server, file);
        if matches!(path.as_slice(), [m] if m == "lib" || m == "main") {
            continue;
        }
        let text = std::fs::read_to_string(file)?;
        for (line, p) in check_file(&path[0], path.len(), &text) {
            problems.push(format!("{}:{line}: {p}", file.display()));
        }
    }
    let lib = std::fs::read_to_string(server.join("lib.rs"))?;
    for m in ORDER {
        if !lib.contains(&format!("pub mod {m};")) {
            problems.push(format!(
                "server/src/lib.rs: no module `{m}`, yet it is in the layer order"
            ));
        }
    }
    let map = std::fs::read_to_string(root.join("ARCHITECTURE.md"))?;
    for krate in ["server", "shared", "frontend"] {
        let src = root.join(krate).join("src");
        let mut files = Vec::new();
        rust_files(&src, &mut files)?;
        for file in &files {
            let path = module_path(&src, file);
            let name = path.join("::");
            let last = path.last().expect("a file has a name");
            if matches!(name.as_str(), "lib" | "main") || last.ends_with("tests") || last == "test_vectors" {
                continue;
            }
            if !map.contains(&format!("`{name}`")) && !map.contains(&format!("`{last}`")) {
                problems.push(format!(
                    "ARCHITECTURE.md does not name `{name}` ({})",
                    file.strip_prefix(root).unwrap_or(file).display()
                ));
            }
        }
    }
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upward_import_is_a_problem() {
        let p = check_file(
            "store",
            1,
            "use crate::preprocess::Preprocess;\nuse crate::latent::Jobs;\n",
        );
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].0, 2);
        assert!(p[0].1.contains("`store` imports `latent`"), "{}", p[0].1);
    }

    #[test]
    fn groups_paths_in_expressions_and_supers_count() {
        let code = "use crate::{io::npz, http, data::{a, b}};\nfn f() { crate::cli::run(); super::super::recipe::x(); super::y(); }";
        let refs: Vec<String> = crate_refs(code, 2).into_iter().map(|(_, m)| m).collect();
        assert_eq!(refs, ["io", "http", "data", "cli", "recipe"]);
        // One level down, `super::y` is the crate root's `y`.
        assert!(crate_refs("use super::y;", 1).iter().any(|(_, m)| m == "y"));
        assert!(crate_refs("use super::y;", 2).is_empty());
    }

    #[test]
    fn comments_strings_and_lifetimes_are_not_code() {
        let text = "/// uses crate::cli\n// crate::http\nfn f<'a>(x: &'a str) -> char { let _ = \"crate::cli \\\" crate::http\"; let _ = r#\"crate::cli\"#; '\"' }\n/* crate::cli */ use crate::error::E;";
        let refs: Vec<(usize, String)> = crate_refs(&code_only(text), 1);
        assert_eq!(refs, [(4, "error".to_string())]);
        assert!(check_file("data", 1, text).is_empty());
    }

    #[test]
    fn tch_only_in_the_torch_layer() {
        assert!(check_file("infer", 1, "use tch::Tensor;").is_empty());
        let p = check_file("recipe", 1, "fn f() { let t = tch::Tensor::zeros(); }");
        assert!(p[0].1.contains("names `tch`"), "{p:?}");
        assert!(check_file("recipe", 1, "use crate::train::Tensors; // not tch::").is_empty());
    }

    #[test]
    fn an_unknown_module_must_be_placed() {
        let p = check_file("newthing", 1, "");
        assert!(p[0].1.contains("not in the layer order"));
    }

    #[test]
    fn this_workspace_holds_its_invariants() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace");
        let problems = check(root).unwrap();
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
}
