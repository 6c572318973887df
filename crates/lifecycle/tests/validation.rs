//! Validation: one test (at least) per rule of sections 1 and 2 of RULES.md.

mod common;

use common::*;
use ecr_lifecycle::{
    parse_policy, ActionType, CountType, CountUnit, PolicyError, StorageClass, TagStatus,
};
use serde_json::json;

// ---------------------------------------------------------------- valid documents

#[test]
fn aws_template_untagged_expiry_is_valid() {
    let text = policy(vec![json!({
        "rulePriority": 1,
        "description": "Expire images older than 14 days",
        "selection": untagged_days(14),
        "action": expire(),
    })]);
    let parsed = valid(&text);
    let rule = &parsed.rules[0];
    assert_eq!(rule.rule_priority, 1);
    assert_eq!(
        rule.description.as_deref(),
        Some("Expire images older than 14 days")
    );
    assert_eq!(rule.selection.tag_status, TagStatus::Untagged);
    assert_eq!(rule.selection.count_type, CountType::SinceImagePushed);
    assert_eq!(rule.selection.count_unit, Some(CountUnit::Days));
    assert_eq!(rule.selection.count_number, 14);
    assert_eq!(rule.selection.storage_class, StorageClass::Standard);
    assert_eq!(rule.action.kind, ActionType::Expire);
    assert_eq!(rule.action.target_storage_class, None);
}

#[test]
fn aws_archive_and_expire_combined_with_two_any_rules_is_valid() {
    // EX "combining archive and expire rules": `any` at priority 1 (standard), then `any` at
    // priority 2 (archive). Valid because 2.2 applies per storage class (6.5).
    let text = policy(vec![
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
    ]);
    let parsed = valid(&text);
    assert_eq!(parsed.rules[0].action.kind, ActionType::Transition);
    assert_eq!(
        parsed.rules[0].action.target_storage_class,
        Some(StorageClass::Archive)
    );
    assert_eq!(
        parsed.rules[1].selection.storage_class,
        StorageClass::Archive
    );
    assert_eq!(
        parsed.rules[1].selection.count_type,
        CountType::SinceImageTransitioned
    );
}

