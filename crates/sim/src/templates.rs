//! ECR repository creation templates, per account and region, as the ECR API answers them:
//! `DescribeRepositoryCreationTemplates` (`prefixes`, `maxResults` 1 to 1000, default 100,
//! `nextToken`), `CreateRepositoryCreationTemplate`, `UpdateRepositoryCreationTemplate` and
//! `DeleteRepositoryCreationTemplate`, with `TemplateAlreadyExistsException`,
//! `TemplateNotFoundException`, `ValidationException` (a prefix ECR would refuse, an empty
//! or unknown `appliedFor`, an unknown tag mutability) and `InvalidParameterException` (a
//! lifecycle policy that is not a JSON document with `rules`).
//!
//! moto has no such API, so both the test fault proxy and the synthetic server answer it
//! from a [`CreationTemplates`] store. An update replaces the fields it is given and keeps
//! every other one, as ECR does. ECR asks for a `customRoleArn` when a template sets
//! resource tags or KMS encryption; the store does not check that.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::ecr::{ecr_page, invalid_policy, is_policy_document};
use crate::http::Response;
use crate::wire::{json_error, json_ok};

/// The `appliedFor` values ECR knows.
pub const APPLIED_FOR: [&str; 3] = ["CREATE_ON_PUSH", "PULL_THROUGH_CACHE", "REPLICATION"];

/// The prefix of the template for repositories no other template covers.
pub const ROOT_PREFIX: &str = "ROOT";

const MUTABILITY: [&str; 4] = [
    "MUTABLE",
    "IMMUTABLE",
    "MUTABLE_WITH_EXCLUSION",
    "IMMUTABLE_WITH_EXCLUSION",
];

/// A repository creation template, in the API's JSON shape.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreationTemplate {
    pub prefix: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `{"encryptionType": "AES256" | "KMS" | "KMS_DSSE", "kmsKey"?}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_configuration: Option<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_tags: Vec<ResourceTag>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_tag_mutability: Option<String>,
    /// `[{"filterType": "WILDCARD", "filter": "..."}]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_tag_mutability_exclusion_filters: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle_policy: Option<String>,
    #[serde(default)]
    pub applied_for: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_role_arn: Option<String>,
    /// Epoch seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<f64>,
}

/// A tag that repositories created from the template get.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceTag {
    #[serde(rename = "Key")]
    pub key: String,
    #[serde(rename = "Value")]
    pub value: String,
}

impl CreationTemplate {
    /// A template with a lifecycle policy, for every `appliedFor` value.
    pub fn with_lifecycle_policy(prefix: &str, policy: &str) -> CreationTemplate {
        CreationTemplate {
            prefix: prefix.to_string(),
            lifecycle_policy: Some(policy.to_string()),
            applied_for: APPLIED_FOR.iter().map(|a| a.to_string()).collect(),
            ..CreationTemplate::default()
        }
    }
}

