// size: one function per rule of sections 1 and 2 of the grammar, in the order the rules are
// numbered (crates/lifecycle/RULES.md); split, a rule and its neighbours would be read apart.
//! Validation of policy text against the full grammar (sections 1 and 2). Every violation is
//! collected, not just the first, so a user can fix a document in one pass.

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use serde_json::{Map, Value};

use crate::assumptions::{
    EMPTY_TAG_LIST_IS_ABSENT, MAX_COUNT_NUMBER, MAX_DESCRIPTION_CHARS, MAX_POLICY_CHARS, MAX_RULES,
    MAX_WILDCARDS_PER_PATTERN, MIN_DAYS_BEFORE_ARCHIVE_EXPIRY, MIN_POLICY_CHARS, MIN_RULE_PRIORITY,
    MIN_SINCE_IMAGE_PULLED_DAYS, REJECT_UNKNOWN_RULE_MEMBERS, REJECT_UNKNOWN_TOP_LEVEL_MEMBERS,
    REJECT_UPPERCASE_ENUMS, UNIQUE_PATTERN_SETS_PER_STORAGE_CLASS,
    UNIQUE_PREFIX_SETS_PER_STORAGE_CLASS,
};
use crate::model::{
    Action, ActionType, CountType, CountUnit, Policy, Rule, Selection, StorageClass, TagStatus,
};

/// Why a policy text was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The text is not JSON at all.
    #[error("Could not map policyString into LifecyclePolicy: invalid JSON at line {line}, column {column}: {message}")]
    Json {
        line: usize,
        column: usize,
        message: String,
    },
    /// The text is JSON but breaks the grammar; every violation found.
    #[error("{}", join_lines(.0))]
    Invalid(Vec<Violation>),
}

fn join_lines(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(Violation::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// One broken rule of the grammar.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Violation {
    /// Number of the rule in `RULES.md`, e.g. `"2.7"`.
    pub rule: &'static str,
    /// `rulePriority` of the offending rule, when it could be read.
    pub priority: Option<i64>,
    /// JSON path of the offending member, e.g. `rules[2].selection.countUnit`; empty for the
    /// document as a whole.
    pub field: String,
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rule {}", self.rule)?;
        match (self.priority, self.field.is_empty()) {
            (Some(priority), false) => write!(f, " (rulePriority {priority}, {})", self.field)?,
            (Some(priority), true) => write!(f, " (rulePriority {priority})")?,
            (None, false) => write!(f, " ({})", self.field)?,
            (None, true) => {}
        }
        write!(f, ": {}", self.message)
    }
}

/// Parses and validates a lifecycle policy document.
pub fn parse_policy(text: &str) -> Result<Policy, PolicyError> {
    let document: Value = serde_json::from_str(text).map_err(json_error)?;
    let mut checker = Checker::default();
    checker.length(text);
    let drafts = checker.document(&document);
    checker.across_rules(&drafts);
    if !checker.violations.is_empty() {
        return Err(PolicyError::Invalid(checker.violations));
    }
    let mut rules = Vec::with_capacity(drafts.len());
    for draft in &drafts {
        match draft.finish() {
            Some(rule) => rules.push(rule),
            // Unreachable when every gap was reported; keep the promise never to panic anyway.
            None => checker.push(
                "1.2",
                draft.priority,
                format!("rules[{}]", draft.index),
                "the rule could not be read completely".into(),
            ),
        }
    }
    if checker.violations.is_empty() {
        Ok(Policy { rules })
    } else {
        Err(PolicyError::Invalid(checker.violations))
    }
}

fn json_error(error: serde_json::Error) -> PolicyError {
    let full = error.to_string();
    // serde_json appends the position, which we report in fields of our own.
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    let message = full.strip_suffix(&suffix).unwrap_or(&full).to_string();
    PolicyError::Json {
        line: error.line(),
        column: error.column(),
        message,
    }
}

/// JSON-schema style name of a value's type, as in the service's messages.
fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_message(value: &Value, allowed: &str) -> String {
    format!(
        "instance type ({}) does not match any allowed primitive type (allowed: [\"{allowed}\"])",
        type_name(value)
    )
}

fn quoted_list(values: &[&str]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| format!("\"{v}\"")).collect();
    format!("[{}]", quoted.join(","))
}

