//! Preview input (describe-images JSON), preview output, impact totals and coverage findings.

mod common;

use common::*;
use ecr_lifecycle::{
    coverage, evaluate, impact, parse_images, preview_json, ActionType, Coverage, Image,
    ImageAction, ImageStatus, ImagesError, ImpactTotals,
};
use serde_json::json;

const DESCRIBE_IMAGES: &str = r#"{
    "imageDetails": [
        {
            "registryId": "111111111111",
            "repositoryName": "team/api",
            "imageDigest": "sha256:aaa",
            "imageTags": ["v1", "prod"],
            "imageSizeInBytes": 52428800,
            "imagePushedAt": "2025-06-01T12:30:00.250000+02:00",
            "imageManifestMediaType": "application/vnd.oci.image.index.v1+json",
            "lastRecordedPullTime": "2025-12-01T08:00:00Z",
            "imageStatus": "ACTIVE"
        },
        {
            "imageDigest": "sha256:bbb",
            "imagePushedAt": 1748779200,
            "imageStatus": "ARCHIVED",
            "lastArchivedAt": 1751371200.5,
            "lastActivatedAt": null,
            "referencedByManifestLists": ["sha256:aaa"]
        },
        {
            "imageDigest": "sha256:ccc",
            "imagePushedAt": "2025-01-01T00:00:00Z",
            "imageStatus": "ACTIVATING",
            "lastActivatedAt": "2025-12-31T23:00:00Z"
        }
    ]
}"#;

#[test]
fn parse_images_reads_iso_and_epoch_timestamps_and_optional_fields() {
    let images = parse_images(DESCRIBE_IMAGES).unwrap();
    assert_eq!(images.len(), 3);

    let first = &images[0];
    assert_eq!(first.digest, "sha256:aaa");
    assert_eq!(first.tags, tags(&["v1", "prod"]));
    assert_eq!(first.size_bytes, 52_428_800);
    assert_eq!(first.pushed_at.to_string(), "2025-06-01T10:30:00.25Z");
    assert_eq!(
        first.last_pulled_at.unwrap().to_string(),
        "2025-12-01T08:00:00Z"
    );
    assert_eq!(first.status, ImageStatus::Active);
    assert_eq!(
        first.manifest_media_type.as_deref(),
        Some("application/vnd.oci.image.index.v1+json")
    );
    assert!(first.referenced_by_manifest_lists.is_empty());

    let second = &images[1];
    assert!(second.tags.is_empty());
    assert_eq!(second.size_bytes, 0);
    assert_eq!(second.pushed_at.to_string(), "2025-06-01T12:00:00Z");
    assert_eq!(second.status, ImageStatus::Archived);
    assert_eq!(
        second.last_archived_at.unwrap().to_string(),
        "2025-07-01T12:00:00.5Z"
    );
    assert_eq!(second.last_activated_at, None);
    assert_eq!(second.referenced_by_manifest_lists, tags(&["sha256:aaa"]));

    assert_eq!(images[2].status, ImageStatus::Activating);
    assert!(images[2].last_activated_at.is_some());
}

