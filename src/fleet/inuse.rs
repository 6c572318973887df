//! Collecting the in-use index (`[safety] in_use`): the AWS reads of ECS, Lambda and
//! Amazon Inspector in one account-region. The index itself, and what counts as a use, are
//! in `decide::inuse`.

use futures::StreamExt;
use jiff::Timestamp;

use crate::aws::AwsError;
use std::collections::{BTreeMap, BTreeSet};

use crate::decide::inuse::{
    inspector_in_use, parse_image_uri, parse_inspector_resource_id, ImageRef, InUseIndex,
    Reference, SourceFailure,
};
use crate::model::{Consumer, InUseSource};

/// The clients of one account-region, each with the endpoint its errors name; a source not
/// asked for has no client. They keep the SDK's standard retries: a run makes a handful of
/// these calls per account-region.
pub struct TargetClients {
    pub account_id: String,
    pub region: String,
    pub ecs: Option<(aws_sdk_ecs::Client, String)>,
    pub lambda: Option<(aws_sdk_lambda::Client, String)>,
    pub inspector: Option<(aws_sdk_inspector2::Client, String)>,
}

/// Collect the consumers of one account-region, with at most `in_flight` calls at once. A
/// source that cannot be read is recorded in `incomplete` (the others are still read), never
/// silently dropped.
pub async fn collect_target(
    clients: &TargetClients,
    in_flight: usize,
    now: Timestamp,
) -> InUseIndex {
    let mut index = InUseIndex::default();
    let (account, region) = (clients.account_id.as_str(), clients.region.as_str());
    let mut fail = |source: InUseSource, e: AwsError| {
        index.incomplete.push(SourceFailure {
            source: Some(source),
            account_id: account.to_string(),
            region: Some(region.to_string()),
            error: e.to_string(),
        });
    };
    let mut found: Vec<(ImageRef, Consumer)> = Vec::new();
    if let Some((ecs, endpoint)) = &clients.ecs {
        match collect_ecs(ecs, endpoint, account, region).await {
            Ok(uses) => found.extend(uses),
            Err(e) => fail(InUseSource::Ecs, e),
        }
    }
    if let Some((lambda, endpoint)) = &clients.lambda {
        match collect_lambda(lambda, endpoint, account, region, in_flight).await {
            Ok(uses) => found.extend(uses),
            Err(e) => fail(InUseSource::Lambda, e),
        }
    }
    if let Some((inspector, endpoint)) = &clients.inspector {
        match collect_inspector(inspector, endpoint, account, region, now).await {
            Ok(uses) => found.extend(uses),
            Err(e) => fail(InUseSource::Inspector, e),
        }
    }
    for (image, consumer) in found {
        index.add(image, consumer);
    }
    index
}

/// Last segment of an ARN path (`.../cluster/prod` → `prod`).
fn arn_name(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// DescribeServices takes at most 10 services, DescribeTasks at most 100 tasks.
const DESCRIBE_SERVICES_MAX: usize = 10;
const DESCRIBE_TASKS_MAX: usize = 100;

async fn collect_ecs(
    ecs: &aws_sdk_ecs::Client,
    endpoint: &str,
    account: &str,
    region: &str,
) -> Result<Vec<(ImageRef, Consumer)>, AwsError> {
    let clusters: Vec<String> = ecs
        .list_clusters()
        .max_results(100)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| AwsError::from_sdk("ecs:ListClusters", &e, endpoint))?;
    let mut out = Vec::new();
    // Task definition → the services that run it.
    let mut task_definitions: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for cluster in &clusters {
        let cluster_name = arn_name(cluster);
        let services: Vec<String> = ecs
            .list_services()
            .cluster(cluster)
            .max_results(100)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| AwsError::from_sdk("ecs:ListServices", &e, endpoint))?;
        for chunk in services.chunks(DESCRIBE_SERVICES_MAX) {
            let page = (ecs
                .describe_services()
                .cluster(cluster)
                .set_services(Some(chunk.to_vec()))
                .send())
            .await
            .map_err(|e| AwsError::from_sdk("ecs:DescribeServices", &e, endpoint))?;
            for s in page.services() {
                if s.status() != Some("ACTIVE") {
                    continue;
                }
                let name = format!("{cluster_name}/{}", s.service_name().unwrap_or("?"));
                // During a deployment the old and the new task definitions both run.
                let defs = s
                    .task_definition()
                    .into_iter()
                    .chain(s.deployments().iter().filter_map(|d| d.task_definition()));
                for def in defs {
                    task_definitions
                        .entry(def.to_string())
                        .or_default()
                        .insert(name.clone());
                }
            }
        }
        let tasks: Vec<String> = ecs
            .list_tasks()
            .cluster(cluster)
            .desired_status(aws_sdk_ecs::types::DesiredStatus::Running)
            .max_results(100)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| AwsError::from_sdk("ecs:ListTasks", &e, endpoint))?;
        for chunk in tasks.chunks(DESCRIBE_TASKS_MAX) {
            let page = (ecs
                .describe_tasks()
                .cluster(cluster)
                .set_tasks(Some(chunk.to_vec()))
                .send())
            .await
            .map_err(|e| AwsError::from_sdk("ecs:DescribeTasks", &e, endpoint))?;
            for task in page.tasks() {
                let name = format!(
                    "{cluster_name}/task/{}",
                    arn_name(task.task_arn().unwrap_or("?"))
                );
                let mut described = false;
                for c in task.containers() {
                    // The digest the task actually runs, and the reference it was started with.
                    if let (Some(image), Some(digest)) = (c.image(), c.image_digest()) {
                        if let Some(mut r) = parse_image_uri(image) {
                            r.reference = Reference::Digest(digest.to_string());
                            out.push((
                                r,
                                Consumer::new(InUseSource::Ecs, account, region, name.clone()),
                            ));
                            described = true;
                        }
                    }
                    if let Some(r) = c.image().and_then(parse_image_uri) {
                        out.push((
                            r,
                            Consumer::new(InUseSource::Ecs, account, region, name.clone()),
                        ));
                        described = true;
                    }
                }
                if !described {
                    if let Some(def) = task.task_definition_arn() {
                        task_definitions
                            .entry(def.to_string())
                            .or_default()
                            .insert(name.clone());
                    }
                }
            }
        }
    }
    for (def, users) in task_definitions {
        let answer = (ecs.describe_task_definition().task_definition(&def).send())
            .await
            .map_err(|e| AwsError::from_sdk("ecs:DescribeTaskDefinition", &e, endpoint))?;
        let images: Vec<ImageRef> = answer
            .task_definition()
            .map(|t| {
                t.container_definitions()
                    .iter()
                    .filter_map(|c| c.image().and_then(parse_image_uri))
                    .collect()
            })
            .unwrap_or_default();
        for user in &users {
            for image in &images {
                out.push((
                    image.clone(),
                    Consumer::new(InUseSource::Ecs, account, region, user.clone()),
                ));
            }
        }
    }
    Ok(out)
}

