//! Canonical form of policy text, for deciding whether a repository's current policy already
//! says what a template says. It works on any JSON, valid policy or not, because the policy
//! stored in AWS may use members this crate does not model.

use std::cmp::Ordering;

use serde_json::{Map, Value};

/// Normalises policy text so that semantically equal documents compare equal:
///
/// * object keys sorted, whitespace dropped (by re-serialising);
/// * `rules` sorted by `rulePriority`; rules without a numeric priority keep their relative
///   order after the numeric ones;
/// * in each rule's `selection`, `tagPrefixList` and `tagPatternList` sorted and deduplicated,
///   an empty list removed (absent and empty mean the same), and `storageClass: "standard"`
///   removed (it is the default).
///
/// `description` and every other member are kept as they are.
pub fn canonicalize(text: &str) -> Result<Value, serde_json::Error> {
    let value: Value = serde_json::from_str(text)?;
    Ok(normalise_policy(value))
}

/// [`canonicalize`] printed as stable pretty JSON (two-space indent, trailing newline), suitable
/// for unified diffs. Members of the policy grammar come in the order ECR's documentation
/// writes them (`rulePriority`, `description`, `selection`, `action`...), so a diff reads like
/// the policy; any other member follows, alphabetically.
pub fn canonical_pretty(text: &str) -> Result<String, serde_json::Error> {
    let mut pretty = String::new();
    write_pretty(&canonicalize(text)?, 0, &mut pretty);
    pretty.push('\n');
    Ok(pretty)
}

const MEMBER_ORDER: [&str; 14] = [
    "rules",
    "rulePriority",
    "description",
    "selection",
    "action",
    "tagStatus",
    "tagPatternList",
    "tagPrefixList",
    "storageClass",
    "countType",
    "countUnit",
    "countNumber",
    "type",
    "targetStorageClass",
];

fn member_rank(key: &str) -> (usize, &str) {
    let known = MEMBER_ORDER.iter().position(|k| *k == key);
    (known.unwrap_or(MEMBER_ORDER.len()), key)
}

fn write_pretty(value: &Value, depth: usize, out: &mut String) {
    let indent = |out: &mut String, depth: usize| out.push_str(&"  ".repeat(depth));
    match value {
        Value::Object(map) if !map.is_empty() => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| member_rank(a.0).cmp(&member_rank(b.0)));
            out.push_str("{\n");
            for (i, (key, item)) in entries.iter().enumerate() {
                indent(out, depth + 1);
                out.push_str(&Value::String((*key).clone()).to_string());
                out.push_str(": ");
                write_pretty(item, depth + 1, out);
                out.push_str(if i + 1 < entries.len() { ",\n" } else { "\n" });
            }
            indent(out, depth);
            out.push('}');
        }
        Value::Array(items) if !items.is_empty() => {
            out.push_str("[\n");
            for (i, item) in items.iter().enumerate() {
                indent(out, depth + 1);
                write_pretty(item, depth + 1, out);
                out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
            }
            indent(out, depth);
            out.push(']');
        }
        // Scalars and empty containers print as compact JSON.
        other => out.push_str(&other.to_string()),
    }
}

/// Whether two policy texts mean the same thing (see [`canonicalize`]). If either side is not
/// JSON, the trimmed texts are compared instead.
pub fn semantically_equal(a: &str, b: &str) -> bool {
    match (canonicalize(a), canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a.trim() == b.trim(),
    }
}

fn normalise_policy(value: Value) -> Value {
    let Value::Object(mut top) = value else {
        return sort_keys(value);
    };
    if let Some(Value::Array(rules)) = top.get_mut("rules") {
        let mut owned: Vec<Value> = std::mem::take(rules)
            .into_iter()
            .map(normalise_rule)
            .collect();
        // Stable sort, so equal or non-numeric priorities keep document order.
        owned.sort_by(|a, b| compare_priority(priority_of(a), priority_of(b)));
        *rules = owned;
    }
    sort_keys(Value::Object(top))
}

