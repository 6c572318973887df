//! Typed form of a lifecycle policy. Values of these types normally come from
//! [`crate::parse_policy`], which guarantees the cross-field rules of section 2; the fields are
//! public so callers and tests can build policies directly.

use serde::{Deserialize, Serialize};

/// A validated lifecycle policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Policy {
    pub rules: Vec<Rule>,
}

impl Policy {
    /// Rules in evaluation order: smallest `rulePriority` first (5.2). Equal priorities (only
    /// possible in hand-built policies) keep document order.
    pub fn rules_by_priority(&self) -> Vec<&Rule> {
        let mut rules: Vec<&Rule> = self.rules.iter().collect();
        rules.sort_by_key(|rule| rule.rule_priority);
        rules
    }
}

/// One rule of a policy (1.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    pub rule_priority: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub selection: Selection,
    pub action: Action,
}

/// The `selection` object of a rule (1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Selection {
    pub tag_status: TagStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag_prefix_list: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag_pattern_list: Option<Vec<String>>,
    /// Omitted in the document means `standard` (1.3); serialised only when it is `archive`.
    #[serde(skip_serializing_if = "StorageClass::is_standard")]
    pub storage_class: StorageClass,
    pub count_type: CountType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count_unit: Option<CountUnit>,
    pub count_number: u64,
}

/// `selection.tagStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TagStatus {
    Tagged,
    Untagged,
    Any,
}

/// Storage class of a rule's pool or of a transition target.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum StorageClass {
    #[default]
    Standard,
    Archive,
}

impl StorageClass {
    /// Serde helper: `standard` is the default and need not be written.
    pub fn is_standard(&self) -> bool {
        *self == StorageClass::Standard
    }

    /// Spelling used inside policies.
    pub fn as_policy_str(self) -> &'static str {
        match self {
            StorageClass::Standard => "standard",
            StorageClass::Archive => "archive",
        }
    }

    /// Spelling used by the ECR API (preview output).
    pub fn as_api_str(self) -> &'static str {
        match self {
            StorageClass::Standard => "STANDARD",
            StorageClass::Archive => "ARCHIVE",
        }
    }
}

/// `selection.countType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CountType {
    ImageCountMoreThan,
    SinceImagePushed,
    SinceImagePulled,
    SinceImageTransitioned,
}

impl CountType {
    /// Spelling used inside policies.
    pub fn as_policy_str(self) -> &'static str {
        match self {
            CountType::ImageCountMoreThan => "imageCountMoreThan",
            CountType::SinceImagePushed => "sinceImagePushed",
            CountType::SinceImagePulled => "sinceImagePulled",
            CountType::SinceImageTransitioned => "sinceImageTransitioned",
        }
    }

    /// The three age-based types need `countUnit` (2.10).
    pub fn is_age(self) -> bool {
        self != CountType::ImageCountMoreThan
    }
}

/// `selection.countUnit`; `days` is the only unit (2.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CountUnit {
    Days,
}

/// `action.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionType {
    Expire,
    Transition,
}

impl ActionType {
    /// Spelling used inside policies.
    pub fn as_policy_str(self) -> &'static str {
        match self {
            ActionType::Expire => "expire",
            ActionType::Transition => "transition",
        }
    }

    /// Spelling used by the ECR API (preview output).
    pub fn as_api_str(self) -> &'static str {
        match self {
            ActionType::Expire => "EXPIRE",
            ActionType::Transition => "TRANSITION",
        }
    }
}

/// The `action` object of a rule (1.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Action {
    #[serde(rename = "type")]
    pub kind: ActionType,
    #[serde(rename = "targetStorageClass", skip_serializing_if = "Option::is_none")]
    pub target_storage_class: Option<StorageClass>,
}
