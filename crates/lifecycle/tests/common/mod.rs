//! Helpers shared by the integration tests.
#![allow(dead_code)]

use ecr_lifecycle::{parse_policy, Image, ImageStatus, Policy, PolicyError, Violation};
use jiff::{SignedDuration, Timestamp};
use serde_json::{json, Value};

/// Serialises a policy document and pads it with trailing spaces to the 100-character minimum,
/// so tests of other rules do not trip over rule 1.1's length limit.
pub fn text(document: &Value) -> String {
    let mut text = document.to_string();
    while text.chars().count() < 100 {
        text.push(' ');
    }
    text
}

pub fn policy(rules: Vec<Value>) -> String {
    text(&json!({ "rules": rules }))
}

pub fn rule(priority: i64, selection: Value, action: Value) -> Value {
    json!({"rulePriority": priority, "selection": selection, "action": action})
}

pub fn expire() -> Value {
    json!({"type": "expire"})
}

pub fn transition() -> Value {
    json!({"type": "transition", "targetStorageClass": "archive"})
}

pub fn untagged_days(days: u64) -> Value {
    json!({"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": days})
}

pub fn any_count(keep: u64) -> Value {
    json!({"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": keep})
}

pub fn prefix_count(prefixes: &[&str], keep: u64) -> Value {
    json!({"tagStatus": "tagged", "tagPrefixList": prefixes, "countType": "imageCountMoreThan", "countNumber": keep})
}

pub fn valid(text: &str) -> Policy {
    match parse_policy(text) {
        Ok(policy) => policy,
        Err(error) => panic!("expected a valid policy, got:\n{error}\n{text}"),
    }
}

pub fn violations(text: &str) -> Vec<Violation> {
    match parse_policy(text) {
        Err(PolicyError::Invalid(violations)) => violations,
        other => panic!("expected violations, got {other:?}\n{text}"),
    }
}

/// Asserts that a violation of `rule` at `field` is among the ones reported.
pub fn assert_violation(text: &str, rule: &str, field: &str) -> Violation {
    let found = violations(text);
    match found.iter().find(|v| v.rule == rule && v.field == field) {
        Some(violation) => violation.clone(),
        None => panic!("no violation of rule {rule} at {field:?}; found:\n{found:#?}"),
    }
}

/// A fixed "now" for evaluation tests.
pub fn now() -> Timestamp {
    "2026-01-01T00:00:00Z".parse().unwrap()
}

pub fn days_ago(days: f64) -> Timestamp {
    now() - SignedDuration::from_secs_f64(days * 86_400.0)
}

pub fn tags(list: &[&str]) -> Vec<String> {
    list.iter().map(|t| t.to_string()).collect()
}

/// An active image pushed `age_days` ago.
pub fn image(digest: &str, tag_list: &[&str], age_days: f64) -> Image {
    Image {
        digest: digest.to_string(),
        tags: tags(tag_list),
        pushed_at: days_ago(age_days),
        size_bytes: 1_000,
        last_pulled_at: None,
        status: ImageStatus::Active,
        last_archived_at: None,
        last_activated_at: None,
        manifest_media_type: None,
        referenced_by_manifest_lists: Vec::new(),
    }
}

/// An archived image pushed `age_days` ago and archived `archived_days` ago.
pub fn archived(digest: &str, tag_list: &[&str], age_days: f64, archived_days: f64) -> Image {
    Image {
        status: ImageStatus::Archived,
        last_archived_at: Some(days_ago(archived_days)),
        ..image(digest, tag_list, age_days)
    }
}
