//! The published report schema (docs/report.schema.json) itself: it compiles, and it tells a
//! conforming report from a drifted one. Every test that reads a report through
//! `CliOutput::json()` also checks that report against it.

use serde_json::{json, Value};

use crate::support::cli::{report_schema_errors, report_validator, REPORT_SCHEMA};

/// The smallest report a `plan` can print: one unmatched repository, nothing skipped.
fn minimal_report() -> Value {
    json!({
        "schema_version": 1,
        "command": "plan",
        "started_at": "2026-11-22T10:00:00Z",
        "finished_at": "2026-11-22T10:00:01Z",
        "summary": {
            "accounts": 1,
            "inactive_accounts": 0,
            "regions": 1,
            "repositories": 1,
            "outcomes": {
                "create": 0, "update": 0, "unchanged": 0, "excluded": 0,
                "unmatched": 1, "blocked": 0, "error": 0, "gone": 0
            },
            "skipped": 0,
            "api_calls": {"ecr:DescribeRepositories": 1}
        },
        "repositories": [{
            "account_id": "123456789012",
            "region": "us-east-1",
            "repository": "team/api",
            "template": null,
            "outcome": "unmatched",
            "applied": false,
            "diff": null,
            "error": null
        }],
        "skipped": []
    })
}

#[test]
fn report_schema_compiles_against_the_2020_12_meta_schema() {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(REPORT_SCHEMA),
    )
    .unwrap();
    let schema: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    if let Err(e) = jsonschema::meta::validate(&schema) {
        panic!("{REPORT_SCHEMA} is not a valid schema: {e}");
    }
    // Compiling also resolves every internal $ref; this panics if one dangles.
    report_validator();
}

#[test]
fn minimal_report_passes() {
    let errors = report_schema_errors(&minimal_report());
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

#[test]
fn unknown_outcome_fails_at_its_path() {
    let mut report = minimal_report();
    report["repositories"][0]["outcome"] = json!("deleted");
    let errors = report_schema_errors(&report);
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("/repositories/0/outcome: ")),
        "{errors:?}"
    );
}

#[test]
fn undeclared_field_fails() {
    let mut report = minimal_report();
    report["summary"]["api_errors"] = json!(0);
    let errors = report_schema_errors(&report);
    assert!(
        errors.iter().any(|e| e.starts_with("/summary: ")),
        "{errors:?}"
    );
}