/// Whether ECR accepts `prefix` as a template prefix: `ROOT`, or 1 to 256 characters of
/// lowercase namespace components (`[a-z0-9]+` joined by one of `._-`) separated by `/`,
/// with an optional trailing `/`.
pub fn valid_prefix(prefix: &str) -> bool {
    if prefix == ROOT_PREFIX {
        return true;
    }
    if prefix.is_empty() || prefix.len() > 256 {
        return false;
    }
    let path = prefix.strip_suffix('/').unwrap_or(prefix);
    path.split('/').all(|component| {
        component.split(['.', '_', '-']).all(|run| {
            !run.is_empty()
                && run
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
    })
}

/// Templates by account and region, then by prefix.
#[derive(Clone, Debug, Default)]
pub struct CreationTemplates {
    registries: BTreeMap<(String, String), BTreeMap<String, CreationTemplate>>,
}

fn now_seconds() -> f64 {
    jiff::Timestamp::now().as_millisecond() as f64 / 1000.0
}

fn validation(message: &str) -> Response {
    json_error(400, "ValidationException", message)
}

fn prefix_error(prefix: &str) -> Response {
    validation(&format!(
        "1 validation error detected: Value '{prefix}' at 'prefix' failed to satisfy \
         constraint: Member must satisfy regular expression pattern: \
         ^((?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*/?|ROOT)$"
    ))
}

fn not_found(prefix: &str, account: &str) -> Response {
    json_error(
        400,
        "TemplateNotFoundException",
        &format!(
            "The specified repository creation template with prefix '{prefix}' does not \
             exist in the registry with id '{account}'"
        ),
    )
}

/// Checks the settable fields a request gives (absent ones pass).
fn check_fields(body: &Value) -> Result<(), Response> {
    if let Some(applied) = body.get("appliedFor") {
        let values: Vec<&str> = applied
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if values.is_empty() || values.iter().any(|v| !APPLIED_FOR.contains(v)) {
            return Err(validation(&format!(
                "Invalid parameter at 'appliedFor': expected a non-empty list of {}",
                APPLIED_FOR.join(", ")
            )));
        }
    }
    if let Some(mutability) = body.get("imageTagMutability") {
        if !mutability.as_str().is_some_and(|m| MUTABILITY.contains(&m)) {
            return Err(validation(&format!(
                "Invalid parameter at 'imageTagMutability': expected one of {}",
                MUTABILITY.join(", ")
            )));
        }
    }
    if let Some(policy) = body.get("lifecyclePolicy") {
        if !policy.as_str().is_some_and(is_policy_document) {
            return Err(invalid_policy());
        }
    }
    Ok(())
}

/// Fields a request may set (everything but the prefix and the times).
const SETTABLE: [&str; 9] = [
    "description",
    "encryptionConfiguration",
    "resourceTags",
    "imageTagMutability",
    "imageTagMutabilityExclusionFilters",
    "repositoryPolicy",
    "lifecyclePolicy",
    "appliedFor",
    "customRoleArn",
];

/// `template` with the settable fields `body` gives replaced.
fn with_fields(template: &CreationTemplate, body: &Value) -> Result<CreationTemplate, Response> {
    let mut merged = serde_json::to_value(template).expect("template serializes");
    for field in SETTABLE {
        if let Some(value) = body.get(field).filter(|v| !v.is_null()) {
            merged[field] = value.clone();
        }
    }
    serde_json::from_value(merged)
        .map_err(|e| json_error(400, "InvalidParameterException", &e.to_string()))
}

impl CreationTemplates {
    /// Whether an ECR operation name is one of the creation-template calls.
    pub fn handles(operation: &str) -> bool {
        matches!(
            operation,
            "DescribeRepositoryCreationTemplates"
                | "CreateRepositoryCreationTemplate"
                | "UpdateRepositoryCreationTemplate"
                | "DeleteRepositoryCreationTemplate"
        )
    }

    /// Answers ECR `operation` (see [`CreationTemplates::handles`]) with JSON `body` for the
    /// registry of `account` in `region`; `None` for any other operation.
    pub fn answer(
        &mut self,
        operation: &str,
        account: &str,
        region: &str,
        body: &Value,
    ) -> Option<Response> {
        if !Self::handles(operation) {
            return None;
        }
        if operation == "DescribeRepositoryCreationTemplates" {
            return Some(self.describe(account, region, body));
        }
        let prefix = body["prefix"].as_str().unwrap_or_default().to_string();
        if !valid_prefix(&prefix) {
            return Some(prefix_error(&prefix));
        }
        let key = (account.to_string(), region.to_string());
        let registry = self.registries.entry(key).or_default();
        let answer = match operation {
            "CreateRepositoryCreationTemplate" => {
                if registry.contains_key(&prefix) {
                    return Some(json_error(
                        400,
                        "TemplateAlreadyExistsException",
                        &format!(
                            "The repository creation template with prefix '{prefix}' already \
                             exists in the registry with id '{account}'"
                        ),
                    ));
                }
                if body.get("appliedFor").is_none() {
                    return Some(validation("appliedFor is required"));
                }
                if let Err(response) = check_fields(body) {
                    return Some(response);
                }
                let now = now_seconds();
                let blank = CreationTemplate {
                    prefix: prefix.clone(),
                    // ECR's defaults for settings a template leaves out.
                    image_tag_mutability: Some("MUTABLE".into()),
                    encryption_configuration: Some(json!({"encryptionType": "AES256"})),
                    created_at: Some(now),
                    updated_at: Some(now),
                    ..CreationTemplate::default()
                };
                let template = match with_fields(&blank, body) {
                    Ok(template) => template,
                    Err(response) => return Some(response),
                };
                registry.insert(prefix, template.clone());
                template
            }
            "UpdateRepositoryCreationTemplate" => {
                let Some(current) = registry.get(&prefix) else {
                    return Some(not_found(&prefix, account));
                };
                if let Err(response) = check_fields(body) {
                    return Some(response);
                }
                let mut template = match with_fields(current, body) {
                    Ok(template) => template,
                    Err(response) => return Some(response),
                };
                template.updated_at = Some(now_seconds());
                registry.insert(prefix, template.clone());
                template
            }
            _ => match registry.remove(&prefix) {
                Some(template) => template,
                None => return Some(not_found(&prefix, account)),
            },
        };
        Some(json_ok(&json!({
            "registryId": account,
            "repositoryCreationTemplate": answer,
        })))
    }

    fn describe(&self, account: &str, region: &str, body: &Value) -> Response {
        let (max, offset) = match ecr_page(body, "creation-templates-") {
            Ok(page) => page,
            Err(response) => return response,
        };
        let wanted: Vec<&str> = body["prefixes"]
            .as_array()
            .map(|p| p.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if let Some(bad) = wanted.iter().find(|p| !valid_prefix(p)) {
            return prefix_error(bad);
        }
        let all: Vec<&CreationTemplate> = self
            .registries
            .get(&(account.to_string(), region.to_string()))
            .map(|r| {
                r.values()
                    .filter(|t| wanted.is_empty() || wanted.contains(&t.prefix.as_str()))
                    .collect()
            })
            .unwrap_or_default();
        let end = (offset + max).min(all.len());
        let mut answer = json!({
            "registryId": account,
            "repositoryCreationTemplates": all[offset.min(end)..end],
        });
        if end < all.len() {
            answer["nextToken"] = json!(format!("creation-templates-{end}"));
        }
        json_ok(&answer)
    }

    /// Puts a template in place as is (no validation), e.g. one with other settings a
    /// test later checks an update keeps; missing times are set to now.
    pub fn put(&mut self, account: &str, region: &str, mut template: CreationTemplate) {
        let now = now_seconds();
        template.created_at.get_or_insert(now);
        template.updated_at.get_or_insert(now);
        self.registries
            .entry((account.to_string(), region.to_string()))
            .or_default()
            .insert(template.prefix.clone(), template);
    }

    /// The template of `prefix` in an account-region, as held now.
    pub fn get(&self, account: &str, region: &str, prefix: &str) -> Option<CreationTemplate> {
        self.registries
            .get(&(account.to_string(), region.to_string()))?
            .get(prefix)
            .cloned()
    }

    /// Every template of an account-region, by prefix.
    pub fn list(&self, account: &str, region: &str) -> Vec<CreationTemplate> {
        self.registries
            .get(&(account.to_string(), region.to_string()))
            .map(|r| r.values().cloned().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(response: &Response) -> Value {
        serde_json::from_slice(&response.body).unwrap()
    }

    fn code(response: &Response) -> String {
        body(response)["__type"].as_str().unwrap_or("").to_string()
    }

    #[test]
    fn prefixes() {
        for ok in ["ROOT", "team-a", "prod/team_1", "a.b-c/d/", "x"] {
            assert!(valid_prefix(ok), "{ok}");
        }
        for bad in [
            "",
            "Team",
            "a//b",
            "-a",
            "a-",
            "/a",
            "a b",
            &"a".repeat(257),
        ] {
            assert!(!valid_prefix(bad), "{bad}");
        }
    }

    #[test]
    fn create_update_keeps_other_fields_describe_delete() {
        let mut store = CreationTemplates::default();
        let (a, r) = ("111111111111", "us-east-1");
        let created = store
            .answer(
                "CreateRepositoryCreationTemplate",
                a,
                r,
                &json!({"prefix": "team-a", "appliedFor": ["CREATE_ON_PUSH"],
                        "description": "kept", "resourceTags": [{"Key": "k", "Value": "v"}],
                        "lifecyclePolicy": "{\"rules\":[]}"}),
            )
            .unwrap();
        assert_eq!(created.status, 200);
        assert_eq!(body(&created)["registryId"], a);
        let again = store.answer(
            "CreateRepositoryCreationTemplate",
            a,
            r,
            &json!({"prefix": "team-a", "appliedFor": ["REPLICATION"]}),
        );
        assert_eq!(code(&again.unwrap()), "TemplateAlreadyExistsException");
        let updated = store
            .answer(
                "UpdateRepositoryCreationTemplate",
                a,
                r,
                &json!({"prefix": "team-a", "appliedFor": ["REPLICATION"]}),
            )
            .unwrap();
        let held = &body(&updated)["repositoryCreationTemplate"];
        assert_eq!(held["appliedFor"], json!(["REPLICATION"]));
        assert_eq!(held["description"], "kept");
        assert_eq!(held["resourceTags"][0]["Key"], "k");
        assert_eq!(held["imageTagMutability"], "MUTABLE");
        assert_eq!(held["lifecyclePolicy"], "{\"rules\":[]}");

        store.put(a, r, CreationTemplate::with_lifecycle_policy("ROOT", "{}"));
        let page = store
            .answer(
                "DescribeRepositoryCreationTemplates",
                a,
                r,
                &json!({"maxResults": 1}),
            )
            .unwrap();
        let page = body(&page);
        assert_eq!(page["repositoryCreationTemplates"][0]["prefix"], "ROOT");
        let token = page["nextToken"].as_str().unwrap();
        let rest = store
            .answer(
                "DescribeRepositoryCreationTemplates",
                a,
                r,
                &json!({"nextToken": token}),
            )
            .unwrap();
        assert_eq!(
            body(&rest)["repositoryCreationTemplates"][0]["prefix"],
            "team-a"
        );
        assert!(body(&rest).get("nextToken").is_none());
        let other_region = store
            .answer(
                "DescribeRepositoryCreationTemplates",
                a,
                "eu-west-1",
                &json!({}),
            )
            .unwrap();
        assert_eq!(
            body(&other_region)["repositoryCreationTemplates"],
            json!([])
        );

        let deleted = store.answer(
            "DeleteRepositoryCreationTemplate",
            a,
            r,
            &json!({"prefix": "team-a"}),
        );
        assert_eq!(deleted.unwrap().status, 200);
        let missing = store.answer(
            "UpdateRepositoryCreationTemplate",
            a,
            r,
            &json!({"prefix": "team-a"}),
        );
        assert_eq!(code(&missing.unwrap()), "TemplateNotFoundException");
    }

    #[test]
    fn validation_errors() {
        let mut store = CreationTemplates::default();
        let create = |store: &mut CreationTemplates, body: Value| {
            code(
                &store
                    .answer("CreateRepositoryCreationTemplate", "1", "r", &body)
                    .unwrap(),
            )
        };
        assert_eq!(
            create(
                &mut store,
                json!({"prefix": "Bad", "appliedFor": ["REPLICATION"]})
            ),
            "ValidationException"
        );
        assert_eq!(
            create(&mut store, json!({"prefix": "ok"})),
            "ValidationException"
        );
        assert_eq!(
            create(&mut store, json!({"prefix": "ok", "appliedFor": []})),
            "ValidationException"
        );
        assert_eq!(
            create(&mut store, json!({"prefix": "ok", "appliedFor": ["PUSH"]})),
            "ValidationException"
        );
        assert_eq!(
            create(
                &mut store,
                json!({"prefix": "ok", "appliedFor": ["REPLICATION"], "lifecyclePolicy": "x"})
            ),
            "InvalidParameterException"
        );
        assert!(store.list("1", "r").is_empty());
    }
}
