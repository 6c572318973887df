//! Puts the git commit into `--version`: `ECR_FLEET_VERSION` is `<version> (<commit>)` in a git
//! checkout of this repository, `<version> (<commit>)` from `.cargo_vcs_info.json` in a package
//! published from git, and plain `<version>` anywhere else (a tarball, a vendored copy, no git).
//! `ECR_FLEET_GIT_COMMIT` set in the build environment overrides what git says.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=ECR_FLEET_GIT_COMMIT");

    let commit = std::env::var("ECR_FLEET_GIT_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .map(|c| c.trim().to_string())
        .or_else(|| git_commit(&manifest_dir))
        .or_else(|| published_commit(&manifest_dir));
    let full = match commit {
        Some(c) => format!("{version} ({c})"),
        None => version,
    };
    println!("cargo:rustc-env=ECR_FLEET_VERSION={full}");
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!text.is_empty()).then_some(text)
}

/// The short commit of HEAD, only when the package root is the top of a git work tree: a copy
/// vendored inside someone else's repository must not report that repository's commit.
fn git_commit(dir: &Path) -> Option<String> {
    let top = PathBuf::from(git(dir, &["rev-parse", "--show-toplevel"])?);
    let same = match (top.canonicalize(), dir.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if !same {
        return None;
    }
    // Rebuild when HEAD moves: HEAD itself (a checkout of another branch) and the branch it
    // points at (a commit), loose or packed. A worktree keeps HEAD in its own git dir and the
    // refs in the common one.
    let absolute = |p: String| {
        let p = PathBuf::from(p);
        if p.is_absolute() {
            p
        } else {
            dir.join(p)
        }
    };
    let git_dir = absolute(git(dir, &["rev-parse", "--git-dir"])?);
    let common_dir = git(dir, &["rev-parse", "--git-common-dir"])
        .map(absolute)
        .unwrap_or_else(|| git_dir.clone());
    println!("cargo:rerun-if-changed={}", git_dir.join("HEAD").display());
    if let Some(reference) = git(dir, &["symbolic-ref", "-q", "HEAD"]) {
        let loose = common_dir.join(&reference);
        if loose.exists() {
            println!("cargo:rerun-if-changed={}", loose.display());
        }
    }
    let packed = common_dir.join("packed-refs");
    if packed.exists() {
        println!("cargo:rerun-if-changed={}", packed.display());
    }
    git(dir, &["rev-parse", "--short", "HEAD"])
}

/// `cargo package` records the commit it packaged in `.cargo_vcs_info.json`.
fn published_commit(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join(".cargo_vcs_info.json")).ok()?;
    // {"git": {"sha1": "<40 hex>"}, ...}: pick the value without a JSON dependency.
    let at = text.find("\"sha1\"")?;
    let rest = &text[at + 6..];
    let start = rest.find('"')? + 1;
    let sha: String = rest[start..]
        .chars()
        .take_while(|c| c.is_ascii_hexdigit())
        .collect();
    (sha.len() >= 7).then(|| sha[..7].to_string())
}
