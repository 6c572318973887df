//! CLI conventions, offline: `--version` with the git commit, examples in `--help`, shell
//! completions that a real bash completes with, man pages that groff renders, and
//! `ECR_FLEET_CONFIG` as the fallback of `--config`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::cli::{ecr_fleet, Cli};

/// No AWS endpoint is needed; a closed port proves no call is attempted.
const NO_AWS: &str = "http://127.0.0.1:9";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(root())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[test]
fn version_names_the_git_commit() {
    let out = ecr_fleet(&["--version"], NO_AWS, &root());
    out.assert_code(0);
    let line = out.stdout.trim();
    let version = format!("ecr-fleet {}", env!("CARGO_PKG_VERSION"));
    assert!(line.starts_with(&version), "{line}");
    // The build script reads the commit only from a checkout of this repository.
    let in_checkout = git(&["rev-parse", "--show-toplevel"])
        .and_then(|t| Path::new(&t).canonicalize().ok())
        .is_some_and(|t| root().canonicalize().is_ok_and(|r| r == t));
    match git(&["rev-parse", "--short", "HEAD"]) {
        Some(commit) if in_checkout => assert_eq!(line, format!("{version} ({commit})")),
        _ => assert_eq!(line, version),
    }
}

#[test]
fn help_shows_examples_for_the_main_commands() {
    let out = ecr_fleet(&["--help"], NO_AWS, &root());
    out.assert_code(0);
    for want in [
        "Examples:",
        "ecr-fleet report merge",
        "Exit codes:",
        "ECR_FLEET_CONFIG",
    ] {
        assert!(out.stdout.contains(want), "{want}: {}", out.stdout);
    }
    for (command, example) in [
        (vec!["plan"], "ecr-fleet plan --shard 1/3"),
        (vec!["apply"], "ecr-fleet apply --yes --use-builtin-default"),
        (vec!["audit"], "ecr-fleet audit --output junit"),
        (vec!["restore"], "ecr-fleet restore --backup"),
        (
            vec!["report", "merge"],
            "ecr-fleet report merge plan-1.json plan-2.json",
        ),
        (vec!["completions"], "ecr-fleet completions bash"),
    ] {
        let mut args = command.clone();
        args.push("--help");
        let out = ecr_fleet(&args, NO_AWS, &root());
        out.assert_code(0);
        assert!(
            out.stdout.contains("Examples:"),
            "{command:?}: {}",
            out.stdout
        );
        assert!(out.stdout.contains(example), "{command:?}: {}", out.stdout);
    }
    let out = ecr_fleet(&["plan", "--help"], NO_AWS, &root());
    assert!(
        out.stdout.contains("[env: ECR_FLEET_CONFIG=]"),
        "{}",
        out.stdout
    );
}