async fn collect_lambda(
    lambda: &aws_sdk_lambda::Client,
    endpoint: &str,
    account: &str,
    region: &str,
    in_flight: usize,
) -> Result<Vec<(ImageRef, Consumer)>, AwsError> {
    let functions: Vec<aws_sdk_lambda::types::FunctionConfiguration> = lambda
        .list_functions()
        .max_items(50)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| AwsError::from_sdk("lambda:ListFunctions", &e, endpoint))?;
    let names: Vec<String> = functions
        .iter()
        .filter(|f| f.package_type() == Some(&aws_sdk_lambda::types::PackageType::Image))
        .filter_map(|f| f.function_name().map(str::to_string))
        .collect();
    let answers = futures::stream::iter(names)
        .map(|name| async move {
            let answer = (lambda.get_function().function_name(&name).send())
                .await
                .map_err(|e| AwsError::from_sdk("lambda:GetFunction", &e, endpoint))?;
            Ok::<_, AwsError>((name, answer))
        })
        .buffer_unordered(in_flight.max(1))
        .collect::<Vec<_>>()
        .await;
    let mut out = Vec::new();
    for answer in answers {
        let (name, answer) = answer?;
        let Some(code) = answer.code() else { continue };
        // The function runs the digest its tag resolved to at deployment, not the tag's
        // image of today; the tag is only a fallback when no digest is given.
        let image = code
            .resolved_image_uri()
            .and_then(parse_image_uri)
            .or_else(|| code.image_uri().and_then(parse_image_uri));
        if let Some(image) = image {
            out.push((
                image,
                Consumer::new(InUseSource::Lambda, account, region, name),
            ));
        }
    }
    Ok(out)
}

async fn collect_inspector(
    inspector: &aws_sdk_inspector2::Client,
    endpoint: &str,
    account: &str,
    region: &str,
    now: Timestamp,
) -> Result<Vec<(ImageRef, Consumer)>, AwsError> {
    use aws_sdk_inspector2::types::{
        CoverageFilterCriteria, CoverageStringComparison, CoverageStringFilter,
    };
    let filter = CoverageFilterCriteria::builder()
        .resource_type(
            CoverageStringFilter::builder()
                .comparison(CoverageStringComparison::Equals)
                .value("AWS_ECR_CONTAINER_IMAGE")
                .build()
                .expect("comparison and value are set"),
        )
        .build();
    let covered: Vec<aws_sdk_inspector2::types::CoveredResource> = inspector
        .list_coverage()
        .filter_criteria(filter)
        .max_results(200)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| AwsError::from_sdk("inspector2:ListCoverage", &e, endpoint))?;
    let mut out = Vec::new();
    for r in &covered {
        let Some(meta) = r.resource_metadata().and_then(|m| m.ecr_image()) else {
            continue;
        };
        let last = meta
            .last_in_use_at()
            .and_then(|t| Timestamp::new(t.secs(), t.subsec_nanos() as i32).ok());
        if !inspector_in_use(meta.in_use_count(), last, now) {
            continue;
        }
        let Some(image) = parse_inspector_resource_id(r.resource_id()) else {
            continue;
        };
        let name = format!(
            "in use by {} task(s) or pod(s){}",
            meta.in_use_count().unwrap_or(0),
            last.map(|t| format!(", last at {t}")).unwrap_or_default()
        );
        let owner = if r.account_id().is_empty() {
            account
        } else {
            r.account_id()
        };
        out.push((
            image,
            Consumer::new(InUseSource::Inspector, owner, region, name),
        ));
    }
    Ok(out)
}
