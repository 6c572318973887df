//! Evaluation (section 5) and the surprising behaviours of section 6, each on images built to
//! match the description in RULES.md.

mod common;

use common::*;
use ecr_lifecycle::{evaluate, ActionType, Image, ImageAction, ImageStatus, Policy};
use serde_json::json;

/// Runs the policy and returns (digest, action, priority) for every acted image.
fn run(policy: &Policy, images: &[Image]) -> Vec<(String, ActionType, i64)> {
    let actions = evaluate(policy, images, now());
    actions
        .iter()
        .map(|a| (images[a.index].digest.clone(), a.action, a.rule_priority))
        .collect()
}

fn digests(policy: &Policy, images: &[Image]) -> Vec<String> {
    run(policy, images).into_iter().map(|(d, _, _)| d).collect()
}

fn expired(list: &[(&str, i64)]) -> Vec<(String, ActionType, i64)> {
    list.iter()
        .map(|(d, p)| (d.to_string(), ActionType::Expire, *p))
        .collect()
}

// ---------------------------------------------------------------- worked examples (5.6)

#[test]
fn multiple_rules_example_a() {
    // Rule 1 keeps 1 `prod` image, rule 2 keeps 1 `beta` image.
    let policy = valid(&policy(vec![
        rule(1, prefix_count(&["prod"], 1), expire()),
        rule(2, prefix_count(&["beta"], 1), expire()),
    ]));
    let images = vec![
        image("A", &["beta-1", "prod-1"], 10.0),
        image("B", &["beta-2", "prod-2"], 9.0),
        image("C", &["beta-3"], 8.0),
    ];
    // Rule 1 keeps B and expires A. Rule 2 keeps C and picks A and B, but A is taken and B
    // matched rule 1's selection, so nothing more happens: only A expires.
    assert_eq!(run(&policy, &images), expired(&[("A", 1)]));
}