#[test]
fn aws_archive_production_images_after_30_days_is_valid() {
    let text = policy(vec![rule(
        1,
        json!({"tagStatus": "tagged", "tagPatternList": ["prod*"], "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 30}),
        transition(),
    )]);
    valid(&text);
}

#[test]
fn aws_multiple_rules_and_all_images_examples_are_valid() {
    valid(&policy(vec![
        rule(1, prefix_count(&["prod"], 1), expire()),
        rule(2, prefix_count(&["beta"], 1), expire()),
    ]));
    valid(&policy(vec![
        rule(1, prefix_count(&["alpha"], 1), expire()),
        rule(
            2,
            json!({"tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 1}),
            expire(),
        ),
        rule(3, any_count(1), expire()),
    ]));
}

#[test]
fn wildcard_examples_from_the_docs_are_valid() {
    // 2.6: exactly four stars is fine.
    valid(&policy(vec![rule(
        1,
        json!({"tagStatus": "tagged", "tagPatternList": ["*test*1*2*3", "test*1*2*3*"], "countType": "imageCountMoreThan", "countNumber": 1}),
        expire(),
    )]));
}

#[test]
fn mixed_list_kinds_across_rules_and_gaps_in_priorities_are_valid() {
    // 2.5: different rules may use different kinds of list; 2.1: gaps are allowed.
    valid(&policy(vec![
        rule(10, prefix_count(&["prod"], 5), expire()),
        rule(
            20,
            json!({"tagStatus": "tagged", "tagPatternList": ["dev-*"], "countType": "imageCountMoreThan", "countNumber": 5}),
            expire(),
        ),
        rule(30, untagged_days(1), expire()),
    ]));
}

#[test]
fn keep_rule_idiom_and_large_count_numbers_are_valid() {
    valid(&policy(vec![
        rule(1, prefix_count(&["prod"], 9999), expire()),
        rule(
            2,
            json!({"tagStatus": "any", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 3650}),
            expire(),
        ),
    ]));
}

#[test]
fn untagged_rules_in_different_storage_classes_are_valid() {
    // 2.7 is per storage class.
    valid(&policy(vec![
        rule(1, untagged_days(7), transition()),
        rule(
            2,
            json!({"tagStatus": "untagged", "storageClass": "archive", "countType": "sinceImageTransitioned", "countUnit": "days", "countNumber": 90}),
            expire(),
        ),
    ]));
}

#[test]
fn explicit_standard_storage_class_is_valid() {
    let text = policy(vec![rule(
        1,
        json!({"tagStatus": "any", "storageClass": "standard", "countType": "imageCountMoreThan", "countNumber": 3}),
        expire(),
    )]);
    assert_eq!(
        valid(&text).rules[0].selection.storage_class,
        StorageClass::Standard
    );
}

#[test]
fn rules_by_priority_sorts_ascending() {
    let parsed = valid(&policy(vec![
        rule(5, any_count(1), expire()),
        rule(2, untagged_days(1), expire()),
    ]));
    let order: Vec<i64> = parsed
        .rules_by_priority()
        .iter()
        .map(|r| r.rule_priority)
        .collect();
    assert_eq!(order, vec![2, 5]);
}

#[test]
fn a_parsed_policy_serialises_back_to_an_equal_document() {
    let text = policy(vec![
        rule(1, prefix_count(&["prod"], 9999), expire()),
        rule(2, untagged_days(3), transition()),
    ]);
    let parsed = valid(&text);
    let back = serde_json::to_string(&parsed).unwrap();
    assert!(ecr_lifecycle::semantically_equal(&text, &back), "{back}");
}

// ---------------------------------------------------------------- 1.1 top level

#[test]
fn rule_1_1_not_json_names_line_and_column() {
    let error = parse_policy("{\n  \"rules\": [\n    {,\n  ]\n}").unwrap_err();
    match &error {
        PolicyError::Json {
            line,
            column,
            message,
        } => {
            assert_eq!(*line, 3);
            assert_eq!(*column, 6);
            assert!(!message.contains("at line"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(error
        .to_string()
        .starts_with("Could not map policyString into LifecyclePolicy"));
    assert!(error.to_string().contains("line 3, column 6"));
}

#[test]
fn rule_1_1_document_must_be_an_object() {
    let found = violations(&format!("[{}]", " ".repeat(100)));
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].rule, "1.1");
    assert_eq!(found[0].field, "");
    assert!(found[0].message.contains("allowed: [\"object\"]"));
}

#[test]
fn rule_1_1_rules_is_required() {
    let v = assert_violation(&text(&json!({"rule": []})), "1.1", "rules");
    assert_eq!(
        v.message,
        "object has missing required properties ([\"rules\"])"
    );
}

#[test]
fn rule_1_1_unknown_top_level_member_is_rejected() {
    let text = text(&json!({"rules": [rule(1, any_count(1), expire())], "version": 2}));
    let v = assert_violation(&text, "1.1", "version");
    assert!(v.message.contains("not allowed by the schema"));
}

#[test]
fn rule_1_1_rules_must_be_an_array() {
    assert_violation(
        &text(&json!({"rules": {"rulePriority": 1}})),
        "1.1",
        "rules",
    );
}

#[test]
fn rule_1_1_at_least_one_rule() {
    let v = assert_violation(&policy(vec![]), "1.1", "rules");
    assert!(v.message.contains("at least one rule"));
}

#[test]
fn rule_1_1_at_most_50_rules() {
    let rules = |n: i64| -> Vec<serde_json::Value> {
        (1..=n)
            .map(|p| rule(p, prefix_count(&[&format!("t{p}")], 1), expire()))
            .collect()
    };
    valid(&policy(rules(50)));
    let v = assert_violation(&policy(rules(51)), "1.1", "rules");
    assert!(v.message.contains("at most 50"));
    assert_eq!(violations(&policy(rules(51))).len(), 1);
}

#[test]
fn rule_1_1_text_length_bounds() {
    // The shortest useful rule is already longer than 100 characters, so the lower bound is
    // tested on an otherwise incomplete document.
    let short = r#"{"rules":[]}"#;
    let padded = |base: &str, len: usize| format!("{base}{}", " ".repeat(len - base.len()));
    let v = assert_violation(&padded(short, 99), "1.1", "");
    assert!(v.message.contains("100 to 30720"), "{}", v.message);
    assert!(violations(&padded(short, 100))
        .iter()
        .all(|v| !v.field.is_empty()));

    let compact = json!({"rules": [rule(1, any_count(1), expire())]}).to_string();
    valid(&padded(&compact, 30_720));
    let found = violations(&padded(&compact, 30_721));
    assert_eq!(found.len(), 1);
    assert_eq!((found[0].rule, found[0].field.as_str()), ("1.1", ""));
}

#[test]
fn rule_1_1_length_counts_characters_not_bytes() {
    // 60 two-byte characters: over 100 bytes, under 100 characters.
    let wide = json!({"rules": "é".repeat(60)}).to_string();
    assert!(wide.chars().count() < 100 && wide.len() >= 100);
    assert_violation(&wide, "1.1", "");
    let ascii = json!({"rules": "e".repeat(120)}).to_string();
    assert!(violations(&ascii).iter().all(|v| !v.field.is_empty()));
}

// ---------------------------------------------------------------- 1.2 rule object

#[test]
fn rule_1_2_rule_must_be_an_object() {
    assert_violation(&policy(vec![json!("rule")]), "1.2", "rules[0]");
}

#[test]
fn rule_1_2_required_members() {
    let text = policy(vec![json!({"description": "nothing else"})]);
    for field in [
        "rules[0].rulePriority",
        "rules[0].selection",
        "rules[0].action",
    ] {
        let v = assert_violation(&text, "1.2", field);
        assert!(v
            .message
            .starts_with("object has missing required properties"));
    }
}

#[test]
fn rule_1_2_unknown_member() {
    let mut r = rule(1, any_count(1), expire());
    r["priority"] = json!(1);
    let v = assert_violation(&policy(vec![r]), "1.2", "rules[0].priority");
    assert_eq!(v.priority, Some(1));
    assert_eq!(
        v.message,
        "object instance has properties which are not allowed by the schema: ([\"priority\"])"
    );
}

#[test]
fn rule_1_2_rule_priority_must_be_an_integer() {
    for bad in [json!("1"), json!(1.5), json!(null), json!(true)] {
        let mut r = rule(1, any_count(1), expire());
        r["rulePriority"] = bad;
        let v = assert_violation(&policy(vec![r]), "1.2", "rules[0].rulePriority");
        assert!(
            v.message.contains("allowed: [\"integer\"]"),
            "{}",
            v.message
        );
        assert_eq!(v.priority, None);
    }
    let mut r = rule(1, any_count(1), expire());
    r["rulePriority"] = json!(u64::MAX);
    let v = assert_violation(&policy(vec![r]), "1.2", "rules[0].rulePriority");
    assert!(v.message.contains("out of range"));
}

#[test]
fn rule_1_2_rule_priority_lower_bound() {
    for p in [0, -3] {
        let v = assert_violation(
            &policy(vec![rule(p, any_count(1), expire())]),
            "1.2",
            "rules[0].rulePriority",
        );
        assert!(v.message.contains("minimum: 1"));
    }
}

#[test]
fn rule_1_2_description_must_be_a_string_and_null_is_present() {
    for bad in [json!(null), json!(5), json!(["a"])] {
        let mut r = rule(1, any_count(1), expire());
        r["description"] = bad;
        assert_violation(&policy(vec![r]), "1.2", "rules[0].description");
    }
}

#[test]
fn rule_1_2_selection_and_action_must_be_objects() {
    assert_violation(
        &policy(vec![rule(1, json!("any"), expire())]),
        "1.2",
        "rules[0].selection",
    );
    assert_violation(
        &policy(vec![rule(1, any_count(1), json!("expire"))]),
        "1.2",
        "rules[0].action",
    );
}

// ---------------------------------------------------------------- 1.3 selection object

#[test]
fn rule_1_3_required_members() {
    let text = policy(vec![rule(1, json!({}), expire())]);
    for name in ["tagStatus", "countType", "countNumber"] {
        let v = assert_violation(&text, "1.3", &format!("rules[0].selection.{name}"));
        assert_eq!(v.priority, Some(1));
    }
}

#[test]
fn rule_1_3_unknown_member() {
    let mut selection = any_count(1);
    selection["tagList"] = json!(["a"]);
    assert_violation(
        &policy(vec![rule(1, selection, expire())]),
        "1.3",
        "rules[0].selection.tagList",
    );
}

#[test]
fn rule_1_3_enum_values() {
    let mut selection = any_count(1);
    selection["tagStatus"] = json!("all");
    let v = assert_violation(
        &policy(vec![rule(1, selection, expire())]),
        "1.3",
        "rules[0].selection.tagStatus",
    );
    assert_eq!(
        v.message,
        "instance value (\"all\") not found in enum (possible values: [\"tagged\",\"untagged\",\"any\"])"
    );

    let mut selection = any_count(1);
    selection["countType"] = json!("imageCountLessThan");
    assert_violation(
        &policy(vec![rule(1, selection, expire())]),
        "1.3",
        "rules[0].selection.countType",
    );

    let mut selection = any_count(1);
    selection["storageClass"] = json!("glacier");
    assert_violation(
        &policy(vec![rule(1, selection, expire())]),
        "1.3",
        "rules[0].selection.storageClass",
    );

    let mut selection = any_count(1);
    selection["storageClass"] = json!(null);
    let v = assert_violation(
        &policy(vec![rule(1, selection, expire())]),
        "1.3",
        "rules[0].selection.storageClass",
    );
    assert!(v.message.contains("instance type (null)"));
}

#[test]
fn rule_1_3_tag_lists_must_be_arrays_of_strings() {
    let selection = json!({"tagStatus": "tagged", "tagPrefixList": "prod", "countType": "imageCountMoreThan", "countNumber": 1});
    assert_violation(
        &policy(vec![rule(1, selection, expire())]),
        "1.3",
        "rules[0].selection.tagPrefixList",
    );
    let selection = json!({"tagStatus": "tagged", "tagPatternList": ["ok", 3], "countType": "imageCountMoreThan", "countNumber": 1});
    assert_violation(
        &policy(vec![rule(1, selection, expire())]),
        "1.3",
        "rules[0].selection.tagPatternList[1]",
    );
    // Null counts as present (6.9) and is not an array.
    let selection = json!({"tagStatus": "tagged", "tagPrefixList": null, "countType": "imageCountMoreThan", "countNumber": 1});
    assert_violation(
        &policy(vec![rule(1, selection, expire())]),
        "1.3",
        "rules[0].selection.tagPrefixList",
    );
}

#[test]
fn rule_1_3_count_number_type_errors() {
    for bad in [json!("5"), json!(2.5), json!(null), json!([5])] {
        let mut selection = any_count(1);
        selection["countNumber"] = bad;
        let v = assert_violation(
            &policy(vec![rule(1, selection, expire())]),
            "1.3",
            "rules[0].selection.countNumber",
        );
        assert!(v.message.contains("allowed: [\"integer\"]"));
    }
}

// ---------------------------------------------------------------- 1.4 action object

#[test]
fn rule_1_4_action_members() {
    assert_violation(
        &policy(vec![rule(1, any_count(1), json!({}))]),
        "1.4",
        "rules[0].action.type",
    );
    assert_violation(
        &policy(vec![rule(1, any_count(1), json!({"type": "delete"}))]),
        "1.4",
        "rules[0].action.type",
    );
    assert_violation(
        &policy(vec![rule(
            1,
            any_count(1),
            json!({"type": "expire", "when": "now"}),
        )]),
        "1.4",
        "rules[0].action.when",
    );
    let v = assert_violation(
        &policy(vec![rule(
            1,
            any_count(1),
            json!({"type": "transition", "targetStorageClass": "standard"}),
        )]),
        "1.4",
        "rules[0].action.targetStorageClass",
    );
    assert!(v.message.contains("possible values: [\"archive\"]"));
}

// ---------------------------------------------------------------- 1.5 spelling

#[test]
fn rule_1_5_uppercase_enum_values_are_rejected() {
    let text = policy(vec![rule(
        1,
        json!({"tagStatus": "ANY", "countType": "imageCountMoreThan", "countNumber": 1}),
        json!({"type": "EXPIRE"}),
    )]);
    let v = assert_violation(&text, "1.5", "rules[0].selection.tagStatus");
    assert!(v.message.contains("write \"any\""));
    assert_violation(&text, "1.5", "rules[0].action.type");
    let text = policy(vec![rule(
        1,
        json!({"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "Days", "countNumber": 1}),
        expire(),
    )]);
    assert_violation(&text, "1.5", "rules[0].selection.countUnit");
}

// ---------------------------------------------------------------- section 2

#[test]
fn rule_2_1_priorities_are_unique() {
    let text = policy(vec![
        rule(1, prefix_count(&["a"], 1), expire()),
        rule(2, prefix_count(&["b"], 1), expire()),
        rule(1, prefix_count(&["c"], 1), expire()),
    ]);
    let found = violations(&text);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].rule, "2.1");
    assert_eq!(found[0].field, "rules[2].rulePriority");
    assert_eq!(found[0].priority, Some(1));
    assert!(found[0].message.contains("rules[0]"));
}

#[test]
fn rule_2_2_any_must_be_last_of_its_storage_class() {
    let text = policy(vec![
        rule(1, any_count(5), expire()),
        rule(2, untagged_days(1), expire()),
    ]);
    let v = assert_violation(&text, "2.2", "rules[0].selection.tagStatus");
    assert_eq!(v.priority, Some(1));
    assert!(v
        .message
        .starts_with("Rule for tagStatus=ANY must have the lowest priority per storage class"));
}

#[test]
fn rule_2_2_two_any_rules_in_one_storage_class() {
    let text = policy(vec![
        rule(1, any_count(5), expire()),
        rule(2, any_count(3), expire()),
    ]);
    let found = violations(&text);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(
        (found[0].rule, found[0].field.as_str()),
        ("2.2", "rules[0].selection.tagStatus")
    );
}

#[test]
fn rule_2_2_is_per_storage_class() {
    // An archive rule with a larger priority does not push a standard `any` rule out of place.
    valid(&policy(vec![
        rule(1, any_count(5), transition()),
        rule(
            2,
            json!({"tagStatus": "tagged", "tagPrefixList": ["x"], "storageClass": "archive", "countType": "sinceImageTransitioned", "countUnit": "days", "countNumber": 100}),
            expire(),
        ),
    ]));
}

#[test]
fn rule_2_3_tagged_needs_a_list() {
    let text = policy(vec![rule(
        1,
        json!({"tagStatus": "tagged", "countType": "imageCountMoreThan", "countNumber": 1}),
        expire(),
    )]);
    let v = assert_violation(&text, "2.3", "rules[0].selection");
    assert_eq!(
        v.message,
        "Must specify tagPrefixList or tagPatternList when tagStatus=TAGGED."
    );
}

#[test]
fn rule_2_3_empty_list_counts_as_missing() {
    let text = policy(vec![rule(
        1,
        json!({"tagStatus": "tagged", "tagPrefixList": [], "countType": "imageCountMoreThan", "countNumber": 1}),
        expire(),
    )]);
    assert_violation(&text, "2.3", "rules[0].selection");
}

#[test]
fn rule_2_4_untagged_and_any_carry_no_list() {
    let text = policy(vec![
        rule(
            1,
            json!({"tagStatus": "untagged", "tagPrefixList": ["a"], "countType": "imageCountMoreThan", "countNumber": 1}),
            expire(),
        ),
        rule(
            2,
            json!({"tagStatus": "any", "tagPatternList": ["a*"], "countType": "imageCountMoreThan", "countNumber": 1}),
            expire(),
        ),
    ]);
    assert_violation(&text, "2.4", "rules[0].selection.tagPrefixList");
    let v = assert_violation(&text, "2.4", "rules[1].selection.tagPatternList");
    assert_eq!(v.priority, Some(2));
    // An empty list is as good as none (assumption 7.10).
    valid(&policy(vec![rule(
        1,
        json!({"tagStatus": "untagged", "tagPrefixList": [], "countType": "imageCountMoreThan", "countNumber": 1}),
        expire(),
    )]));
}

#[test]
fn rule_2_5_not_both_lists_in_one_rule() {
    let text = policy(vec![rule(
        1,
        json!({"tagStatus": "tagged", "tagPrefixList": ["a"], "tagPatternList": ["b*"], "countType": "imageCountMoreThan", "countNumber": 1}),
        expire(),
    )]);
    let found = violations(&text);
    assert_eq!(found.len(), 1);
    assert_eq!(
        (found[0].rule, found[0].field.as_str()),
        ("2.5", "rules[0].selection.tagPatternList")
    );
}

#[test]
fn rule_2_6_at_most_four_wildcards_per_pattern() {
    let text = policy(vec![rule(
        1,
        json!({"tagStatus": "tagged", "tagPatternList": ["ok*", "test*1*2*3*4*5*6"], "countType": "imageCountMoreThan", "countNumber": 1}),
        expire(),
    )]);
    let v = assert_violation(&text, "2.6", "rules[0].selection.tagPatternList[1]");
    assert!(v.message.contains("6 wildcards"));
    assert_eq!(violations(&text).len(), 1);
}

#[test]
fn rule_2_7_one_untagged_rule_per_storage_class() {
    let text = policy(vec![
        rule(1, untagged_days(1), expire()),
        rule(2, prefix_count(&["a"], 1), expire()),
        rule(3, untagged_days(5), expire()),
    ]);
    let found = violations(&text);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(
        found[0].to_string(),
        "rule 2.7 (rulePriority 3, rules[2].selection.tagStatus): Only one rule can select Untagged images per storage class."
    );
}

#[test]
fn rule_2_7_any_rules_do_not_count_as_untagged() {
    valid(&policy(vec![
        rule(1, untagged_days(1), expire()),
        rule(2, any_count(3), expire()),
    ]));
}

#[test]
fn rule_2_8_identical_prefix_sets_per_storage_class() {
    let text = policy(vec![
        rule(1, prefix_count(&["prod", "v"], 5), expire()),
        rule(
            2,
            json!({"tagStatus": "tagged", "tagPrefixList": ["v", "prod", "v"], "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 30}),
            expire(),
        ),
    ]);
    let v = assert_violation(&text, "2.8", "rules[1].selection.tagPrefixList");
    assert!(v.message.contains("rulePriority 1"));
    // Different (even overlapping) sets are fine.
    valid(&policy(vec![
        rule(1, prefix_count(&["prod", "v"], 5), expire()),
        rule(2, prefix_count(&["prod"], 5), expire()),
    ]));
}

#[test]
fn rule_2_9_count_number_is_at_least_one() {
    for (bad, found) in [(0, "found: 0"), (-1, "found: -1")] {
        let mut selection = any_count(1);
        selection["countNumber"] = json!(bad);
        let v = assert_violation(
            &policy(vec![rule(1, selection, expire())]),
            "2.9",
            "rules[0].selection.countNumber",
        );
        assert!(v
            .message
            .contains("lower than the required minimum (minimum: 1"));
        assert!(v.message.contains(found));
    }
}

#[test]
fn rule_2_10_count_unit() {
    // Required for age types.
    let selection =
        json!({"tagStatus": "untagged", "countType": "sinceImagePushed", "countNumber": 1});
    assert_violation(
        &policy(vec![rule(1, selection, expire())]),
        "2.10",
        "rules[0].selection.countUnit",
    );
    // Forbidden with imageCountMoreThan.
    let mut selection = any_count(1);
    selection["countUnit"] = json!("days");
    assert_violation(
        &policy(vec![rule(1, selection, expire())]),
        "2.10",
        "rules[0].selection.countUnit",
    );
    // Only `days`.
    let selection = json!({"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "hours", "countNumber": 1});
    let v = assert_violation(
        &policy(vec![rule(1, selection, expire())]),
        "2.10",
        "rules[0].selection.countUnit",
    );
    assert!(v.message.contains("possible values: [\"days\"]"));
}

#[test]
fn rule_2_10_null_count_unit_is_present() {
    let mut selection = any_count(1);
    selection["countUnit"] = json!(null);
    assert_violation(
        &policy(vec![rule(1, selection, expire())]),
        "2.10",
        "rules[0].selection.countUnit",
    );
    let selection = json!({"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": null, "countNumber": 1});
    assert_violation(
        &policy(vec![rule(1, selection, expire())]),
        "2.10",
        "rules[0].selection.countUnit",
    );
}

#[test]
fn rule_2_11_storage_class_versus_count_type() {
    let selection = json!({"tagStatus": "any", "countType": "sinceImageTransitioned", "countUnit": "days", "countNumber": 90});
    assert_violation(
        &policy(vec![rule(1, selection, expire())]),
        "2.11",
        "rules[0].selection.storageClass",
    );
    let selection = json!({"tagStatus": "any", "storageClass": "standard", "countType": "sinceImageTransitioned", "countUnit": "days", "countNumber": 90});
    assert_violation(
        &policy(vec![rule(1, selection, expire())]),
        "2.11",
        "rules[0].selection.storageClass",
    );
    for count_type in ["imageCountMoreThan", "sinceImagePushed", "sinceImagePulled"] {
        let mut selection = json!({"tagStatus": "any", "storageClass": "archive", "countType": count_type, "countNumber": 5});
        if count_type != "imageCountMoreThan" {
            selection["countUnit"] = json!("days");
        }
        assert_violation(
            &policy(vec![rule(1, selection, transition())]),
            "2.11",
            "rules[0].selection.storageClass",
        );
    }
}

#[test]
fn rule_2_12_since_image_pulled_only_transitions() {
    let selection = json!({"tagStatus": "any", "countType": "sinceImagePulled", "countUnit": "days", "countNumber": 30});
    let v = assert_violation(
        &policy(vec![rule(1, selection.clone(), expire())]),
        "2.12",
        "rules[0].action.type",
    );
    assert_eq!(v.priority, Some(1));
    valid(&policy(vec![rule(1, selection, transition())]));
}

#[test]
fn rule_2_13_since_image_transitioned_only_expires() {
    let selection = json!({"tagStatus": "any", "storageClass": "archive", "countType": "sinceImageTransitioned", "countUnit": "days", "countNumber": 90});
    assert_violation(
        &policy(vec![rule(1, selection, transition())]),
        "2.13",
        "rules[0].action.type",
    );
}

#[test]
fn rule_2_14_target_storage_class() {
    assert_violation(
        &policy(vec![rule(1, any_count(3), json!({"type": "transition"}))]),
        "2.14",
        "rules[0].action.targetStorageClass",
    );
    assert_violation(
        &policy(vec![rule(
            1,
            any_count(3),
            json!({"type": "expire", "targetStorageClass": "archive"}),
        )]),
        "2.14",
        "rules[0].action.targetStorageClass",
    );
}

#[test]
fn rule_2_14_null_target_storage_class_is_present() {
    let v = assert_violation(
        &policy(vec![rule(
            1,
            any_count(3),
            json!({"type": "expire", "targetStorageClass": null}),
        )]),
        "2.14",
        "rules[0].action.targetStorageClass",
    );
    assert!(v.message.contains("null"));
    assert_violation(
        &policy(vec![rule(
            1,
            any_count(3),
            json!({"type": "transition", "targetStorageClass": null}),
        )]),
        "1.4",
        "rules[0].action.targetStorageClass",
    );
}

#[test]
fn rule_2_15_archive_expiry_needs_90_days() {
    let selection = |days: u64| json!({"tagStatus": "any", "storageClass": "archive", "countType": "sinceImageTransitioned", "countUnit": "days", "countNumber": days});
    let v = assert_violation(
        &policy(vec![rule(1, selection(89), expire())]),
        "2.15",
        "rules[0].selection.countNumber",
    );
    assert!(v.message.contains("at least 90"));
    valid(&policy(vec![rule(1, selection(90), expire())]));
}

// ---------------------------------------------------------------- reporting

#[test]
fn every_violation_is_reported_not_just_the_first() {
    let text = policy(vec![
        rule(
            1,
            any_count(0),
            json!({"type": "expire", "targetStorageClass": null}),
        ),
        rule(
            1,
            json!({"tagStatus": "tagged", "countType": "sinceImagePushed", "countNumber": 3}),
            expire(),
        ),
        rule(3, untagged_days(1), expire()),
        rule(4, untagged_days(2), expire()),
    ]);
    let found = violations(&text);
    let mut rules: Vec<&str> = found.iter().map(|v| v.rule).collect();
    rules.sort();
    assert_eq!(
        rules,
        vec!["2.1", "2.10", "2.14", "2.2", "2.3", "2.7", "2.9"],
        "{found:#?}"
    );
    // Display joins them one per line.
    let shown = PolicyError::Invalid(found.clone()).to_string();
    assert_eq!(shown.lines().count(), found.len());
}

#[test]
fn violation_display_without_priority_or_field() {
    let found = violations("[]");
    assert_eq!(found.len(), 2);
    assert!(
        found
            .iter()
            .all(|v| v.to_string().starts_with("rule 1.1: ")),
        "{found:#?}"
    );
}
