//! Preview input and output (see the README, "Preview"): images as
//! `aws ecr describe-images --output json` prints them, results in the shape of ECR's
//! GetLifecyclePolicyPreview, and the size totals an audit reports.

use jiff::Timestamp;
use serde_json::{json, Map, Value};

use crate::assumptions::pool_of;
use crate::evaluate::{Image, ImageAction, ImageStatus};
use crate::model::{ActionType, StorageClass};

/// Why an images file was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImagesError {
    /// The text is not JSON.
    #[error("invalid JSON at line {line}, column {column}: {message}")]
    Json {
        line: usize,
        column: usize,
        message: String,
    },
    /// A member is missing or has the wrong type; `field` is a JSON path such as
    /// `imageDetails[3].imagePushedAt`.
    #[error("{field}: {message}")]
    Field { field: String, message: String },
}

fn field_error(field: impl Into<String>, message: impl Into<String>) -> ImagesError {
    ImagesError::Field {
        field: field.into(),
        message: message.into(),
    }
}

/// Reads `{"imageDetails": [...]}`. Only the members the evaluator needs are read; the others
/// (registryId, scan findings, ...) are ignored. Optional members may be absent or null.
/// Timestamps are ISO-8601 strings with an offset, or epoch seconds (integer or fraction).
/// A missing `imageStatus` means ACTIVE, as DescribeImages lists only active images by default.
pub fn parse_images(text: &str) -> Result<Vec<Image>, ImagesError> {
    let document: Value = serde_json::from_str(text).map_err(|error| {
        let full = error.to_string();
        let suffix = format!(" at line {} column {}", error.line(), error.column());
        ImagesError::Json {
            line: error.line(),
            column: error.column(),
            message: full.strip_suffix(&suffix).unwrap_or(&full).to_string(),
        }
    })?;
    let Value::Object(top) = &document else {
        return Err(field_error(
            "",
            "expected an object with an \"imageDetails\" array (the output of aws ecr describe-images)",
        ));
    };
    let details = match top.get("imageDetails") {
        Some(Value::Array(details)) => details,
        Some(_) => return Err(field_error("imageDetails", "expected an array")),
        None => {
            return Err(field_error(
                "imageDetails",
                "missing (expected the output of aws ecr describe-images)",
            ))
        }
    };
    details
        .iter()
        .enumerate()
        .map(|(index, detail)| image(index, detail))
        .collect()
}

fn image(index: usize, detail: &Value) -> Result<Image, ImagesError> {
    let path = format!("imageDetails[{index}]");
    let Value::Object(detail) = detail else {
        return Err(field_error(path, "expected an object"));
    };
    let reader = Reader {
        detail,
        path: &path,
    };
    let digest = reader
        .string("imageDigest")?
        .ok_or_else(|| reader.error("imageDigest", "missing"))?;
    let pushed_at = reader
        .timestamp("imagePushedAt")?
        .ok_or_else(|| reader.error("imagePushedAt", "missing"))?;
    let status = match reader.string("imageStatus")? {
        None => ImageStatus::Active,
        Some(status) => match status.to_ascii_uppercase().as_str() {
            "ACTIVE" => ImageStatus::Active,
            "ARCHIVED" => ImageStatus::Archived,
            "ACTIVATING" => ImageStatus::Activating,
            _ => {
                return Err(reader.error(
                    "imageStatus",
                    format!(
                        "unknown status \"{status}\" (expected ACTIVE, ARCHIVED or ACTIVATING)"
                    ),
                ))
            }
        },
    };
    Ok(Image {
        digest,
        tags: reader.strings("imageTags")?,
        pushed_at,
        size_bytes: reader.size("imageSizeInBytes")?,
        last_pulled_at: reader.timestamp("lastRecordedPullTime")?,
        status,
        last_archived_at: reader.timestamp("lastArchivedAt")?,
        last_activated_at: reader.timestamp("lastActivatedAt")?,
        manifest_media_type: reader.string("imageManifestMediaType")?,
        referenced_by_manifest_lists: reader.strings("referencedByManifestLists")?,
    })
}

/// Typed access to one image's members, with errors that name the member.
struct Reader<'a> {
    detail: &'a Map<String, Value>,
    path: &'a str,
}

