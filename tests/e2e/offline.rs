//! Commands that need no AWS: validate and preview, on the shipped files and on bad input.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::cli::ecr_fleet;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// No AWS endpoint is needed; a closed port proves no call is attempted.
const NO_AWS: &str = "http://127.0.0.1:9";

#[test]
fn shipped_templates_and_example_config_are_valid() {
    let root = repo_root();
    let mut args = vec!["validate".to_string(), "--policy".to_string()];
    for entry in std::fs::read_dir(root.join("policies")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            args.push(path.display().to_string());
        }
    }
    assert!(args.len() >= 8, "the starter library has six templates");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = ecr_fleet(&args, NO_AWS, &root);
    out.assert_code(0);
    assert_eq!(
        out.stdout.matches(": ok (").count(),
        args.len() - 2,
        "{}",
        out.stdout
    );

    let out = ecr_fleet(
        &["validate", "--config", "config.example.toml"],
        NO_AWS,
        &root,
    );
    out.assert_code(0);
    assert!(
        out.stdout.contains("config.example.toml: ok"),
        "{}",
        out.stdout
    );
}

#[test]
fn invalid_policy_names_rule_priority_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let bad = r#"{"rules":[
 {"rulePriority":1,"description":"first untagged rule of the standard class","selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":7},"action":{"type":"expire"}},
 {"rulePriority":3,"description":"a second untagged rule: ECR allows one per storage class","selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":5},"action":{"type":"expire"}}
]}"#;
    std::fs::write(dir.path().join("bad.json"), bad).unwrap();
    std::fs::write(dir.path().join("notjson.json"), "{\n  \"rules\": [,]\n}").unwrap();
    let out = ecr_fleet(
        &["validate", "--policy", "bad.json", "notjson.json"],
        NO_AWS,
        dir.path(),
    );
    out.assert_code(2);
    assert!(
        out.stderr.contains("bad.json: invalid lifecycle policy"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("rule 2.7"), "{}", out.stderr);
    assert!(out.stderr.contains("rulePriority 3"), "{}", out.stderr);
    assert!(out.stderr.contains("notjson.json:2:"), "{}", out.stderr);
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

#[test]
fn preview_evaluates_offline_in_ecr_preview_shape() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "policy.json",
        r#"{"rules":[
 {"rulePriority":1,"description":"keep releases","selection":{"tagStatus":"tagged","tagPatternList":["v*"],"countType":"imageCountMoreThan","countNumber":9999},"action":{"type":"expire"}},
 {"rulePriority":2,"description":"untagged after a week","selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":7},"action":{"type":"expire"}},
 {"rulePriority":3,"description":"everything else after 30 days","selection":{"tagStatus":"any","countType":"sinceImagePushed","countUnit":"days","countNumber":30},"action":{"type":"expire"}}
]}"#,
    );
    write(
        dir.path(),
        "images.json",
        r#"{"imageDetails":[
 {"imageDigest":"sha256:aa","imageTags":["v1.0.0","sha-1"],"imagePushedAt":"2026-01-01T00:00:00Z","imageSizeInBytes":100},
 {"imageDigest":"sha256:bb","imagePushedAt":"2026-11-01T00:00:00Z","imageSizeInBytes":200},
 {"imageDigest":"sha256:cc","imageTags":["sha-2"],"imagePushedAt":1760000000,"imageSizeInBytes":300},
 {"imageDigest":"sha256:dd","imageTags":["sha-3"],"imagePushedAt":"2026-11-20T00:00:00Z","imageSizeInBytes":400}
]}"#,
    );
    let out = ecr_fleet(
        &[
            "preview",
            "--policy",
            "policy.json",
            "--images",
            "images.json",
            "--now",
            "2026-11-22T00:00:00Z",
            "--output",
            "json",
        ],
        NO_AWS,
        dir.path(),
    );
    out.assert_code(0);
    let v: Value = out.json();
    let results = v["previewResults"].as_array().unwrap();
    let digests: Vec<&str> = results
        .iter()
        .map(|r| r["imageDigest"].as_str().unwrap())
        .collect();
    // aa: shielded by the keep rule; bb: untagged, 21 days old; cc: tagged, ~40 days old; dd: young.
    assert_eq!(digests, ["sha256:bb", "sha256:cc"], "{v}");
    assert_eq!(results[0]["appliedRulePriority"], 2);
    assert_eq!(results[1]["appliedRulePriority"], 3);
    assert_eq!(results[0]["action"]["type"], "EXPIRE");
    assert_eq!(v["summary"]["expiringImageTotalCount"], 2);

    let table = ecr_fleet(
        &[
            "preview",
            "--policy",
            "policy.json",
            "--images",
            "images.json",
            "--now",
            "2026-11-22T00:00:00Z",
        ],
        NO_AWS,
        dir.path(),
    );
    table.assert_code(0);
    assert!(
        table.stdout.contains("2 of 4 images affected: 2 expire"),
        "{}",
        table.stdout
    );

    let bad_now = ecr_fleet(
        &[
            "preview",
            "--policy",
            "policy.json",
            "--images",
            "images.json",
            "--now",
            "yesterday",
        ],
        NO_AWS,
        dir.path(),
    );
    bad_now.assert_code(2);
    write(
        dir.path(),
        "bad-images.json",
        r#"{"imageDetails":[{"imageDigest":"sha256:aa","imagePushedAt":"soon"}]}"#,
    );
    let bad_images = ecr_fleet(
        &[
            "preview",
            "--policy",
            "policy.json",
            "--images",
            "bad-images.json",
        ],
        NO_AWS,
        dir.path(),
    );
    bad_images.assert_code(2);
    assert!(
        bad_images.stderr.contains("imageDetails[0].imagePushedAt"),
        "{}",
        bad_images.stderr
    );
}