fn normalise_rule(rule: Value) -> Value {
    let Value::Object(mut rule) = rule else {
        return rule;
    };
    if let Some(Value::Object(selection)) = rule.get_mut("selection") {
        for name in ["tagPrefixList", "tagPatternList"] {
            let emptied = match selection.get_mut(name) {
                Some(Value::Array(list)) => {
                    sort_dedup(list);
                    list.is_empty()
                }
                _ => false,
            };
            if emptied {
                selection.remove(name);
            }
        }
        if selection.get("storageClass").and_then(Value::as_str) == Some("standard") {
            selection.remove("storageClass");
        }
    }
    Value::Object(rule)
}

fn priority_of(rule: &Value) -> Option<f64> {
    rule.get("rulePriority").and_then(Value::as_f64)
}

fn compare_priority(a: Option<f64>, b: Option<f64>) -> Ordering {
    match (a, b) {
        (Some(a), Some(b)) => a.total_cmp(&b),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

/// Sorts a list as a set. Strings sort as strings; anything else (not valid in a policy, but
/// possible in text from elsewhere) sorts by its JSON text after the strings.
fn sort_dedup(list: &mut Vec<Value>) {
    list.sort_by(|a, b| match (a, b) {
        (Value::String(a), Value::String(b)) => a.cmp(b),
        (Value::String(_), _) => Ordering::Less,
        (_, Value::String(_)) => Ordering::Greater,
        _ => a.to_string().cmp(&b.to_string()),
    });
    list.dedup();
}

/// Rebuilds every object with its keys in sorted order, so the result prints the same whether
/// or not serde_json keeps insertion order (`preserve_order`).
fn sort_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            let mut sorted = Map::new();
            for (key, value) in entries {
                sorted.insert(key, sort_keys(value));
            }
            Value::Object(sorted)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sort_keys).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"{"rules":[
        {"rulePriority":1,"description":"keep prod","selection":{"tagStatus":"tagged","tagPrefixList":["prod","release"],"countType":"imageCountMoreThan","countNumber":10},"action":{"type":"expire"}},
        {"rulePriority":2,"selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":7},"action":{"type":"expire"}}
    ]}"#;

    #[test]
    fn pretty_form_follows_the_documented_member_order_and_parses_back() {
        let text = r#"{"rules":[{"action":{"type":"expire"},"selection":{"countNumber":7,"countUnit":"days","countType":"sinceImagePushed","tagStatus":"untagged","zExtra":[]},"rulePriority":1}]}"#;
        let pretty = canonical_pretty(text).unwrap();
        let expected = "{\n  \"rules\": [\n    {\n      \"rulePriority\": 1,\n      \"selection\": {\n        \"tagStatus\": \"untagged\",\n        \"countType\": \"sinceImagePushed\",\n        \"countUnit\": \"days\",\n        \"countNumber\": 7,\n        \"zExtra\": []\n      },\n      \"action\": {\n        \"type\": \"expire\"\n      }\n    }\n  ]\n}\n";
        assert_eq!(pretty, expected);
        assert!(semantically_equal(&pretty, text));
    }

    #[test]
    fn reordered_rules_are_equal() {
        let other = r#"{"rules":[
        {"rulePriority":2,"selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":7},"action":{"type":"expire"}},
        {"rulePriority":1,"description":"keep prod","selection":{"tagStatus":"tagged","tagPrefixList":["prod","release"],"countType":"imageCountMoreThan","countNumber":10},"action":{"type":"expire"}}
        ]}"#;
        assert!(semantically_equal(BASE, other));
    }

    #[test]
    fn tag_lists_are_sets() {
        let other = BASE.replace(r#"["prod","release"]"#, r#"["release","prod","release"]"#);
        assert!(semantically_equal(BASE, &other));
        let different = BASE.replace(r#"["prod","release"]"#, r#"["prod"]"#);
        assert!(!semantically_equal(BASE, &different));
    }

    #[test]
    fn whitespace_and_key_order_are_ignored() {
        let other = r#"{ "rules" : [ { "selection" : { "countNumber" : 10, "countType" : "imageCountMoreThan", "tagPrefixList" : [ "prod", "release" ], "tagStatus" : "tagged" }, "action" : { "type" : "expire" }, "description" : "keep prod", "rulePriority" : 1 },
            {"action":{"type":"expire"},"rulePriority":2,"selection":{"countNumber":7,"countUnit":"days","countType":"sinceImagePushed","tagStatus":"untagged"}} ] }"#;
        assert!(semantically_equal(BASE, other));
        assert_eq!(
            canonical_pretty(BASE).unwrap(),
            canonical_pretty(other).unwrap()
        );
    }

    #[test]
    fn empty_list_equals_absent_list() {
        let with_empty = BASE.replace(
            r#""tagStatus":"untagged","#,
            r#""tagStatus":"untagged","tagPatternList":[],"#,
        );
        assert_ne!(with_empty, BASE);
        assert!(semantically_equal(BASE, &with_empty));
    }

    #[test]
    fn standard_storage_class_equals_absent() {
        let explicit = BASE.replace(
            r#""tagStatus":"untagged","#,
            r#""tagStatus":"untagged","storageClass":"standard","#,
        );
        assert!(semantically_equal(BASE, &explicit));
        let archive = BASE.replace(
            r#""tagStatus":"untagged","#,
            r#""tagStatus":"untagged","storageClass":"archive","#,
        );
        assert!(!semantically_equal(BASE, &archive));
    }

    #[test]
    fn description_is_significant() {
        let other = BASE.replace("keep prod", "keep production");
        assert!(!semantically_equal(BASE, &other));
        let without = BASE.replace(r#""description":"keep prod","#, "");
        assert!(!semantically_equal(BASE, &without));
    }

    #[test]
    fn other_differences_are_significant() {
        assert!(!semantically_equal(
            BASE,
            &BASE.replace("\"countNumber\":7", "\"countNumber\":8")
        ));
        assert!(!semantically_equal(
            BASE,
            &BASE.replace("\"rulePriority\":2", "\"rulePriority\":3")
        ));
    }

    #[test]
    fn unknown_members_and_invalid_policies_still_compare() {
        let a = r#"{"rules":[{"rulePriority":"x","a":1},{"rulePriority":2,"z":[]},{"b":2}],"extra":true}"#;
        let b = r#"{"extra":true,"rules":[{"rulePriority":2,"z":[]},{"a":1,"rulePriority":"x"},{"b":2}]}"#;
        assert!(semantically_equal(a, b));
        let value = canonicalize(a).unwrap();
        // Numeric priorities first, the others after in document order.
        assert_eq!(value["rules"][0]["rulePriority"], 2);
        assert_eq!(value["rules"][1]["rulePriority"], "x");
        assert_eq!(value["rules"][2]["b"], 2);
        // Lists other than the tag lists are kept, even when empty.
        assert_eq!(value["rules"][0]["z"], serde_json::json!([]));
    }

    #[test]
    fn not_json_compares_trimmed_text() {
        assert!(semantically_equal("  not json\n", "not json"));
        assert!(!semantically_equal("not json", "{}"));
        assert!(canonicalize("not json").is_err());
        assert!(semantically_equal("[1, 2]", "[1,2]"));
    }

    #[test]
    fn canonical_form_is_a_fixed_point_even_for_long_numbers() {
        // Found by the fuzzer: without correctly rounded float parsing, printing and parsing
        // again changed the last digit.
        let text = "7".repeat(53);
        let pretty = canonical_pretty(&text).unwrap();
        assert_eq!(canonicalize(&pretty).unwrap(), canonicalize(&text).unwrap());
    }
}
