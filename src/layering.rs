//! Keeps the layering of docs/ARCHITECTURE.md true: every `crate::` path in a module of one
//! layer names a module of a lower layer (or its own), so imports point one way and no two
//! top-level modules import each other.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Top to bottom. A module may use the modules below it and its own; `cli` and `commands`
/// share the top, where only `commands` may use `cli`.
const LAYERS: &[&[&str]] = &[
    &["cli", "commands"],
    &["report"],
    &["fleet"],
    &["write"],
    &["decide"],
    &["config"],
    &["model"],
    &["aws"],
];

/// Used by any layer; they use no module of the crate.
const LEAVES: &[&str] = &["exit", "progress"];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src is readable") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to (`src/fleet/inventory.rs` → `fleet`).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("under src");
    let first = rel.components().next().expect("a component");
    let name = first.as_os_str().to_string_lossy();
    name.trim_end_matches(".rs").to_string()
}

/// Every top-level module named after `crate::` in the text (code and tests alike).
fn used_modules(text: &str) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("crate::") {
        let after = &rest[at + "crate::".len()..];
        let preceded_by_ident = rest[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_');
        let name: String = after
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if !preceded_by_ident && !name.is_empty() {
            used.insert(name);
        }
        rest = after;
    }
    used
}

/// What is wrong with `module` using `used`, if anything.
fn violation(module: &str, used: &str) -> Option<String> {
    if used == module || used == "VERSION" {
        return None;
    }
    if LEAVES.contains(&module) {
        return Some(format!(
            "{module} is a leaf and may use no module, not {used}"
        ));
    }
    if LEAVES.contains(&used) {
        return None;
    }
    let (Some(from), Some(to)) = (layer_of(module), layer_of(used)) else {
        return Some(format!("{module} or {used} is in no layer of LAYERS"));
    };
    if to > from || (module == "commands" && used == "cli") {
        None
    } else {
        Some(format!(
            "{module} may not use {used}: it is not in a lower layer"
        ))
    }
}

#[test]
fn every_import_points_down() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut problems = Vec::new();
    for file in &files {
        let module = module_of(&src, file);
        if ["lib", "main", "layering"].contains(&module.as_str()) {
            continue;
        }
        let text = std::fs::read_to_string(file).expect("readable source");
        for used in used_modules(&text) {
            if let Some(problem) = violation(&module, &used) {
                problems.push(format!("{}: {problem}", file.display()));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(files.len() > 30, "the walk found the sources");
}

#[test]
fn the_check_catches_upward_and_unknown_imports() {
    assert!(violation("decide", "fleet").is_some());
    assert!(violation("report", "commands").is_some());
    assert!(violation("cli", "commands").is_some());
    assert!(violation("aws", "config").is_some());
    assert!(violation("progress", "model").is_some());
    assert!(violation("fleet", "newthing").is_some());
    assert!(violation("commands", "cli").is_none());
    assert!(violation("fleet", "decide").is_none());
    assert!(violation("model", "progress").is_none());
    assert_eq!(
        used_modules("use crate::model::X; let y = crate::aws::call(); fn my_crate::z"),
        BTreeSet::from(["aws".to_string(), "model".to_string()])
    );
}