impl Reader<'_> {
    fn error(&self, name: &str, message: impl Into<String>) -> ImagesError {
        field_error(format!("{}.{name}", self.path), message)
    }

    /// The member, with null treated as absent.
    fn get(&self, name: &str) -> Option<&Value> {
        self.detail.get(name).filter(|value| !value.is_null())
    }

    fn string(&self, name: &str) -> Result<Option<String>, ImagesError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.clone())),
            Some(_) => Err(self.error(name, "expected a string")),
        }
    }

    fn strings(&self, name: &str) -> Result<Vec<String>, ImagesError> {
        match self.get(name) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(k, item)| match item {
                    Value::String(text) => Ok(text.clone()),
                    _ => Err(self.error(&format!("{name}[{k}]"), "expected a string")),
                })
                .collect(),
            Some(_) => Err(self.error(name, "expected an array of strings")),
        }
    }

    fn size(&self, name: &str) -> Result<u64, ImagesError> {
        match self.get(name) {
            None => Ok(0),
            Some(Value::Number(number)) => number.as_u64().ok_or_else(|| {
                self.error(
                    name,
                    format!("expected a non-negative integer, found {number}"),
                )
            }),
            Some(_) => Err(self.error(name, "expected a non-negative integer")),
        }
    }

    fn timestamp(&self, name: &str) -> Result<Option<Timestamp>, ImagesError> {
        match self.get(name) {
            None => Ok(None),
            Some(value) => parse_timestamp(value)
                .map(Some)
                .map_err(|message| self.error(name, message)),
        }
    }
}

/// An ISO-8601 / RFC 3339 string with an offset, or epoch seconds.
fn parse_timestamp(value: &Value) -> Result<Timestamp, String> {
    match value {
        Value::String(text) => text.trim().parse::<Timestamp>().map_err(|error| {
            format!("\"{text}\" is not an ISO-8601 timestamp with an offset such as 2025-11-20T10:00:00Z ({error})")
        }),
        Value::Number(number) => {
            let out_of_range = || format!("{number} is out of range for epoch seconds");
            if let Some(seconds) = number.as_i64() {
                Timestamp::from_second(seconds).map_err(|_| out_of_range())
            } else if let Some(seconds) = number.as_f64() {
                // Whole nanoseconds; the range check below rejects huge and non-finite values.
                let nanos = (seconds * 1e9).round();
                if !nanos.is_finite() || nanos.abs() > 1e30 {
                    return Err(out_of_range());
                }
                Timestamp::from_nanosecond(nanos as i128).map_err(|_| out_of_range())
            } else {
                Err(out_of_range())
            }
        }
        _ => Err("expected an ISO-8601 string or epoch seconds".into()),
    }
}

/// The preview in the shape of GetLifecyclePolicyPreview: one result per affected image in
/// image order, and a summary. `transitioningImageTotalCounts` appears only when something
/// transitions; `targetStorageClass` only on TRANSITION actions.
pub fn preview_json(images: &[Image], actions: &[ImageAction]) -> Value {
    let mut results = Vec::with_capacity(actions.len());
    let mut expiring: u64 = 0;
    let mut transitioning: u64 = 0;
    for action in actions {
        let Some(image) = images.get(action.index) else {
            continue;
        };
        let rule_action = match action.action {
            ActionType::Expire => {
                expiring += 1;
                json!({"type": ActionType::Expire.as_api_str()})
            }
            ActionType::Transition => {
                transitioning += 1;
                json!({
                    "type": ActionType::Transition.as_api_str(),
                    "targetStorageClass": StorageClass::Archive.as_api_str(),
                })
            }
        };
        // The class the image is in now, i.e. the pool of the rule that acted on it.
        let storage_class = pool_of(image.status).unwrap_or_default();
        results.push(json!({
            "imageDigest": image.digest,
            "imageTags": image.tags,
            "imagePushedAt": image.pushed_at.to_string(),
            "action": rule_action,
            "appliedRulePriority": action.rule_priority,
            "storageClass": storage_class.as_api_str(),
        }));
    }
    let mut summary = Map::new();
    summary.insert("expiringImageTotalCount".into(), json!(expiring));
    if transitioning > 0 {
        summary.insert(
            "transitioningImageTotalCounts".into(),
            json!([{
                "targetStorageClass": StorageClass::Archive.as_api_str(),
                "imageTotalCount": transitioning,
            }]),
        );
    }
    json!({"previewResults": results, "summary": summary})
}

/// Images and bytes a run would expire or archive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ImpactTotals {
    pub expiring_images: u64,
    pub expiring_bytes: u64,
    pub transitioning_images: u64,
    pub transitioning_bytes: u64,
}

/// Sums the actions per kind. Sizes are `imageSizeInBytes` as reported (for a manifest list,
/// the size of its largest manifest), so shared layers are counted once per image.
pub fn impact(images: &[Image], actions: &[ImageAction]) -> ImpactTotals {
    let mut totals = ImpactTotals::default();
    for action in actions {
        let Some(image) = images.get(action.index) else {
            continue;
        };
        let (count, bytes) = match action.action {
            ActionType::Expire => (&mut totals.expiring_images, &mut totals.expiring_bytes),
            ActionType::Transition => (
                &mut totals.transitioning_images,
                &mut totals.transitioning_bytes,
            ),
        };
        *count += 1;
        *bytes = bytes.saturating_add(image.size_bytes);
    }
    totals
}
