//! Repository creation templates through the real SDK, against the fault proxy or the
//! synthetic server (moto has none; both emulate the API): seed a template with settings
//! of its own beside its lifecycle policy, and read one back, so a test can check that an
//! update changed only what it should.

use aws_config::SdkConfig;
use aws_sdk_ecr::error::DisplayErrorContext;
use aws_sdk_ecr::types::{
    EncryptionConfigurationForRepositoryCreationTemplate, EncryptionType, ImageTagMutability,
    RctAppliedFor, RepositoryCreationTemplate, Tag,
};
pub use ecr_fleet_sim::templates::{CreationTemplate, ResourceTag};
use serde_json::json;

/// A template of `prefix` with `policy` and settings ecr-fleet must never change: a
/// description, resource tags, immutable tags, a repository policy, KMS encryption and a
/// custom role, applied on push only.
pub fn with_other_settings(prefix: &str, policy: &str) -> CreationTemplate {
    CreationTemplate {
        prefix: prefix.to_string(),
        description: Some("Owned by the platform team".into()),
        encryption_configuration: Some(json!({
            "encryptionType": "KMS",
            "kmsKey": "arn:aws:kms:us-east-1:123456789012:key/demo",
        })),
        resource_tags: vec![ResourceTag {
            key: "team".into(),
            value: "platform".into(),
        }],
        image_tag_mutability: Some("IMMUTABLE".into()),
        repository_policy: Some(
            r#"{"Version":"2012-10-17","Statement":[{"Sid":"pull","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":["ecr:BatchGetImage"]}]}"#.into(),
        ),
        lifecycle_policy: Some(policy.to_string()),
        applied_for: vec!["CREATE_ON_PUSH".into()],
        custom_role_arn: Some("arn:aws:iam::123456789012:role/ecr-templates".into()),
        ..CreationTemplate::default()
    }
}

/// Creates `template` with every setting it carries (CreateRepositoryCreationTemplate).
pub async fn create(cfg: &SdkConfig, template: &CreationTemplate) {
    let ecr = aws_sdk_ecr::Client::new(cfg);
    let encryption = template.encryption_configuration.as_ref().map(|e| {
        EncryptionConfigurationForRepositoryCreationTemplate::builder()
            .encryption_type(EncryptionType::from(
                e["encryptionType"].as_str().unwrap_or("AES256"),
            ))
            .set_kms_key(e["kmsKey"].as_str().map(str::to_string))
            .build()
            .expect("encryption configuration")
    });
    let tags = template
        .resource_tags
        .iter()
        .map(|t| Tag::builder().key(&t.key).value(&t.value).build().unwrap())
        .collect();
    ecr.create_repository_creation_template()
        .prefix(&template.prefix)
        .set_description(template.description.clone())
        .set_encryption_configuration(encryption)
        .set_resource_tags(Some(tags))
        .set_image_tag_mutability(
            template
                .image_tag_mutability
                .as_deref()
                .map(ImageTagMutability::from),
        )
        .set_repository_policy(template.repository_policy.clone())
        .set_lifecycle_policy(template.lifecycle_policy.clone())
        .set_applied_for(Some(
            template
                .applied_for
                .iter()
                .map(|a| RctAppliedFor::from(a.as_str()))
                .collect(),
        ))
        .set_custom_role_arn(template.custom_role_arn.clone())
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "CreateRepositoryCreationTemplate: {}",
                DisplayErrorContext(e)
            )
        });
}

/// Every template of the caller's account-region, through all pages of `page_size`.
pub async fn list(cfg: &SdkConfig, page_size: i32) -> Vec<CreationTemplate> {
    let mut pages = aws_sdk_ecr::Client::new(cfg)
        .describe_repository_creation_templates()
        .max_results(page_size)
        .into_paginator()
        .send();
    let mut all = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.unwrap_or_else(|e| {
            panic!(
                "DescribeRepositoryCreationTemplates: {}",
                DisplayErrorContext(e)
            )
        });
        all.extend(page.repository_creation_templates().iter().map(from_sdk));
    }
    all
}

/// The template of `prefix` in the caller's account-region, read through the SDK.
pub async fn get(cfg: &SdkConfig, prefix: &str) -> Option<CreationTemplate> {
    let answer = aws_sdk_ecr::Client::new(cfg)
        .describe_repository_creation_templates()
        .prefixes(prefix)
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "DescribeRepositoryCreationTemplates: {}",
                DisplayErrorContext(e)
            )
        });
    answer
        .repository_creation_templates()
        .iter()
        .find(|t| t.prefix() == Some(prefix))
        .map(from_sdk)
}

/// The SDK's template as the emulation's type, for comparisons.
pub fn from_sdk(t: &RepositoryCreationTemplate) -> CreationTemplate {
    let seconds = |d: Option<&aws_sdk_ecr::primitives::DateTime>| d.map(|d| d.as_secs_f64());
    CreationTemplate {
        prefix: t.prefix().unwrap_or_default().to_string(),
        description: t.description().map(str::to_string),
        encryption_configuration: t.encryption_configuration().map(|e| {
            let mut value = json!({"encryptionType": e.encryption_type().as_str()});
            if let Some(key) = e.kms_key() {
                value["kmsKey"] = json!(key);
            }
            value
        }),
        resource_tags: t
            .resource_tags()
            .iter()
            .map(|tag| ResourceTag {
                key: tag.key().to_string(),
                value: tag.value().to_string(),
            })
            .collect(),
        image_tag_mutability: t.image_tag_mutability().map(|m| m.as_str().to_string()),
        image_tag_mutability_exclusion_filters: None,
        repository_policy: t.repository_policy().map(str::to_string),
        lifecycle_policy: t.lifecycle_policy().map(str::to_string),
        applied_for: t
            .applied_for()
            .iter()
            .map(|a| a.as_str().to_string())
            .collect(),
        custom_role_arn: t.custom_role_arn().map(str::to_string),
        created_at: seconds(t.created_at()),
        updated_at: seconds(t.updated_at()),
    }
}

/// `template` without its times, to compare settings.
pub fn settings(template: &CreationTemplate) -> CreationTemplate {
    CreationTemplate {
        created_at: None,
        updated_at: None,
        ..template.clone()
    }
}
