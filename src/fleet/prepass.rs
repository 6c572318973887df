//! The first pass of a run, before any repository is read, when the run needs to know more
//! than the account list: the regions each account has enabled (`regions = "enabled"`, or a
//! listed opt-in region) and the in-use index (`[safety] in_use`).
//!
//! The in-use index has to be complete before the first decision: a consumer in the last
//! account-region visited may protect an image of the first, and `apply --yes` writes each
//! repository as soon as its decision is known. So the pass enters every account, reads every
//! account-region's consumers, and only then does the streaming pipeline start; it reuses the
//! accounts entered here, so no role is assumed twice.

use std::collections::{BTreeSet, HashMap};

use futures::StreamExt;
use jiff::Timestamp;

use super::discovery::{self, AccountAccess, Caller};
use super::{inuse, regions};
use crate::aws::{Aws, Stop};
use crate::config::{Config, RegionSelection};
use crate::decide::inuse::{InUseIndex, SourceFailure};
use crate::model::{DisabledRegion, InUseSource, Skipped};
use crate::progress::Progress;

/// What the first pass learned.
#[derive(Default)]
pub struct Prepass {
    /// Every account of the run: entered, or why not (the pipeline reports it once).
    pub entered: HashMap<String, Result<AccountAccess, Skipped>>,
    /// Regions to visit per account, when region discovery ran; otherwise the listed ones.
    pub regions: Option<HashMap<String, Vec<String>>>,
    /// Listed regions an account has not enabled.
    pub disabled: Vec<DisabledRegion>,
    /// Accounts whose enabled regions could not be listed, and account-regions whose
    /// consumers could not be read.
    pub skipped: Vec<Skipped>,
    /// The complete in-use index (`[safety] in_use`).
    pub in_use: Option<InUseIndex>,
}

impl Prepass {
    /// Whether a run needs the pass at all: plain runs keep streaming from the first call.
    pub fn needed(config: &Config, selection: &RegionSelection) -> bool {
        !config.safety.in_use.is_empty()
            || match selection {
                RegionSelection::Enabled => true,
                RegionSelection::Listed(r) => r.iter().any(|r| regions::may_be_disabled(r)),
            }
    }

    /// The regions to visit in an account.
    pub fn regions_of<'a>(&'a self, account_id: &str, listed: &'a [String]) -> &'a [String] {
        match &self.regions {
            Some(map) => map.get(account_id).map_or(&[][..], Vec::as_slice),
            None => listed,
        }
    }

    /// Account-regions the pipeline will visit.
    pub fn targets(&self, ids: &[String], listed: &[String]) -> u64 {
        ids.iter()
            .map(|id| self.regions_of(id, listed).len() as u64)
            .sum()
    }
}

/// Where the Account API is asked when no region is configured or set.
pub fn home_region(partition: &str) -> &'static str {
    match partition {
        "aws-cn" => "cn-northwest-1",
        "aws-us-gov" => "us-gov-west-1",
        _ => "us-east-1",
    }
}

pub struct PrepassInput<'a> {
    pub aws: &'a Aws,
    pub config: &'a Config,
    pub caller: &'a Caller,
    pub sts_region: Option<&'a str>,
    pub selection: &'a RegionSelection,
    /// Region of the Account API.
    pub home: &'a str,
    pub now: Timestamp,
    /// Ctrl-C or SIGTERM: enter no further account and read no further consumers.
    pub stop: &'a Stop,
}

pub async fn run(input: &PrepassInput<'_>, ids: &[String], progress: &Progress) -> Prepass {
    let PrepassInput {
        aws,
        config,
        caller,
        sts_region,
        selection,
        home,
        now,
        stop,
    } = *input;
    let listed = match selection {
        RegionSelection::Listed(r) => Some(r.as_slice()),
        RegionSelection::Enabled => None,
    };
    let ask = listed.is_none_or(|l| l.iter().any(|r| regions::may_be_disabled(r)));
    let concurrency = config.execution.concurrency.max(1);
    // Per account: entered (or not), then its enabled regions when they are needed.
    type Entered = (
        String,
        Result<AccountAccess, Skipped>,
        Option<Result<BTreeSet<String>, String>>,
    );
    let entered: Vec<Entered> = futures::stream::iter(ids)
        .map(|id| async move {
            if stop.is_set() {
                progress.step();
                let skipped = Skipped {
                    account_id: id.clone(),
                    region: None,
                    error: "not visited: interrupted".to_string(),
                };
                return (id.clone(), Err(skipped), None);
            }
            let access = discovery::enter(aws, caller, &config.accounts, sts_region, id).await;
            let enabled = match (&access, ask) {
                (Ok(a), true) => {
                    let client = aws.account(home, a.credentials.as_ref());
                    Some(
                        regions::enabled_regions(&client, &aws.endpoint("account", home))
                            .await
                            .map_err(|e| e.to_string()),
                    )
                }
                _ => None,
            };
            progress.step();
            (id.clone(), access, enabled)
        })
        .buffered(concurrency)
        .collect()
        .await;

    let mut pass = Prepass {
        regions: ask.then(HashMap::new),
        ..Prepass::default()
    };
    for (id, access, enabled) in entered {
        if let (Some(map), Ok(_)) = (pass.regions.as_mut(), &access) {
            let visit = match (listed, enabled) {
                (Some(listed), Some(Ok(enabled))) => {
                    let (visit, disabled) = regions::split_listed(listed, &enabled);
                    pass.disabled
                        .extend(disabled.into_iter().map(|region| DisabledRegion {
                            account_id: id.clone(),
                            region,
                        }));
                    visit
                }
                (Some(listed), _) => {
                    // Not knowing the opt-in status is no reason to skip: visit, and let a
                    // region that really is disabled fail as it did before.
                    tracing::warn!(account = %id, "cannot list enabled regions, visiting every listed region");
                    listed.to_vec()
                }
                (None, Some(Ok(enabled))) => enabled.into_iter().collect(),
                (None, Some(Err(error))) => {
                    pass.skipped.push(Skipped {
                        account_id: id.clone(),
                        region: None,
                        error,
                    });
                    Vec::new()
                }
                (None, None) => Vec::new(),
            };
            map.insert(id.clone(), visit);
        }
        pass.entered.insert(id, access);
    }
    pass.disabled.sort();

    if !config.safety.in_use.is_empty() {
        let listed = listed.unwrap_or(&[]);
        let targets: Vec<(&AccountAccess, String)> = ids
            .iter()
            .filter_map(|id| pass.entered.get(id)?.as_ref().ok())
            .flat_map(|a| {
                pass.regions_of(&a.account_id, listed)
                    .iter()
                    .map(move |r| (a, r.clone()))
            })
            .collect();
        let mut index = collect(aws, config, &targets, now, stop).await;
        // An account that could not be entered hides its consumers too.
        for (id, access) in &pass.entered {
            if let Err(s) = access {
                index.incomplete.push(SourceFailure {
                    source: None,
                    account_id: id.clone(),
                    region: None,
                    error: s.error.clone(),
                });
            }
        }
        index.incomplete.sort();
        pass.skipped.extend(index.incomplete.iter().filter_map(|f| {
            Some(Skipped {
                account_id: f.account_id.clone(),
                region: f.region.clone(),
                error: format!("in-use index ({}): {}", f.source?.as_str(), f.error),
            })
        }));
        pass.in_use = Some(index);
    }
    pass
}

