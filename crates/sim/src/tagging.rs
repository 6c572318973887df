//! The Resource Groups Tagging API's `TagFilters`, as `GetResources` applies them: every
//! filter's key must be present and, when the filter lists values, carry one of them.

use serde_json::Value;

/// Whether a `ResourceTagMappingList` entry (`{"ResourceARN", "Tags": [{"Key", "Value"}]}`)
/// passes `TagFilters` (`[{"Key", "Values": [...]}]`); no filters pass everything.
pub fn matches_tag_filters(entry: &Value, filters: Option<&Value>) -> bool {
    let Some(filters) = filters.and_then(Value::as_array) else {
        return true;
    };
    let tags = entry["Tags"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    filters.iter().all(|filter| {
        let key = filter["Key"].as_str().unwrap_or_default();
        let values: Vec<&str> = filter["Values"]
            .as_array()
            .map(|v| v.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        tags.iter().any(|tag| {
            tag["Key"].as_str() == Some(key)
                && (values.is_empty()
                    || tag["Value"]
                        .as_str()
                        .is_some_and(|value| values.contains(&value)))
        })
    })
}

/// Whether a `GetResources` body asks for ECR repositories (`ecr` or `ecr:repository`).
pub fn wants_ecr_repositories(body: &Value) -> bool {
    body.get("ResourceTypeFilters")
        .and_then(Value::as_array)
        .is_some_and(|filters| {
            filters
                .iter()
                .any(|f| matches!(f.as_str(), Some("ecr") | Some("ecr:repository")))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tag_filters() {
        let entry = json!({"ResourceARN": "a", "Tags": [{"Key": "team", "Value": "x"}]});
        assert!(matches_tag_filters(&entry, None));
        assert!(matches_tag_filters(&entry, Some(&json!([{"Key": "team"}]))));
        assert!(matches_tag_filters(
            &entry,
            Some(&json!([{"Key": "team", "Values": ["y", "x"]}]))
        ));
        assert!(!matches_tag_filters(
            &entry,
            Some(&json!([{"Key": "team", "Values": ["y"]}]))
        ));
        assert!(!matches_tag_filters(
            &entry,
            Some(&json!([{"Key": "other"}]))
        ));
    }

    #[test]
    fn only_ecr_requests_are_emulated() {
        assert!(wants_ecr_repositories(
            &json!({"ResourceTypeFilters": ["ecr:repository"]})
        ));
        assert!(!wants_ecr_repositories(
            &json!({"ResourceTypeFilters": ["s3"]})
        ));
        assert!(!wants_ecr_repositories(&json!({})));
    }
}
