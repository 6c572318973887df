//! Which regions each account is visited in: `regions = "enabled"` lists the regions enabled
//! for every account with the Account Management API (ListRegions, one call per account, read
//! in the account itself through the spoke role); a listed opt-in region that an account has
//! not enabled is reported as disabled, not visited and not a failure.
//!
//! ListRegions rather than EC2 DescribeRegions: it answers the opt-in status per account, and
//! the Account SDK is small where the EC2 one is one of the largest crates of the SDK.

use std::collections::BTreeSet;

use aws_sdk_account::types::RegionOptStatus;

use crate::aws::AwsError;

/// Regions that every account has and cannot disable (launched before March 2019). Every
/// newer region is opt-in, so this list never needs to grow.
pub const ENABLED_BY_DEFAULT: [&str; 17] = [
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "ca-central-1",
    "sa-east-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-central-1",
    "eu-north-1",
    "ap-south-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
];

/// Whether a listed region may be disabled in some account (so ListRegions must be asked).
/// GovCloud and China regions have no opt-in.
pub fn may_be_disabled(region: &str) -> bool {
    !ENABLED_BY_DEFAULT.contains(&region)
        && !region.starts_with("us-gov-")
        && !region.starts_with("cn-")
}

/// Split the listed regions into those to visit and those the account has not enabled.
pub fn split_listed(listed: &[String], enabled: &BTreeSet<String>) -> (Vec<String>, Vec<String>) {
    listed
        .iter()
        .cloned()
        .partition(|r| enabled.contains(r) || !may_be_disabled(r))
}

/// The regions enabled for the account behind `client` (ENABLED or ENABLED_BY_DEFAULT), sorted.
pub async fn enabled_regions(
    client: &aws_sdk_account::Client,
    endpoint: &str,
) -> Result<BTreeSet<String>, AwsError> {
    let regions: Vec<aws_sdk_account::types::Region> = client
        .list_regions()
        .region_opt_status_contains(RegionOptStatus::Enabled)
        .region_opt_status_contains(RegionOptStatus::EnabledByDefault)
        .max_results(50)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| AwsError::from_sdk("account:ListRegions", &e, endpoint))?;
    let usable = |r: &aws_sdk_account::types::Region| {
        matches!(
            r.region_opt_status(),
            Some(RegionOptStatus::Enabled | RegionOptStatus::EnabledByDefault)
        )
    };
    Ok(regions
        .iter()
        .filter(|r| usable(r))
        .filter_map(|r| r.region_name().map(str::to_string))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_opt_in_regions_can_be_disabled() {
        assert!(!may_be_disabled("us-east-1"));
        assert!(!may_be_disabled("eu-north-1"));
        assert!(!may_be_disabled("us-gov-west-1"));
        assert!(may_be_disabled("af-south-1"));
        assert!(may_be_disabled("ap-southeast-7"));
    }

    #[test]
    fn listed_regions_split_by_opt_in_status() {
        let listed: Vec<String> = ["us-east-1", "af-south-1", "me-south-1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let enabled: BTreeSet<String> = ["me-south-1", "eu-west-1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let (visit, disabled) = split_listed(&listed, &enabled);
        // A default region is visited even if the answer did not list it.
        assert_eq!(visit, ["us-east-1", "me-south-1"]);
        assert_eq!(disabled, ["af-south-1"]);
    }
}