const TOP_MEMBERS: &[&str] = &["rules"];
const RULE_MEMBERS: &[&str] = &["rulePriority", "description", "selection", "action"];
const RULE_REQUIRED: &[&str] = &["rulePriority", "selection", "action"];
const SELECTION_MEMBERS: &[&str] = &[
    "tagStatus",
    "tagPrefixList",
    "tagPatternList",
    "storageClass",
    "countType",
    "countUnit",
    "countNumber",
];
const SELECTION_REQUIRED: &[&str] = &["tagStatus", "countType", "countNumber"];
const ACTION_MEMBERS: &[&str] = &["type", "targetStorageClass"];
const ACTION_REQUIRED: &[&str] = &["type"];

const TAG_STATUSES: &[(&str, TagStatus)] = &[
    ("tagged", TagStatus::Tagged),
    ("untagged", TagStatus::Untagged),
    ("any", TagStatus::Any),
];
const STORAGE_CLASSES: &[(&str, StorageClass)] = &[
    ("standard", StorageClass::Standard),
    ("archive", StorageClass::Archive),
];
const TARGET_STORAGE_CLASSES: &[(&str, StorageClass)] = &[("archive", StorageClass::Archive)];
const COUNT_TYPES: &[(&str, CountType)] = &[
    ("imageCountMoreThan", CountType::ImageCountMoreThan),
    ("sinceImagePushed", CountType::SinceImagePushed),
    ("sinceImagePulled", CountType::SinceImagePulled),
    ("sinceImageTransitioned", CountType::SinceImageTransitioned),
];
const COUNT_UNITS: &[(&str, CountUnit)] = &[("days", CountUnit::Days)];
const ACTION_TYPES: &[(&str, ActionType)] = &[
    ("expire", ActionType::Expire),
    ("transition", ActionType::Transition),
];

/// A tag list as found in the document.
#[derive(Debug, Clone, PartialEq, Eq)]
enum TagList {
    Absent,
    /// Present but not an array of strings (already reported).
    Malformed,
    Entries(Vec<String>),
}

impl TagList {
    /// Whether the rule "carries" this list for 2.3–2.5.
    fn is_carried(&self) -> bool {
        match self {
            TagList::Absent => false,
            TagList::Malformed => true,
            TagList::Entries(entries) => !(entries.is_empty() && EMPTY_TAG_LIST_IS_ABSENT),
        }
    }

    /// The list as the typed model holds it.
    fn to_model(&self) -> Option<Vec<String>> {
        match self {
            TagList::Entries(entries) if self.is_carried() => Some(entries.clone()),
            _ => None,
        }
    }
}

/// What could be read of one rule; `None` means missing or invalid (and reported).
#[derive(Debug)]
struct Draft {
    index: usize,
    priority: Option<i64>,
    description: Option<String>,
    tag_status: Option<TagStatus>,
    prefixes: TagList,
    patterns: TagList,
    storage_class: Option<StorageClass>,
    count_type: Option<CountType>,
    count_unit: Option<CountUnit>,
    count_number: Option<u64>,
    action: Option<ActionType>,
    target: Option<StorageClass>,
}

impl Draft {
    fn finish(&self) -> Option<Rule> {
        Some(Rule {
            rule_priority: self.priority?,
            description: self.description.clone(),
            selection: Selection {
                tag_status: self.tag_status?,
                tag_prefix_list: self.prefixes.to_model(),
                tag_pattern_list: self.patterns.to_model(),
                storage_class: self.storage_class?,
                count_type: self.count_type?,
                count_unit: self.count_unit,
                count_number: self.count_number?,
            },
            action: Action {
                kind: self.action?,
                target_storage_class: self.target,
            },
        })
    }
}

#[derive(Default)]
struct Checker {
    violations: Vec<Violation>,
}

impl Checker {
    fn push(&mut self, rule: &'static str, priority: Option<i64>, field: String, message: String) {
        self.violations.push(Violation {
            rule,
            priority,
            field,
            message,
        });
    }

    fn length(&mut self, text: &str) {
        let chars = text.chars().count();
        if !(MIN_POLICY_CHARS..=MAX_POLICY_CHARS).contains(&chars) {
            self.push(
                "1.1",
                None,
                String::new(),
                format!(
                    "the policy text must be {MIN_POLICY_CHARS} to {MAX_POLICY_CHARS} characters long; this one has {chars}"
                ),
            );
        }
    }

