//! Property tests: random valid policies against random repositories.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use ecr_lifecycle::assumptions::{manifest_list_protects, pool_of, MANIFEST_LIST_CHILDREN_RANKED};
use ecr_lifecycle::{
    evaluate, parse_policy, pull_reference, tag_selected, ActionType, CountType, Image,
    ImageStatus, Policy, StorageClass,
};
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use serde_json::{json, Value};

const TAGS: &[&str] = &["a1", "a2", "b1", "ab", "v1.0", "latest"];
const PREFIXES: &[&str] = &["a", "b", "v", "ab", "l", "a1"];
const PATTERNS: &[&str] = &["a*", "*1", "*b*", "v*.*", "latest", "*", "a?"];

/// Raw material for one rule; [`build_policy`] turns a list of them into a valid document.
#[derive(Debug, Clone)]
struct RuleSpec {
    count_type: usize,
    tag_kind: usize,
    entries: Vec<usize>,
    transition: bool,
    number: u64,
    gap: i64,
}

fn rule_spec() -> impl Strategy<Value = RuleSpec> {
    (
        0..4usize,
        0..4usize,
        prop::collection::vec(0..6usize, 1..3),
        any::<bool>(),
        0..40u64,
        1..4i64,
    )
        .prop_map(
            |(count_type, tag_kind, entries, transition, number, gap)| RuleSpec {
                count_type,
                tag_kind,
                entries,
                transition,
                number,
                gap,
            },
        )
}

/// Builds a document that respects every rule of section 2: the fix-ups below mirror the
/// cross-rule constraints (one untagged rule and one trailing `any` rule per storage class,
/// unique prefix sets, compatible count type / storage class / action).
fn build_policy(specs: &[RuleSpec]) -> Value {
    let mut rules = Vec::new();
    let mut untagged_seen = BTreeSet::new();
    let mut any_seen = BTreeSet::new();
    let mut prefix_sets: BTreeSet<(String, Vec<String>)> = BTreeSet::new();
    for (i, spec) in specs.iter().enumerate() {
        let count_type = [
            "imageCountMoreThan",
            "sinceImagePushed",
            "sinceImagePulled",
            "sinceImageTransitioned",
        ][spec.count_type];
        let class = if count_type == "sinceImageTransitioned" {
            "archive"
        } else {
            "standard"
        };
        let mut selection = json!({"countType": count_type});
        if class == "archive" {
            selection["storageClass"] = json!("archive");
        }
        match count_type {
            "imageCountMoreThan" => selection["countNumber"] = json!(1 + spec.number % 5),
            "sinceImageTransitioned" => {
                selection["countUnit"] = json!("days");
                selection["countNumber"] = json!(90 + spec.number * 3);
            }
            _ => {
                selection["countUnit"] = json!("days");
                selection["countNumber"] = json!(1 + spec.number);
            }
        }
        let mut kind = spec.tag_kind;
        if kind == 0 && !untagged_seen.insert(class) {
            kind = 2;
        }
        if kind == 1 && !any_seen.insert(class) {
            kind = 3;
        }
        let mut entries: Vec<String> = spec
            .entries
            .iter()
            .map(|&e| PREFIXES[e].to_string())
            .collect();
        if kind == 2 {
            let mut set = entries.clone();
            set.sort();
            set.dedup();
            if !prefix_sets.insert((class.to_string(), set)) {
                // Unique prefix sets per class (2.8): make this one unique.
                entries.push(format!("unique-{i}"));
                let mut set = entries.clone();
                set.sort();
                set.dedup();
                prefix_sets.insert((class.to_string(), set));
            }
        }
        match kind {
            0 => selection["tagStatus"] = json!("untagged"),
            1 => selection["tagStatus"] = json!("any"),
            2 => {
                selection["tagStatus"] = json!("tagged");
                selection["tagPrefixList"] = json!(entries);
            }
            _ => {
                let patterns: Vec<&str> = spec.entries.iter().map(|&e| PATTERNS[e]).collect();
                selection["tagStatus"] = json!("tagged");
                selection["tagPatternList"] = json!(patterns);
            }
        }
        let transition = match count_type {
            "sinceImagePulled" => true,
            "sinceImageTransitioned" => false,
            _ => spec.transition,
        };
        let action = if transition {
            json!({"type": "transition", "targetStorageClass": "archive"})
        } else {
            json!({"type": "expire"})
        };
        rules.push((
            kind == 1,
            spec.gap,
            json!({"selection": selection, "action": action}),
        ));
    }
    // `any` rules last (2.2); priorities strictly increasing with random gaps (2.1).
    rules.sort_by_key(|(is_any, _, _)| *is_any);
    let mut priority = 0;
    let rules: Vec<Value> = rules
        .into_iter()
        .map(|(_, gap, mut rule)| {
            priority += gap;
            rule["rulePriority"] = json!(priority);
            rule
        })
        .collect();
    json!({ "rules": rules })
}

