//! Arbitrary text through the policy parser, the canonical form and, when the text is a valid
//! policy, the evaluator. Nothing may panic, and a few invariants must hold.

#![no_main]

use ecr_lifecycle::{
    canonical_pretty, canonicalize, evaluate, parse_images, parse_policy, semantically_equal,
    Image, ImageStatus,
};
use jiff::{SignedDuration, Timestamp};
use libfuzzer_sys::fuzz_target;

fn images(now: Timestamp) -> Vec<Image> {
    let ago = |days: i64| now - SignedDuration::from_hours(days * 24);
    let image = |digest: &str, tags: &[&str], days: i64| Image {
        digest: digest.to_string(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        pushed_at: ago(days),
        size_bytes: 1_000,
        last_pulled_at: None,
        status: ImageStatus::Active,
        last_archived_at: None,
        last_activated_at: None,
        manifest_media_type: None,
        referenced_by_manifest_lists: Vec::new(),
    };
    vec![
        image("sha256:01", &["prod-1", "v1.0.0"], 400),
        image("sha256:02", &["dev-7", "sha-abc"], 40),
        image("sha256:03", &[], 10),
        image("sha256:04", &["latest"], 1),
        Image {
            referenced_by_manifest_lists: vec!["sha256:04".into()],
            ..image("sha256:05", &[], 50)
        },
        Image {
            last_pulled_at: Some(ago(100)),
            last_activated_at: Some(ago(60)),
            ..image("sha256:06", &["release-2024"], 300)
        },
        Image {
            status: ImageStatus::Archived,
            last_archived_at: Some(ago(120)),
            ..image("sha256:07", &["v0.9"], 500)
        },
        Image {
            status: ImageStatus::Activating,
            ..image("sha256:08", &["v0.8"], 600)
        },
    ]
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };

    // The canonical form is a fixed point and equal to itself.
    if let Ok(canonical) = canonicalize(text) {
        let pretty = canonical_pretty(text).expect("canonical JSON prints");
        assert_eq!(
            canonicalize(&pretty).expect("pretty output parses"),
            canonical
        );
    }
    assert!(semantically_equal(text, text));

    let _ = parse_images(text);

    let Ok(policy) = parse_policy(text) else {
        return;
    };
    // A valid policy serialises to a document that parses back to the same policy.
    let written = serde_json::to_string(&policy).expect("policy serialises");
    assert_eq!(parse_policy(&written).as_ref(), Ok(&policy), "{written}");

    let now: Timestamp = "2026-01-01T00:00:00Z".parse().expect("valid timestamp");
    let images = images(now);
    let actions = evaluate(&policy, &images, now);
    for pair in actions.windows(2) {
        assert!(pair[0].index < pair[1].index);
    }
    for action in &actions {
        assert!(action.index < images.len());
        assert!(policy
            .rules
            .iter()
            .any(|r| r.rule_priority == action.rule_priority));
    }
});