/// What bash's programmable completion offers for `words` (the last one being completed).
fn bash_complete(script: &Path, words: &[&str]) -> Vec<String> {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let cword = words.len() - 1;
    let prev = if cword > 0 { words[cword - 1] } else { "" };
    let program = format!(
        "source '{}'; COMP_WORDS=({}); COMP_CWORD={cword}; _ecr__fleet ecr-fleet '{}' '{prev}'; \
         printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        quoted.join(" "),
        words[cword]
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(&program)
        .output()
        .expect("run bash");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn bash_completion_completes_commands_flags_and_values() {
    let dir = tempfile::tempdir().unwrap();
    let out = ecr_fleet(&["completions", "bash"], NO_AWS, dir.path());
    out.assert_code(0);
    let script = dir.path().join("ecr-fleet.bash");
    std::fs::write(&script, &out.stdout).unwrap();
    let syntax = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        syntax.status.success(),
        "{}",
        String::from_utf8_lossy(&syntax.stderr)
    );

    assert_eq!(bash_complete(&script, &["ecr-fleet", "pl"]), ["plan"]);
    assert_eq!(
        bash_complete(&script, &["ecr-fleet", "plan", "--sh"]),
        ["--shard"]
    );
    assert_eq!(
        bash_complete(&script, &["ecr-fleet", "plan", "--output", "j"]),
        ["json", "junit"]
    );
    assert_eq!(
        bash_complete(&script, &["ecr-fleet", "apply", "--use-b"]),
        ["--use-builtin-default"]
    );
    assert_eq!(
        bash_complete(&script, &["ecr-fleet", "report", "m"]),
        ["merge"]
    );
    assert_eq!(
        bash_complete(&script, &["ecr-fleet", "completions", "fi"]),
        ["fish"]
    );
}

#[test]
fn zsh_fish_and_powershell_completions_name_every_command() {
    for (shell, marker) in [
        ("zsh", "#compdef ecr-fleet"),
        ("fish", "complete -c ecr-fleet"),
        ("powershell", "Register-ArgumentCompleter"),
        ("elvish", "edit:completion:arg-completer[ecr-fleet]"),
    ] {
        let out = ecr_fleet(&["completions", shell], NO_AWS, &root());
        out.assert_code(0);
        assert!(out.stdout.contains(marker), "{shell}");
        for word in [
            "plan", "apply", "audit", "restore", "merge", "shard", "junit", "html",
        ] {
            assert!(out.stdout.contains(word), "{shell} lacks {word}");
        }
    }
    let out = ecr_fleet(&["completions", "tcsh"], NO_AWS, &root());
    out.assert_code(2);
    assert!(
        out.stderr.contains("invalid value 'tcsh'"),
        "{}",
        out.stderr
    );
}

/// The page as `groff -man` renders it, with every warning enabled; panics on a warning.
fn render_man(page: &Path) -> Option<String> {
    let out = Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-rLL=120n"])
        .arg(page)
        .output()
        .ok()?;
    let warnings = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && warnings.is_empty(),
        "{}: {warnings}",
        page.display()
    );
    // Drop the overstrike bold and underline of the tty device.
    let text = String::from_utf8_lossy(&out.stdout);
    let mut plain = String::new();
    for c in text.chars() {
        if c == '\u{8}' {
            plain.pop();
        } else {
            plain.push(c);
        }
    }
    Some(plain)
}