fn now() -> Timestamp {
    "2026-01-01T00:00:00Z".parse().unwrap()
}

fn ago(days: u32, extra_seconds: u32) -> Timestamp {
    now() - SignedDuration::from_secs(i64::from(days) * 86_400 + i64::from(extra_seconds))
}

#[derive(Debug, Clone)]
struct ImageSpec {
    tag_mask: u8,
    status: u8,
    pushed_days: u32,
    jitter: u32,
    pulled_days: Option<u32>,
    activated_days: Option<u32>,
    archived_days: Option<u32>,
    parent: Option<usize>,
}

fn image_spec() -> impl Strategy<Value = ImageSpec> {
    (
        any::<u8>(),
        0..10u8,
        (0..60u32, prop_oneof![Just(0u32), 0..86_400u32]),
        prop::option::of(0..60u32),
        prop::option::of(0..60u32),
        prop::option::of(0..200u32),
        prop::option::weighted(0.2, 0..50usize),
    )
        .prop_map(
            |(
                tag_mask,
                status,
                (pushed_days, jitter),
                pulled_days,
                activated_days,
                archived_days,
                parent,
            )| ImageSpec {
                tag_mask,
                status,
                pushed_days,
                jitter,
                pulled_days,
                activated_days,
                archived_days,
                parent,
            },
        )
}

fn build_images(specs: &[ImageSpec]) -> Vec<Image> {
    specs
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            // Half of the masks give no tags at all, so untagged rules have work.
            let tags: Vec<String> = if spec.tag_mask & 0x80 == 0 {
                Vec::new()
            } else {
                TAGS.iter()
                    .enumerate()
                    .filter(|(bit, _)| spec.tag_mask & (1 << bit) != 0)
                    .map(|(_, tag)| tag.to_string())
                    .collect()
            };
            let status = match spec.status {
                0..=6 => ImageStatus::Active,
                7 | 8 => ImageStatus::Archived,
                _ => ImageStatus::Activating,
            };
            Image {
                digest: format!("sha256:{i:03}"),
                tags,
                pushed_at: ago(spec.pushed_days, spec.jitter),
                size_bytes: 100 + i as u64,
                last_pulled_at: spec.pulled_days.map(|d| ago(d, 0)),
                status,
                last_archived_at: spec.archived_days.map(|d| ago(d, 0)),
                last_activated_at: spec.activated_days.map(|d| ago(d, 0)),
                manifest_media_type: None,
                // Parents beyond the repository size are absent lists (orphans).
                referenced_by_manifest_lists: spec
                    .parent
                    .filter(|&p| p != i)
                    .map(|p| vec![format!("sha256:{p:03}")])
                    .unwrap_or_default(),
            }
        })
        .collect()
}

fn protected(images: &[Image], child: &Image) -> bool {
    child.referenced_by_manifest_lists.iter().any(|list| {
        images.iter().any(|parent| {
            &parent.digest == list && manifest_list_protects(parent.status, child.status)
        })
    })
}

fn older(reference: Timestamp, days: u64) -> bool {
    (now().as_second() - reference.as_second()) as i128 > i128::from(days) * 86_400
}

/// The reference pseudocode of 5.11, written as plainly as possible (quadratic is fine).
fn reference(policy: &Policy, images: &[Image]) -> BTreeMap<usize, (ActionType, i64)> {
    let mut claimed = BTreeSet::new();
    let mut actions = BTreeMap::new();
    for rule in policy.rules_by_priority() {
        let selection = &rule.selection;
        let matched: Vec<usize> = (0..images.len())
            .filter(|&i| pool_of(images[i].status) == Some(selection.storage_class))
            .filter(|&i| tag_selected(selection, &images[i].tags))
            .collect();
        let n = selection.count_number;
        let candidates: Vec<usize> = match selection.count_type {
            CountType::ImageCountMoreThan => {
                let mut ranked: Vec<usize> = matched
                    .iter()
                    .copied()
                    .filter(|&i| MANIFEST_LIST_CHILDREN_RANKED || !protected(images, &images[i]))
                    .collect();
                ranked.sort_by(|&a, &b| {
                    images[b]
                        .pushed_at
                        .cmp(&images[a].pushed_at)
                        .then(images[a].digest.cmp(&images[b].digest))
                });
                ranked.into_iter().skip(n as usize).collect()
            }
            CountType::SinceImagePushed => matched
                .iter()
                .copied()
                .filter(|&i| older(images[i].pushed_at, n))
                .collect(),
            CountType::SinceImagePulled => matched
                .iter()
                .copied()
                .filter(|&i| older(pull_reference(&images[i]), n))
                .collect(),
            CountType::SinceImageTransitioned => matched
                .iter()
                .copied()
                .filter(|&i| images[i].last_archived_at.is_some_and(|t| older(t, n)))
                .collect(),
        };
        for i in candidates {
            if claimed.contains(&i) || actions.contains_key(&i) || protected(images, &images[i]) {
                continue;
            }
            actions.insert(i, (rule.action.kind, rule.rule_priority));
        }
        claimed.extend(matched);
    }
    actions
}