    /// Reports missing and (when the assumption says so) unknown members of an object.
    #[allow(clippy::too_many_arguments)]
    fn members(
        &mut self,
        object: &Map<String, Value>,
        path: &str,
        allowed: &[&str],
        required: &[&str],
        rule: &'static str,
        priority: Option<i64>,
        reject_unknown: bool,
    ) {
        for name in required {
            if !object.contains_key(*name) {
                self.push(
                    rule,
                    priority,
                    join_path(path, name),
                    format!("object has missing required properties ([\"{name}\"])"),
                );
            }
        }
        if reject_unknown {
            for name in object.keys() {
                if !allowed.contains(&name.as_str()) {
                    self.push(
                        rule,
                        priority,
                        join_path(path, name),
                        format!(
                            "object instance has properties which are not allowed by the schema: ([\"{name}\"])"
                        ),
                    );
                }
            }
        }
    }

    /// Reads a lowercase enumerated string value.
    fn enumerated<T: Copy>(
        &mut self,
        value: &Value,
        field: String,
        choices: &[(&str, T)],
        rule: &'static str,
        priority: Option<i64>,
    ) -> Option<T> {
        let Value::String(text) = value else {
            self.push(rule, priority, field, type_message(value, "string"));
            return None;
        };
        if let Some((_, found)) = choices.iter().find(|(name, _)| name == text) {
            return Some(*found);
        }
        let names: Vec<&str> = choices.iter().map(|(name, _)| *name).collect();
        let other_case = choices
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(text));
        match other_case {
            Some((_, found)) if !REJECT_UPPERCASE_ENUMS => Some(*found),
            Some((name, _)) => {
                self.push(
                    "1.5",
                    priority,
                    field,
                    format!(
                        "instance value (\"{text}\") not found in enum (possible values: {}); values inside a policy are lowercase: write \"{name}\"",
                        quoted_list(&names)
                    ),
                );
                None
            }
            None => {
                self.push(
                    rule,
                    priority,
                    field,
                    format!(
                        "instance value (\"{text}\") not found in enum (possible values: {})",
                        quoted_list(&names)
                    ),
                );
                None
            }
        }
    }

    /// Top level (1.1); returns what could be read of each rule.
    fn document(&mut self, document: &Value) -> Vec<Draft> {
        let Value::Object(top) = document else {
            self.push("1.1", None, String::new(), type_message(document, "object"));
            return Vec::new();
        };
        self.members(
            top,
            "",
            TOP_MEMBERS,
            TOP_MEMBERS,
            "1.1",
            None,
            REJECT_UNKNOWN_TOP_LEVEL_MEMBERS,
        );
        let rules = match top.get("rules") {
            None => return Vec::new(),
            Some(Value::Array(rules)) => rules,
            Some(other) => {
                self.push("1.1", None, "rules".into(), type_message(other, "array"));
                return Vec::new();
            }
        };
        if rules.is_empty() {
            self.push(
                "1.1",
                None,
                "rules".into(),
                "a lifecycle policy must contain at least one rule".into(),
            );
        }
        if rules.len() > MAX_RULES {
            self.push(
                "1.1",
                None,
                "rules".into(),
                format!(
                    "a lifecycle policy can hold at most {MAX_RULES} rules; this one has {}",
                    rules.len()
                ),
            );
        }
        rules
            .iter()
            .enumerate()
            .filter_map(|(index, rule)| self.rule(index, rule))
            .collect()
    }

    /// One rule (1.2) with its selection (1.3) and action (1.4), plus the checks that involve
    /// only this rule.
    fn rule(&mut self, index: usize, value: &Value) -> Option<Draft> {
        let path = format!("rules[{index}]");
        let Value::Object(rule) = value else {
            self.push("1.2", None, path, type_message(value, "object"));
            return None;
        };
        // Read the priority first so that every later violation can name it.
        let priority = rule
            .get("rulePriority")
            .and_then(|value| self.priority(value, format!("{path}.rulePriority")));
        self.members(
            rule,
            &path,
            RULE_MEMBERS,
            RULE_REQUIRED,
            "1.2",
            priority,
            REJECT_UNKNOWN_RULE_MEMBERS,
        );
        let mut draft = Draft {
            index,
            priority,
            description: None,
            tag_status: None,
            prefixes: TagList::Absent,
            patterns: TagList::Absent,
            storage_class: None,
            count_type: None,
            count_unit: None,
            count_number: None,
            action: None,
            target: None,
        };
        if let Some(description) = rule.get("description") {
            draft.description =
                self.description(description, format!("{path}.description"), priority);
        }
        let selection_path = format!("{path}.selection");
        let selection = match rule.get("selection") {
            Some(Value::Object(selection)) => Some(selection),
            Some(other) => {
                self.push(
                    "1.2",
                    priority,
                    selection_path.clone(),
                    type_message(other, "object"),
                );
                None
            }
            None => None,
        };
        if let Some(selection) = selection {
            self.selection(selection, &selection_path, &mut draft);
        }
        let action_path = format!("{path}.action");
        let action = match rule.get("action") {
            Some(Value::Object(action)) => Some(action),
            Some(other) => {
                self.push(
                    "1.2",
                    priority,
                    action_path.clone(),
                    type_message(other, "object"),
                );
                None
            }
            None => None,
        };
        if let Some(action) = action {
            self.action(action, &action_path, &mut draft);
        }
        self.count_versus_action(&draft, &path);
        Some(draft)
    }

    fn priority(&mut self, value: &Value, field: String) -> Option<i64> {
        let Value::Number(number) = value else {
            self.push("1.2", None, field, type_message(value, "integer"));
            return None;
        };
        let Some(priority) = number.as_i64() else {
            let message = if number.is_u64() {
                format!("rulePriority {number} is out of range")
            } else {
                type_message(value, "integer")
            };
            self.push("1.2", None, field, message);
            return None;
        };
        if priority < MIN_RULE_PRIORITY {
            self.push(
                "1.2",
                Some(priority),
                field,
                format!(
                    "numeric instance is lower than the required minimum (minimum: {MIN_RULE_PRIORITY}, found: {priority})"
                ),
            );
        }
        Some(priority)
    }

    fn description(
        &mut self,
        value: &Value,
        field: String,
        priority: Option<i64>,
    ) -> Option<String> {
        let Value::String(text) = value else {
            self.push("1.2", priority, field, type_message(value, "string"));
            return None;
        };
        if let Some(max) = MAX_DESCRIPTION_CHARS {
            let chars = text.chars().count();
            if chars > max {
                self.push(
                    "1.2",
                    priority,
                    field,
                    format!("description is {chars} characters long; at most {max} are allowed"),
                );
            }
        }
        Some(text.clone())
    }

    fn selection(&mut self, selection: &Map<String, Value>, path: &str, draft: &mut Draft) {
        let priority = draft.priority;
        self.members(
            selection,
            path,
            SELECTION_MEMBERS,
            SELECTION_REQUIRED,
            "1.3",
            priority,
            REJECT_UNKNOWN_RULE_MEMBERS,
        );
        draft.tag_status = selection.get("tagStatus").and_then(|value| {
            self.enumerated(
                value,
                join_path(path, "tagStatus"),
                TAG_STATUSES,
                "1.3",
                priority,
            )
        });
        draft.prefixes = self.tag_list(selection, path, "tagPrefixList", priority);
        draft.patterns = self.tag_list(selection, path, "tagPatternList", priority);
        draft.storage_class = match selection.get("storageClass") {
            None => Some(StorageClass::Standard),
            Some(value) => self.enumerated(
                value,
                join_path(path, "storageClass"),
                STORAGE_CLASSES,
                "1.3",
                priority,
            ),
        };
        draft.count_type = selection.get("countType").and_then(|value| {
            self.enumerated(
                value,
                join_path(path, "countType"),
                COUNT_TYPES,
                "1.3",
                priority,
            )
        });
        draft.count_number = selection
            .get("countNumber")
            .and_then(|value| self.count_number(value, join_path(path, "countNumber"), priority));

        self.tag_rules(draft, path);
        self.count_unit(selection.get("countUnit"), draft, path);
        self.count_rules(draft, path);
    }

    fn tag_list(
        &mut self,
        selection: &Map<String, Value>,
        path: &str,
        name: &str,
        priority: Option<i64>,
    ) -> TagList {
        let field = join_path(path, name);
        match selection.get(name) {
            None => TagList::Absent,
            Some(Value::Array(items)) => {
                let mut entries = Vec::with_capacity(items.len());
                for (k, item) in items.iter().enumerate() {
                    match item {
                        Value::String(entry) => entries.push(entry.clone()),
                        other => {
                            self.push(
                                "1.3",
                                priority,
                                format!("{field}[{k}]"),
                                type_message(other, "string"),
                            );
                        }
                    }
                }
                if entries.len() == items.len() {
                    TagList::Entries(entries)
                } else {
                    TagList::Malformed
                }
            }
            Some(other) => {
                self.push("1.3", priority, field, type_message(other, "array"));
                TagList::Malformed
            }
        }
    }

    fn count_number(&mut self, value: &Value, field: String, priority: Option<i64>) -> Option<u64> {
        let Value::Number(number) = value else {
            self.push("1.3", priority, field, type_message(value, "integer"));
            return None;
        };
        if let Some(count) = number.as_u64() {
            if count == 0 {
                self.push(
                    "2.9",
                    priority,
                    field,
                    "numeric instance is lower than the required minimum (minimum: 1, found: 0)"
                        .into(),
                );
                return None;
            }
            if let Some(max) = MAX_COUNT_NUMBER {
                if count > max {
                    self.push(
                        "1.3",
                        priority,
                        field,
                        format!("numeric instance is greater than the required maximum (maximum: {max}, found: {count})"),
                    );
                    return None;
                }
            }
            return Some(count);
        }
        if let Some(negative) = number.as_i64() {
            self.push(
                "2.9",
                priority,
                field,
                format!("numeric instance is lower than the required minimum (minimum: 1, found: {negative})"),
            );
        } else {
            self.push("1.3", priority, field, type_message(value, "integer"));
        }
        None
    }

    /// 2.3–2.6: which tag lists a rule may carry, and the wildcard limit.
    fn tag_rules(&mut self, draft: &Draft, path: &str) {
        let priority = draft.priority;
        let has_prefixes = draft.prefixes.is_carried();
        let has_patterns = draft.patterns.is_carried();
        match draft.tag_status {
            Some(TagStatus::Tagged) if !has_prefixes && !has_patterns => self.push(
                "2.3",
                priority,
                path.to_string(),
                "Must specify tagPrefixList or tagPatternList when tagStatus=TAGGED.".into(),
            ),
            Some(status @ (TagStatus::Untagged | TagStatus::Any)) => {
                let status = if status == TagStatus::Any {
                    "any"
                } else {
                    "untagged"
                };
                for (name, carried) in [
                    ("tagPrefixList", has_prefixes),
                    ("tagPatternList", has_patterns),
                ] {
                    if carried {
                        self.push(
                            "2.4",
                            priority,
                            join_path(path, name),
                            format!("{name} is only allowed when tagStatus is \"tagged\", not \"{status}\""),
                        );
                    }
                }
            }
            _ => {}
        }
        if has_prefixes && has_patterns {
            self.push(
                "2.5",
                priority,
                join_path(path, "tagPatternList"),
                "a rule can carry tagPrefixList or tagPatternList, not both; use one rule per kind of list".into(),
            );
        }
        if let TagList::Entries(patterns) = &draft.patterns {
            for (k, pattern) in patterns.iter().enumerate() {
                let stars = pattern.matches('*').count();
                if stars > MAX_WILDCARDS_PER_PATTERN {
                    self.push(
                        "2.6",
                        priority,
                        format!("{path}.tagPatternList[{k}]"),
                        format!(
                            "tag pattern \"{pattern}\" has {stars} wildcards (*); at most {MAX_WILDCARDS_PER_PATTERN} are allowed"
                        ),
                    );
                }
            }
        }
    }

    /// 2.10: `countUnit` is `days`, required for the age types and forbidden for
    /// `imageCountMoreThan`; a JSON null counts as present (6.9).
    fn count_unit(&mut self, value: Option<&Value>, draft: &mut Draft, path: &str) {
        let priority = draft.priority;
        let field = join_path(path, "countUnit");
        match (draft.count_type, value) {
            (Some(CountType::ImageCountMoreThan), Some(value)) => self.push(
                "2.10",
                priority,
                field,
                format!(
                    "countUnit is not allowed when countType is imageCountMoreThan{}",
                    null_note(value)
                ),
            ),
            (Some(count_type), None) if count_type.is_age() => self.push(
                "2.10",
                priority,
                field,
                format!(
                    "countUnit \"days\" is required when countType is {}",
                    count_type.as_policy_str()
                ),
            ),
            (_, Some(Value::Null)) => self.push(
                "2.10",
                priority,
                field,
                "countUnit must be \"days\"; null does not count as absent".into(),
            ),
            (_, Some(value)) => {
                draft.count_unit = self.enumerated(value, field, COUNT_UNITS, "2.10", priority);
            }
            (_, None) => {}
        }
    }

    /// 2.11 and 2.15 (and 2.17 if a minimum is ever configured).
    fn count_rules(&mut self, draft: &Draft, path: &str) {
        let priority = draft.priority;
        let (Some(count_type), Some(class)) = (draft.count_type, draft.storage_class) else {
            return;
        };
        let transitioned = count_type == CountType::SinceImageTransitioned;
        if transitioned && class != StorageClass::Archive {
            self.push(
                "2.11",
                priority,
                join_path(path, "storageClass"),
                "countType sinceImageTransitioned requires storageClass \"archive\"".into(),
            );
        }
        if !transitioned && class == StorageClass::Archive {
            self.push(
                "2.11",
                priority,
                join_path(path, "storageClass"),
                format!(
                    "storageClass \"archive\" can only be used with countType sinceImageTransitioned, not {}",
                    count_type.as_policy_str()
                ),
            );
        }
        let Some(count) = draft.count_number else {
            return;
        };
        if transitioned && count < MIN_DAYS_BEFORE_ARCHIVE_EXPIRY {
            self.push(
                "2.15",
                priority,
                join_path(path, "countNumber"),
                format!(
                    "archived images cannot be expired before {MIN_DAYS_BEFORE_ARCHIVE_EXPIRY} days in archive; countNumber for sinceImageTransitioned must be at least {MIN_DAYS_BEFORE_ARCHIVE_EXPIRY}, found {count}"
                ),
            );
        }
        if let Some(min) = MIN_SINCE_IMAGE_PULLED_DAYS {
            if count_type == CountType::SinceImagePulled && count < min {
                self.push(
                    "2.17",
                    priority,
                    join_path(path, "countNumber"),
                    format!(
                        "countNumber for sinceImagePulled must be at least {min}, found {count}"
                    ),
                );
            }
        }
    }

    /// The action object (1.4) and 2.14.
    fn action(&mut self, action: &Map<String, Value>, path: &str, draft: &mut Draft) {
        let priority = draft.priority;
        self.members(
            action,
            path,
            ACTION_MEMBERS,
            ACTION_REQUIRED,
            "1.4",
            priority,
            REJECT_UNKNOWN_RULE_MEMBERS,
        );
        draft.action = action.get("type").and_then(|value| {
            self.enumerated(
                value,
                join_path(path, "type"),
                ACTION_TYPES,
                "1.4",
                priority,
            )
        });
        let field = join_path(path, "targetStorageClass");
        match (draft.action, action.get("targetStorageClass")) {
            (Some(ActionType::Transition), None) => self.push(
                "2.14",
                priority,
                field,
                "targetStorageClass \"archive\" is required when the action type is transition"
                    .into(),
            ),
            (Some(ActionType::Expire), Some(value)) => self.push(
                "2.14",
                priority,
                field,
                format!(
                    "targetStorageClass is not allowed when the action type is expire{}",
                    null_note(value)
                ),
            ),
            (_, Some(value)) => {
                draft.target =
                    self.enumerated(value, field, TARGET_STORAGE_CLASSES, "1.4", priority);
            }
            (_, None) => {}
        }
    }

    /// 2.12 and 2.13: which count types each action accepts.
    fn count_versus_action(&mut self, draft: &Draft, path: &str) {
        let field = format!("{path}.action.type");
        match (draft.count_type, draft.action) {
            (Some(CountType::SinceImagePulled), Some(ActionType::Expire)) => self.push(
                "2.12",
                draft.priority,
                field,
                "countType sinceImagePulled can only be used with action type transition; images cannot be expired by pull time".into(),
            ),
            (Some(CountType::SinceImageTransitioned), Some(ActionType::Transition)) => self.push(
                "2.13",
                draft.priority,
                field,
                "countType sinceImageTransitioned can only be used with action type expire".into(),
            ),
            _ => {}
        }
    }

    /// Checks that compare rules with each other: 2.1, 2.2, 2.7, 2.8.
    fn across_rules(&mut self, drafts: &[Draft]) {
        // 2.1: report each later holder of an already used priority.
        let mut first_holder: HashMap<i64, usize> = HashMap::new();
        for draft in drafts {
            let Some(priority) = draft.priority else {
                continue;
            };
            if let Some(first) = first_holder.get(&priority) {
                self.push(
                    "2.1",
                    Some(priority),
                    format!("rules[{}].rulePriority", draft.index),
                    format!("rulePriority {priority} is already used by rules[{first}]; every rulePriority must be unique"),
                );
            } else {
                first_holder.insert(priority, draft.index);
            }
        }

        // The remaining checks go in evaluation order; rules without a readable priority last.
        let mut ordered: Vec<&Draft> = drafts.iter().collect();
        ordered.sort_by_key(|draft| (draft.priority.is_none(), draft.priority, draft.index));

        for class in [StorageClass::Standard, StorageClass::Archive] {
            let in_class: Vec<&Draft> = ordered
                .iter()
                .copied()
                .filter(|draft| draft.storage_class == Some(class))
                .collect();
            self.any_is_last(&in_class, class);
            self.single_untagged(&in_class);
            if UNIQUE_PREFIX_SETS_PER_STORAGE_CLASS {
                self.unique_sets(&in_class, class, "tagPrefixList", |draft| &draft.prefixes);
            }
            if UNIQUE_PATTERN_SETS_PER_STORAGE_CLASS {
                self.unique_sets(&in_class, class, "tagPatternList", |draft| &draft.patterns);
            }
        }
    }

    /// 2.2: an `any` rule has the largest priority number of its storage class.
    fn any_is_last(&mut self, in_class: &[&Draft], class: StorageClass) {
        let Some(last) = in_class.iter().filter_map(|draft| draft.priority).max() else {
            return;
        };
        for draft in in_class {
            let Some(priority) = draft.priority else {
                continue;
            };
            if draft.tag_status == Some(TagStatus::Any) && priority < last {
                self.push(
                    "2.2",
                    Some(priority),
                    format!("rules[{}].selection.tagStatus", draft.index),
                    format!(
                        "Rule for tagStatus=ANY must have the lowest priority per storage class (the largest rulePriority among {} rules, here {last}).",
                        class.as_policy_str()
                    ),
                );
            }
        }
    }

    /// 2.7: one `untagged` rule per storage class; every one after the first is reported.
    fn single_untagged(&mut self, in_class: &[&Draft]) {
        let untagged = in_class
            .iter()
            .filter(|draft| draft.tag_status == Some(TagStatus::Untagged));
        for draft in untagged.skip(1) {
            self.push(
                "2.7",
                draft.priority,
                format!("rules[{}].selection.tagStatus", draft.index),
                "Only one rule can select Untagged images per storage class.".into(),
            );
        }
    }

    /// 2.8: no two rules of one storage class carry the same set of list entries.
    fn unique_sets(
        &mut self,
        in_class: &[&Draft],
        class: StorageClass,
        name: &str,
        list: fn(&Draft) -> &TagList,
    ) {
        let mut seen: HashMap<BTreeSet<&str>, Option<i64>> = HashMap::new();
        for draft in in_class {
            let TagList::Entries(entries) = list(draft) else {
                continue;
            };
            if !list(draft).is_carried() {
                continue;
            }
            let set: BTreeSet<&str> = entries.iter().map(String::as_str).collect();
            match seen.get(&set) {
                Some(first) => {
                    let first = first.map_or_else(
                        || "another rule".to_string(),
                        |p| format!("rulePriority {p}"),
                    );
                    self.push(
                        "2.8",
                        draft.priority,
                        format!("rules[{}].selection.{name}", draft.index),
                        format!(
                            "The set of all rules selecting a specific storage class must contain a unique set of prefixes: {first} already selects {} images with the same {name}",
                            class.as_policy_str()
                        ),
                    );
                }
                None => {
                    seen.insert(set, draft.priority);
                }
            }
        }
    }
}

/// 6.9: a member set to null is still present; say so, since users expect otherwise.
fn null_note(value: &Value) -> &'static str {
    if value.is_null() {
        " (a null value counts as present; remove the member)"
    } else {
        ""
    }
}

fn join_path(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}