/// The consumers of every account-region.
async fn collect(
    aws: &Aws,
    config: &Config,
    targets: &[(&AccountAccess, String)],
    now: Timestamp,
    stop: &Stop,
) -> InUseIndex {
    let sources = &config.safety.in_use;
    let in_flight = config.execution.per_region_concurrency.max(1);
    let parts: Vec<InUseIndex> = futures::stream::iter(targets)
        .map(|(account, region)| async move {
            if stop.is_set() {
                // Nothing is written after a stop, so a missing part cannot unprotect an image.
                return InUseIndex::default();
            }
            let creds = account.credentials.as_ref();
            let id = &account.account_id;
            let clients = inuse::TargetClients {
                account_id: id.clone(),
                region: region.clone(),
                ecs: sources
                    .contains(&InUseSource::Ecs)
                    .then(|| (aws.ecs(id, region, creds), aws.endpoint("ecs", region))),
                lambda: sources.contains(&InUseSource::Lambda).then(|| {
                    (
                        aws.lambda(id, region, creds),
                        aws.endpoint("lambda", region),
                    )
                }),
                inspector: sources.contains(&InUseSource::Inspector).then(|| {
                    (
                        aws.inspector2(id, region, creds),
                        aws.endpoint("inspector2", region),
                    )
                }),
            };
            inuse::collect_target(&clients, in_flight, now).await
        })
        .buffer_unordered(config.execution.concurrency.max(1))
        .collect()
        .await;
    let mut index = InUseIndex::default();
    for part in parts {
        index.merge(part);
    }
    tracing::info!(
        references = index.references(),
        incomplete = index.incomplete.len(),
        "in-use index"
    );
    index
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn config(extra: &str) -> Config {
        let text =
            format!("{extra}\n[[match]]\ntemplate = \"untagged-cleanup\"\nnames = [\"*\"]\n");
        Config::parse(&text, Path::new("test.toml")).expect("valid config")
    }

    fn listed(r: &[&str]) -> RegionSelection {
        RegionSelection::Listed(r.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn only_runs_that_need_it_take_the_first_pass() {
        let plain = config("");
        assert!(!Prepass::needed(
            &plain,
            &listed(&["us-east-1", "eu-west-1"])
        ));
        assert!(Prepass::needed(
            &plain,
            &listed(&["us-east-1", "af-south-1"])
        ));
        assert!(Prepass::needed(&plain, &RegionSelection::Enabled));
        let in_use = config("[safety]\nin_use = [\"lambda\"]");
        assert!(Prepass::needed(&in_use, &listed(&["us-east-1"])));
    }

    #[test]
    fn regions_per_account_after_discovery() {
        let all = vec!["us-east-1".to_string(), "af-south-1".to_string()];
        let mut pass = Prepass::default();
        // Without discovery every account gets the listed regions.
        assert_eq!(pass.regions_of("111111111111", &all), all.as_slice());
        pass.regions = Some(HashMap::from([
            ("111111111111".to_string(), vec!["us-east-1".to_string()]),
            ("222222222222".to_string(), all.clone()),
        ]));
        assert_eq!(pass.regions_of("111111111111", &all), ["us-east-1"]);
        // An account whose regions could not be listed visits none (it is reported skipped).
        assert!(pass.regions_of("333333333333", &all).is_empty());
        let ids = ["111111111111", "222222222222", "333333333333"].map(String::from);
        assert_eq!(pass.targets(&ids, &all), 3);
    }
}