proptest! {
    // No regression files: failures print the minimal input, which is what we need.
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn generated_policies_are_valid_and_evaluation_keeps_its_promises(
        rule_specs in prop::collection::vec(rule_spec(), 1..8),
        image_specs in prop::collection::vec(image_spec(), 0..50),
    ) {
        let document = build_policy(&rule_specs);
        let mut text = document.to_string();
        while text.len() < 100 {
            text.push(' ');
        }
        let policy = match parse_policy(&text) {
            Ok(policy) => policy,
            Err(error) => return Err(TestCaseError::fail(format!("generator made an invalid policy:\n{error}\n{text}"))),
        };
        let images = build_images(&image_specs);
        let actions = evaluate(&policy, &images, now());

        // (a) at most one action per image, sorted, and each names a rule of the policy with
        // that rule's action.
        for pair in actions.windows(2) {
            prop_assert!(pair[0].index < pair[1].index);
        }
        for action in &actions {
            prop_assert!(action.index < images.len());
            let rule = policy.rules.iter().find(|r| r.rule_priority == action.rule_priority);
            prop_assert!(rule.is_some());
            prop_assert_eq!(rule.unwrap().action.kind, action.action);
        }

        for action in &actions {
            let image = &images[action.index];
            let rule = policy.rules.iter().find(|r| r.rule_priority == action.rule_priority).unwrap();
            // (c) the image is in the acting rule's pool and selected by its tags.
            prop_assert_eq!(pool_of(image.status), Some(rule.selection.storage_class));
            prop_assert!(tag_selected(&rule.selection, &image.tags));
            // (b) no higher-priority rule of the same pool selected it.
            for higher in policy.rules.iter().filter(|r| r.rule_priority < action.rule_priority) {
                prop_assert!(
                    higher.selection.storage_class != rule.selection.storage_class
                        || !tag_selected(&higher.selection, &image.tags),
                    "image {} acted on by rule {} but shielded by rule {}",
                    image.digest, rule.rule_priority, higher.rule_priority
                );
            }
            // Manifest-list children and ACTIVATING images are never acted on.
            prop_assert!(!protected(&images, image));
            prop_assert!(image.status != ImageStatus::Activating);
            // Archive pools only ever expire, standard pools may transition.
            if image.status == ImageStatus::Archived {
                prop_assert_eq!(action.action, ActionType::Expire);
                prop_assert_eq!(rule.selection.storage_class, StorageClass::Archive);
            }
        }

        // The fast evaluator agrees with the literal pseudocode.
        let expected = reference(&policy, &images);
        let got: BTreeMap<usize, (ActionType, i64)> =
            actions.iter().map(|a| (a.index, (a.action, a.rule_priority))).collect();
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn input_order_does_not_change_decisions(
        rule_specs in prop::collection::vec(rule_spec(), 1..6),
        image_specs in prop::collection::vec(image_spec(), 0..30),
    ) {
        let mut text = build_policy(&rule_specs).to_string();
        while text.len() < 100 {
            text.push(' ');
        }
        let policy = parse_policy(&text).unwrap();
        let images = build_images(&image_specs);
        let by_digest = |images: &[Image]| -> BTreeMap<String, (ActionType, i64)> {
            evaluate(&policy, images, now())
                .into_iter()
                .map(|a| (images[a.index].digest.clone(), (a.action, a.rule_priority)))
                .collect()
        };
        let reversed: Vec<Image> = images.iter().rev().cloned().collect();
        prop_assert_eq!(by_digest(&images), by_digest(&reversed));
    }

    #[test]
    fn parse_policy_and_canonicalize_never_panic(text in "\\PC{0,300}") {
        let _ = parse_policy(&text);
        let _ = ecr_lifecycle::canonicalize(&text);
        prop_assert!(ecr_lifecycle::semantically_equal(&text, &text));
    }

    #[test]
    fn canonical_form_ignores_rule_and_list_order(
        rule_specs in prop::collection::vec(rule_spec(), 1..8),
        seed in any::<u64>(),
    ) {
        let document = build_policy(&rule_specs);
        let mut shuffled = document.clone();
        if let Some(rules) = shuffled["rules"].as_array_mut() {
            // A cheap deterministic permutation: rotate and reverse lists.
            let len = rules.len();
            rules.rotate_left((seed as usize) % len);
            for rule in rules.iter_mut() {
                for name in ["tagPrefixList", "tagPatternList"] {
                    if let Some(Value::Array(list)) = rule.pointer_mut(&format!("/selection/{name}")) {
                        list.reverse();
                        let first = list[0].clone();
                        list.push(first);
                    }
                }
            }
        }
        prop_assert!(ecr_lifecycle::semantically_equal(&document.to_string(), &shuffled.to_string()));
    }
}