#[test]
fn all_images_example_b() {
    let policy = valid(&policy(vec![
        rule(1, prefix_count(&["alpha"], 1), expire()),
        rule(
            2,
            json!({"tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 1}),
            expire(),
        ),
        rule(3, any_count(1), expire()),
    ]));
    let images = vec![
        image("A", &["alpha-1"], 12.0),
        image("B", &["alpha-2"], 11.0),
        image("C", &[], 10.0),
        image("D", &["beta-1"], 9.0),
        image("E", &[], 8.0),
    ];
    // Rule 3 keeps E (the newest image, although the untagged rule claimed it) and can act
    // only on D. If claimed images were not counted, rule 3 would keep D instead.
    assert_eq!(
        run(&policy, &images),
        expired(&[("A", 1), ("C", 2), ("D", 3)])
    );
}

// ---------------------------------------------------------------- basics of section 5

#[test]
fn rules_run_in_priority_order_not_document_order() {
    // Written in reverse order: priority 1 still wins the image.
    let policy = valid(&policy(vec![
        rule(2, any_count(1), transition()),
        rule(1, untagged_days(1), expire()),
    ]));
    let images = vec![image("new", &[], 0.5), image("old", &[], 5.0)];
    // Priority 1 expires `old`; priority 2 keeps `new` and cannot touch the claimed `old`.
    assert_eq!(run(&policy, &images), expired(&[("old", 1)]));
}

#[test]
fn at_most_one_action_per_image_and_output_sorted_by_index() {
    let policy = valid(&policy(vec![
        rule(1, prefix_count(&["a"], 1), expire()),
        rule(2, any_count(1), transition()),
    ]));
    let images = vec![
        image("x", &["b"], 3.0),
        image("a-old", &["a1"], 2.0),
        image("a-new", &["a2"], 1.0),
        image("y", &["b"], 0.5),
    ];
    let actions = evaluate(&policy, &images, now());
    assert_eq!(
        actions,
        vec![
            ImageAction {
                index: 0,
                action: ActionType::Transition,
                rule_priority: 2
            },
            ImageAction {
                index: 1,
                action: ActionType::Expire,
                rule_priority: 1
            },
        ]
    );
}

#[test]
fn count_rule_does_nothing_at_or_below_the_limit() {
    let policy = valid(&policy(vec![rule(1, any_count(3), expire())]));
    let images = vec![
        image("a", &[], 1.0),
        image("b", &["x"], 2.0),
        image("c", &[], 3.0),
    ];
    assert!(run(&policy, &images).is_empty());
}

#[test]
fn count_rule_keeps_the_newest() {
    let policy = valid(&policy(vec![rule(1, any_count(2), expire())]));
    let images = vec![
        image("d", &[], 4.0),
        image("a", &[], 1.0),
        image("c", &[], 3.0),
        image("b", &[], 2.0),
    ];
    assert_eq!(digests(&policy, &images), vec!["d", "c"]);
}

#[test]
fn equal_push_times_break_ties_by_digest() {
    // Assumption 7.5: the smaller digest ranks as newer.
    let policy = valid(&policy(vec![rule(1, any_count(1), expire())]));
    let images = vec![image("sha256:b", &[], 1.0), image("sha256:a", &[], 1.0)];
    assert_eq!(digests(&policy, &images), vec!["sha256:b"]);
    let reversed: Vec<Image> = images.into_iter().rev().collect();
    assert_eq!(digests(&policy, &reversed), vec!["sha256:b"]);
}

#[test]
fn age_boundary_is_strict() {
    let policy = valid(&policy(vec![rule(1, untagged_days(7), expire())]));
    let mut exactly = image("exact", &[], 0.0);
    exactly.pushed_at = now() - jiff::SignedDuration::from_hours(7 * 24);
    let mut just_over = image("over", &[], 0.0);
    just_over.pushed_at = now() - jiff::SignedDuration::from_secs(7 * 86_400 + 1);
    assert_eq!(digests(&policy, &[exactly, just_over]), vec!["over"]);
}

#[test]
fn since_image_pulled_reference_times_6_7() {
    let policy = valid(&policy(vec![rule(
        1,
        json!({"tagStatus": "any", "countType": "sinceImagePulled", "countUnit": "days", "countNumber": 30}),
        transition(),
    )]));
    // Never pulled: ages from the push.
    let never_old = image("never-old", &["a"], 40.0);
    let never_new = image("never-new", &["a"], 20.0);
    // Pulled recently: kept although pushed long ago.
    let pulled_recently = Image {
        last_pulled_at: Some(days_ago(5.0)),
        ..image("pulled-recently", &["a"], 400.0)
    };
    let pulled_long_ago = Image {
        last_pulled_at: Some(days_ago(60.0)),
        ..image("pulled-long-ago", &["a"], 400.0)
    };
    // Restored after the last pull and not pulled since: ages from the restore.
    let restored_recently = Image {
        last_pulled_at: Some(days_ago(200.0)),
        last_activated_at: Some(days_ago(10.0)),
        ..image("restored-recently", &["a"], 400.0)
    };
    let restored_long_ago = Image {
        last_pulled_at: Some(days_ago(200.0)),
        last_activated_at: Some(days_ago(50.0)),
        ..image("restored-long-ago", &["a"], 400.0)
    };
    // Pulled after the restore: the pull counts.
    let pulled_after_restore = Image {
        last_pulled_at: Some(days_ago(3.0)),
        last_activated_at: Some(days_ago(50.0)),
        ..image("pulled-after-restore", &["a"], 400.0)
    };
    let images = vec![
        never_old,
        never_new,
        pulled_recently,
        pulled_long_ago,
        restored_recently,
        restored_long_ago,
        pulled_after_restore,
    ];
    let acted = run(&policy, &images);
    assert_eq!(
        acted,
        vec![
            ("never-old".to_string(), ActionType::Transition, 1),
            ("pulled-long-ago".to_string(), ActionType::Transition, 1),
            ("restored-long-ago".to_string(), ActionType::Transition, 1),
        ]
    );
}

#[test]
fn since_image_transitioned_uses_archive_time_and_skips_images_without_one() {
    let policy = valid(&policy(vec![rule(
        1,
        json!({"tagStatus": "any", "storageClass": "archive", "countType": "sinceImageTransitioned", "countUnit": "days", "countNumber": 90}),
        expire(),
    )]));
    let mut no_time = archived("no-time", &[], 500.0, 0.0);
    no_time.last_archived_at = None;
    let images = vec![
        archived("long", &[], 500.0, 120.0),
        archived("short", &[], 500.0, 30.0),
        no_time,
        image("active", &[], 500.0),
    ];
    assert_eq!(run(&policy, &images), expired(&[("long", 1)]));
}

#[test]
fn activating_images_are_in_no_pool() {
    // Assumption 7.8: neither standard nor archive rules see images being restored.
    let policy = valid(&policy(vec![
        rule(1, any_count(1), expire()),
        rule(
            2,
            json!({"tagStatus": "any", "storageClass": "archive", "countType": "sinceImageTransitioned", "countUnit": "days", "countNumber": 90}),
            expire(),
        ),
    ]));
    let activating = Image {
        status: ImageStatus::Activating,
        last_archived_at: Some(days_ago(200.0)),
        ..image("activating", &[], 300.0)
    };
    let images = vec![activating, image("new", &[], 1.0), image("old", &[], 2.0)];
    assert_eq!(run(&policy, &images), expired(&[("old", 1)]));
}

// ---------------------------------------------------------------- section 6

#[test]
fn s6_1_list_entries_are_anded() {
    // Meant as "keep latest OR main OR 20*"; it only protects images carrying all three.
    let policy = valid(&policy(vec![
        rule(
            1,
            json!({"tagStatus": "tagged", "tagPatternList": ["latest", "main", "20*"], "countType": "imageCountMoreThan", "countNumber": 9999}),
            expire(),
        ),
        rule(
            2,
            json!({"tagStatus": "any", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 30}),
            expire(),
        ),
    ]));
    let images = vec![
        image("all-three", &["latest", "main", "2024-01"], 100.0),
        image("only-latest", &["latest"], 100.0),
        image("only-main", &["main"], 100.0),
    ];
    assert_eq!(
        run(&policy, &images),
        expired(&[("only-latest", 2), ("only-main", 2)])
    );
}

#[test]
fn s6_2_shielding_is_by_selection_and_the_keep_rule_idiom() {
    let policy = valid(&policy(vec![
        rule(1, prefix_count(&["prod"], 9999), expire()),
        rule(
            2,
            json!({"tagStatus": "any", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 30}),
            expire(),
        ),
    ]));
    let images = vec![
        image("prod-old", &["prod-1"], 400.0),
        image("dev-old", &["dev-1"], 400.0),
        image("dev-new", &["dev-2"], 1.0),
    ];
    // Rule 1 acts on nothing, yet protects every prod image from rule 2.
    assert_eq!(run(&policy, &images), expired(&[("dev-old", 2)]));
}

#[test]
fn s6_3_count_rules_count_protected_images() {
    // Keep 3 of everything, but the 2 newest are prod images protected by rule 1: only one
    // non-prod image survives instead of three.
    let policy = valid(&policy(vec![
        rule(1, prefix_count(&["prod"], 9999), expire()),
        rule(2, any_count(3), expire()),
    ]));
    let images = vec![
        image("prod-a", &["prod-a"], 1.0),
        image("prod-b", &["prod-b"], 2.0),
        image("dev-a", &["dev-a"], 3.0),
        image("dev-b", &["dev-b"], 4.0),
        image("dev-c", &["dev-c"], 5.0),
    ];
    assert_eq!(
        run(&policy, &images),
        expired(&[("dev-b", 2), ("dev-c", 2)])
    );
}

#[test]
fn s6_4_one_matching_tag_pulls_a_promoted_image_into_cleanup() {
    let cleanup = rule(
        2,
        json!({"tagStatus": "tagged", "tagPrefixList": ["sha-"], "countType": "imageCountMoreThan", "countNumber": 1}),
        expire(),
    );
    let images = vec![
        image("promoted", &["sha-1", "prod"], 5.0),
        image("newer", &["sha-2"], 1.0),
    ];
    let without_guard = valid(&policy(vec![cleanup.clone()]));
    assert_eq!(digests(&without_guard, &images), vec!["promoted"]);
    let guarded = valid(&policy(vec![
        rule(
            1,
            json!({"tagStatus": "tagged", "tagPatternList": ["prod"], "countType": "imageCountMoreThan", "countNumber": 9999}),
            expire(),
        ),
        cleanup,
    ]));
    assert!(run(&guarded, &images).is_empty());
}

#[test]
fn s6_5_any_rules_of_different_storage_classes_act_on_their_own_pools() {
    let policy = valid(&policy(vec![
        rule(
            1,
            json!({"tagStatus": "any", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 30}),
            transition(),
        ),
        rule(
            2,
            json!({"tagStatus": "any", "storageClass": "archive", "countType": "sinceImageTransitioned", "countUnit": "days", "countNumber": 90}),
            expire(),
        ),
    ]));
    let images = vec![
        image("standard-old", &["x"], 40.0),
        image("standard-new", &["x"], 10.0),
        archived("archived-long", &["x"], 400.0, 100.0),
        archived("archived-short", &["x"], 400.0, 50.0),
    ];
    assert_eq!(
        run(&policy, &images),
        vec![
            ("standard-old".to_string(), ActionType::Transition, 1),
            ("archived-long".to_string(), ActionType::Expire, 2),
        ]
    );
}

#[test]
fn s6_6_since_image_pulled_can_only_transition() {
    let text = policy(vec![rule(
        1,
        json!({"tagStatus": "any", "countType": "sinceImagePulled", "countUnit": "days", "countNumber": 30}),
        expire(),
    )]);
    assert_violation(&text, "2.12", "rules[0].action.type");
    // The route to deletion: transition, then expire at least 90 days after archiving.
    let policy = valid(&policy(vec![
        rule(
            1,
            json!({"tagStatus": "any", "countType": "sinceImagePulled", "countUnit": "days", "countNumber": 30}),
            transition(),
        ),
        rule(
            2,
            json!({"tagStatus": "any", "storageClass": "archive", "countType": "sinceImageTransitioned", "countUnit": "days", "countNumber": 90}),
            expire(),
        ),
    ]));
    let unused = Image {
        last_pulled_at: Some(days_ago(45.0)),
        ..image("unused", &["v1"], 100.0)
    };
    assert_eq!(
        run(&policy, &[unused]),
        vec![("unused".to_string(), ActionType::Transition, 1)]
    );
}

#[test]
fn s6_7_never_pulled_ages_from_push_and_restored_from_restore() {
    // Covered in detail by since_image_pulled_reference_times_6_7; here the two headline cases.
    assert_eq!(
        ecr_lifecycle::pull_reference(&image("p", &[], 3.0)),
        days_ago(3.0)
    );
    let restored = Image {
        last_pulled_at: Some(days_ago(100.0)),
        last_activated_at: Some(days_ago(2.0)),
        ..image("r", &[], 300.0)
    };
    assert_eq!(ecr_lifecycle::pull_reference(&restored), days_ago(2.0));
}

#[test]
fn s6_8_age_is_push_age_only() {
    // Recent pulls and restores do not make an image younger for sinceImagePushed.
    let policy = valid(&policy(vec![rule(
        1,
        json!({"tagStatus": "any", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 30}),
        expire(),
    )]));
    let busy = Image {
        last_pulled_at: Some(days_ago(0.1)),
        last_activated_at: Some(days_ago(1.0)),
        ..image("busy-but-old", &["latest"], 60.0)
    };
    assert_eq!(digests(&policy, &[busy]), vec!["busy-but-old"]);
}

#[test]
fn s6_8_moving_a_mutable_tag_exposes_the_old_image_to_untagged_rules() {
    let policy = valid(&policy(vec![rule(1, untagged_days(1), expire())]));
    // `latest` moved to the new image; the old one is now untagged.
    let images = vec![image("old", &[], 10.0), image("new", &["latest"], 10.0)];
    assert_eq!(digests(&policy, &images), vec!["old"]);
}

#[test]
fn s6_9_null_is_not_absent() {
    let mut selection = any_count(1);
    selection["countUnit"] = json!(null);
    assert_violation(
        &policy(vec![rule(1, selection, expire())]),
        "2.10",
        "rules[0].selection.countUnit",
    );
    assert_violation(
        &policy(vec![rule(
            1,
            any_count(1),
            json!({"type": "expire", "targetStorageClass": null}),
        )]),
        "2.14",
        "rules[0].action.targetStorageClass",
    );
}

#[test]
fn s6_10_count_number_zero_is_invalid_use_a_short_age_instead() {
    assert_violation(
        &policy(vec![rule(1, any_count(0), transition())]),
        "2.9",
        "rules[0].selection.countNumber",
    );
    let policy = valid(&policy(vec![rule(
        1,
        json!({"tagStatus": "any", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 1}),
        transition(),
    )]));
    let images = vec![image("a", &["x"], 2.0), image("b", &[], 3.0)];
    assert_eq!(digests(&policy, &images), vec!["a", "b"]);
}

#[test]
fn s6_11_manifest_list_children_are_protected_while_the_list_exists() {
    let policy = valid(&policy(vec![
        rule(1, prefix_count(&["v"], 1), expire()),
        rule(2, untagged_days(1), expire()),
    ]));
    let child = |digest: &str| Image {
        referenced_by_manifest_lists: vec!["index-old".to_string()],
        ..image(digest, &[], 30.0)
    };
    let images = vec![
        image("index-old", &["v1"], 30.0),
        child("child-amd64"),
        child("child-arm64"),
        image("index-new", &["v2"], 1.0),
        // Referenced by a list that is no longer in the repository: an orphan.
        Image {
            referenced_by_manifest_lists: vec!["gone".to_string()],
            ..image("orphan", &[], 30.0)
        },
    ];
    // The old index expires in this run; its children stay until a later run (no cascade).
    assert_eq!(
        run(&policy, &images),
        expired(&[("index-old", 1), ("orphan", 2)])
    );
    // Next run, without the index: the children are ordinary untagged images.
    let later: Vec<Image> = images
        .into_iter()
        .filter(|i| i.digest != "index-old" && i.digest != "orphan")
        .collect();
    assert_eq!(
        run(&policy, &later),
        expired(&[("child-amd64", 2), ("child-arm64", 2)])
    );
}

#[test]
fn s6_11_children_take_no_place_in_a_count_ranking() {
    // Assumption 7.9 (DEFANG): protected children are not ranked, so they do not occupy the
    // "keep" slots of an imageCountMoreThan rule.
    let policy = valid(&policy(vec![rule(
        1,
        json!({"tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 1}),
        expire(),
    )]));
    let images = vec![
        image("index", &["v1"], 50.0),
        Image {
            referenced_by_manifest_lists: vec!["index".to_string()],
            ..image("child", &[], 0.5)
        },
        image("loose-new", &[], 2.0),
        image("loose-old", &[], 3.0),
    ];
    assert_eq!(digests(&policy, &images), vec!["loose-old"]);
}

#[test]
fn s6_11_an_archived_list_no_longer_protects_an_active_child() {
    let policy = valid(&policy(vec![rule(1, untagged_days(1), expire())]));
    let images = vec![
        archived("index", &["v1"], 300.0, 100.0),
        Image {
            referenced_by_manifest_lists: vec!["index".to_string()],
            ..image("child", &[], 300.0)
        },
    ];
    assert_eq!(digests(&policy, &images), vec!["child"]);
}

#[test]
fn s6_12_standard_rules_ignore_archived_images_entirely() {
    let policy = valid(&policy(vec![rule(1, any_count(1), expire())]));
    let images = vec![
        archived("archived-newest", &["x"], 0.5, 0.1),
        image("active-new", &["x"], 1.0),
        image("active-old", &["x"], 2.0),
    ];
    // The archived image is neither counted (it would take the one slot) nor expired.
    assert_eq!(digests(&policy, &images), vec!["active-old"]);
}

#[test]
fn empty_repository_and_untouched_images() {
    let policy = valid(&policy(vec![rule(1, any_count(1), expire())]));
    assert!(evaluate(&policy, &[], now()).is_empty());
}