#[test]
fn parse_images_defaults_status_to_active() {
    let images =
        parse_images(r#"{"imageDetails":[{"imageDigest":"d","imagePushedAt":0}]}"#).unwrap();
    assert_eq!(images[0].status, ImageStatus::Active);
    assert_eq!(images[0].pushed_at.to_string(), "1970-01-01T00:00:00Z");
}

fn field_error(text: &str) -> (String, String) {
    match parse_images(text) {
        Err(ImagesError::Field { field, message }) => (field, message),
        other => panic!("expected a field error, got {other:?}"),
    }
}

#[test]
fn parse_images_errors_name_the_index_and_field() {
    let text = r#"{"imageDetails":[
        {"imageDigest":"a","imagePushedAt":"2025-01-01T00:00:00Z"},
        {"imageDigest":"b","imagePushedAt":"2025-01-01T00:00:00Z"},
        {"imageDigest":"c","imagePushedAt":"2025-01-01T00:00:00Z"},
        {"imageDigest":"d","imagePushedAt":"yesterday"}
    ]}"#;
    let error = parse_images(text).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("imageDetails[3].imagePushedAt: "),
        "{error}"
    );

    let (field, _) = field_error(r#"{"imageDetails":[{"imagePushedAt":0}]}"#);
    assert_eq!(field, "imageDetails[0].imageDigest");
    let (field, _) = field_error(r#"{"imageDetails":[{"imageDigest":"d"}]}"#);
    assert_eq!(field, "imageDetails[0].imagePushedAt");
    let (field, _) = field_error(
        r#"{"imageDetails":[{"imageDigest":"d","imagePushedAt":0,"imageTags":["a",1]}]}"#,
    );
    assert_eq!(field, "imageDetails[0].imageTags[1]");
    let (field, _) = field_error(
        r#"{"imageDetails":[{"imageDigest":"d","imagePushedAt":0,"imageSizeInBytes":-5}]}"#,
    );
    assert_eq!(field, "imageDetails[0].imageSizeInBytes");
    let (field, message) = field_error(
        r#"{"imageDetails":[{"imageDigest":"d","imagePushedAt":0,"imageStatus":"GONE"}]}"#,
    );
    assert_eq!(field, "imageDetails[0].imageStatus");
    assert!(message.contains("GONE"));
    let (field, _) = field_error(
        r#"{"imageDetails":[{"imageDigest":"d","imagePushedAt":"2025-01-01T00:00:00"}]}"#,
    );
    assert_eq!(field, "imageDetails[0].imagePushedAt");
    let (field, _) = field_error(r#"{"imageDetails":[{"imageDigest":"d","imagePushedAt":1e300}]}"#);
    assert_eq!(field, "imageDetails[0].imagePushedAt");
    let (field, _) = field_error(r#"{"images":[]}"#);
    assert_eq!(field, "imageDetails");
    let (field, _) = field_error(r#"[]"#);
    assert_eq!(field, "");
}

#[test]
fn parse_images_reports_bad_json_position() {
    match parse_images("{\"imageDetails\": [\n}") {
        Err(ImagesError::Json { line, .. }) => assert_eq!(line, 2),
        other => panic!("{other:?}"),
    }
}

#[test]
fn preview_json_has_the_get_lifecycle_policy_preview_shape() {
    let images = vec![
        image("sha256:keep", &["v2"], 1.0),
        Image {
            size_bytes: 300,
            ..image("sha256:old", &["v1"], 40.0)
        },
        archived("sha256:arch", &[], 400.0, 100.0),
    ];
    let actions = vec![
        ImageAction {
            index: 1,
            action: ActionType::Transition,
            rule_priority: 1,
        },
        ImageAction {
            index: 2,
            action: ActionType::Expire,
            rule_priority: 2,
        },
    ];
    let preview = preview_json(&images, &actions);
    let expected = json!({
        "previewResults": [
            {
                "imageDigest": "sha256:old",
                "imageTags": ["v1"],
                "imagePushedAt": images[1].pushed_at.to_string(),
                "action": {"type": "TRANSITION", "targetStorageClass": "ARCHIVE"},
                "appliedRulePriority": 1,
                "storageClass": "STANDARD"
            },
            {
                "imageDigest": "sha256:arch",
                "imageTags": [],
                "imagePushedAt": images[2].pushed_at.to_string(),
                "action": {"type": "EXPIRE"},
                "appliedRulePriority": 2,
                "storageClass": "ARCHIVE"
            }
        ],
        "summary": {
            "expiringImageTotalCount": 1,
            "transitioningImageTotalCounts": [{"targetStorageClass": "ARCHIVE", "imageTotalCount": 1}]
        }
    });
    assert_eq!(preview, expected);
    // RFC 3339 text.
    assert!(preview["previewResults"][0]["imagePushedAt"]
        .as_str()
        .unwrap()
        .ends_with('Z'));

    assert_eq!(
        impact(&images, &actions),
        ImpactTotals {
            expiring_images: 1,
            expiring_bytes: 1_000,
            transitioning_images: 1,
            transitioning_bytes: 300
        }
    );
}

#[test]
fn preview_json_omits_transition_counts_when_nothing_transitions() {
    let images = vec![image("a", &[], 10.0)];
    let actions = vec![ImageAction {
        index: 0,
        action: ActionType::Expire,
        rule_priority: 1,
    }];
    let preview = preview_json(&images, &actions);
    assert_eq!(preview["summary"], json!({"expiringImageTotalCount": 1}));
    let empty = preview_json(&images, &[]);
    assert_eq!(
        empty,
        json!({"previewResults": [], "summary": {"expiringImageTotalCount": 0}})
    );
}

#[test]
fn end_to_end_from_texts() {
    let policy = valid(&policy(vec![
        rule(1, untagged_days(14), expire()),
        rule(2, any_count(1), transition()),
    ]));
    let images = parse_images(DESCRIBE_IMAGES).unwrap();
    let now: jiff::Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
    // Only the first image is in the standard pool; it is the newest there, so nothing happens.
    assert!(evaluate(&policy, &images, now).is_empty());
}

#[test]
fn coverage_findings() {
    let check = |rules: Vec<serde_json::Value>| coverage(&valid(&policy(rules)));
    assert_eq!(
        check(vec![rule(1, untagged_days(7), expire())]),
        Coverage {
            expires_untagged: true,
            caps_tagged: false
        }
    );
    assert_eq!(
        check(vec![rule(1, prefix_count(&["v"], 10), expire())]),
        Coverage {
            expires_untagged: false,
            caps_tagged: true
        }
    );
    assert_eq!(
        check(vec![rule(1, any_count(10), transition())]),
        Coverage {
            expires_untagged: true,
            caps_tagged: true
        }
    );
    // Archive-class rules alone bound nothing.
    assert_eq!(
        check(vec![rule(
            1,
            json!({"tagStatus": "any", "storageClass": "archive", "countType": "sinceImageTransitioned", "countUnit": "days", "countNumber": 90}),
            expire(),
        )]),
        Coverage {
            expires_untagged: false,
            caps_tagged: false
        }
    );
}