#[test]
fn man_pages_render_with_every_command_and_example() {
    let dir = tempfile::tempdir().unwrap();
    let out = ecr_fleet(&["man"], NO_AWS, dir.path());
    out.assert_code(0);
    assert!(out.stdout.contains("\n.TH ecr-fleet 1 "), "{}", out.stdout);
    let page = dir.path().join("ecr-fleet.1");
    std::fs::write(&page, &out.stdout).unwrap();

    let out = ecr_fleet(&["man", "--dir", "pages"], NO_AWS, dir.path());
    out.assert_code(2);
    std::fs::create_dir(dir.path().join("pages")).unwrap();
    let out = ecr_fleet(&["man", "--dir", "pages"], NO_AWS, dir.path());
    out.assert_code(0);
    let mut names: Vec<String> = std::fs::read_dir(dir.path().join("pages"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for want in [
        "ecr-fleet.1",
        "ecr-fleet-apply.1",
        "ecr-fleet-audit.1",
        "ecr-fleet-plan.1",
        "ecr-fleet-report-merge.1",
        "ecr-fleet-restore.1",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
    }
    assert_eq!(
        std::fs::read_to_string(dir.path().join("pages/ecr-fleet.1")).unwrap(),
        std::fs::read_to_string(&page).unwrap(),
        "man and man --dir write the same main page"
    );

    let Some(text) = render_man(&page) else {
        eprintln!("groff not installed: rendering not checked");
        return;
    };
    let at = |heading: &str| {
        text.find(&format!("\n{heading}\n"))
            .unwrap_or_else(|| panic!("{heading} missing:\n{text}"))
    };
    assert!(
        at("NAME") < at("SYNOPSIS") && at("SUBCOMMANDS") < at("EXAMPLES"),
        "{text}"
    );
    assert!(
        at("EXAMPLES") < at("EXIT STATUS") && at("ENVIRONMENT") < at("VERSION"),
        "{text}"
    );
    // Examples keep their lines (no-fill), with real hyphens.
    assert!(
        text.lines().any(|l| l.trim()
            == "ecr-fleet report merge plan-1.json plan-2.json plan-3.json > plan.json"),
        "{text}"
    );
    let merge = render_man(&dir.path().join("pages/ecr-fleet-report-merge.1")).unwrap();
    assert!(
        merge.contains("ecr-fleet report merge plan-1.json plan-2.json --report plan.json"),
        "{merge}"
    );
}

#[test]
fn ecr_fleet_config_is_the_fallback_of_config() {
    let dir = tempfile::tempdir().unwrap();
    let cli = Cli::new(NO_AWS, dir.path()).env("ECR_FLEET_CONFIG", "from-env.toml");
    // plan reads the named file before any AWS call.
    let out = cli.run(&["plan"]);
    out.assert_code(2);
    assert!(out.stderr.contains("from-env.toml"), "{}", out.stderr);

    let config = |region: &str| {
        format!(
            "regions = [\"{region}\"]\n[[match]]\ntemplate = \"untagged-cleanup\"\nnames = [\"*\"]\n"
        )
    };
    std::fs::write(dir.path().join("from-env.toml"), config("eu-west-1")).unwrap();
    let out = cli.run(&["validate"]);
    out.assert_code(0);
    assert!(out.stdout.contains("from-env.toml: ok"), "{}", out.stdout);
    assert!(out.stdout.contains("regions: eu-west-1"), "{}", out.stdout);

    // --config wins.
    std::fs::write(dir.path().join("flag.toml"), config("us-west-2")).unwrap();
    let out = cli.run(&["validate", "--config", "flag.toml"]);
    out.assert_code(0);
    assert!(out.stdout.contains("flag.toml: ok"), "{}", out.stdout);
    assert!(!out.stdout.contains("from-env.toml"), "{}", out.stdout);
}

/// Runs the package's build script, compiled on its own, as cargo would for a package in
/// `manifest_dir`; returns the version string it hands to the compiler.
fn build_script_version(manifest_dir: &Path, env: &[(&str, &str)]) -> String {
    let bin = tempfile::tempdir().unwrap();
    let exe = bin.path().join("build-script");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let compiled = Command::new(rustc)
        .args(["--edition", "2021", "-o"])
        .arg(&exe)
        .arg(root().join("build.rs"))
        .output()
        .expect("run rustc");
    assert!(
        compiled.status.success(),
        "{}",
        String::from_utf8_lossy(&compiled.stderr)
    );
    let out = Command::new(&exe)
        .env("CARGO_PKG_VERSION", "1.2.3")
        .env("CARGO_MANIFEST_DIR", manifest_dir)
        .env_remove("ECR_FLEET_GIT_COMMIT")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("cargo:rustc-env=ECR_FLEET_VERSION="))
        .unwrap_or_else(|| panic!("no version in {stdout}"))
        .to_string()
}

#[test]
fn version_falls_back_gracefully_outside_a_git_checkout() {
    // An unpacked tarball: no git, no commit.
    let plain = tempfile::tempdir().unwrap();
    assert_eq!(build_script_version(plain.path(), &[]), "1.2.3");
    // A package from crates.io records the commit it was published from.
    std::fs::write(
        plain.path().join(".cargo_vcs_info.json"),
        "{\n  \"git\": {\n    \"sha1\": \"0123456789abcdef0123456789abcdef01234567\"\n  },\n  \"path_in_vcs\": \"\"\n}\n",
    )
    .unwrap();
    assert_eq!(build_script_version(plain.path(), &[]), "1.2.3 (0123456)");
    // A release build may name the commit itself.
    assert_eq!(
        build_script_version(plain.path(), &[("ECR_FLEET_GIT_COMMIT", "abc1234")]),
        "1.2.3 (abc1234)"
    );
}
