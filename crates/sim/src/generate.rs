//! The seeded fleet generator behind [`crate::server::SynthFleet`]: accounts (active and
//! suspended), regions, repositories of every [`RepoKind`] with their tags and current
//! policies, and on request image counts, in-use images and creation templates.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use crate::faults::LoadState;
use crate::fleet::{
    member_id, repo_of_kind, Fleet, RepoKind, SeededRepo, CI_BUILDS_POLICY, OUTDATED_POLICY,
};
use crate::server::{AccountState, RegionState, State, SynthRepo, SynthSpec};
use crate::templates::{CreationTemplate, CreationTemplates};

/// Name of the Lambda function that runs an in-use image.
pub const IN_USE_FUNCTION: &str = "orders-api";

/// Prefix of the template no config manages, in accounts with templates.
pub const UNMANAGED_PREFIX: &str = "legacy";

/// The server's state and the fleet as seeded, for `spec`.
pub(crate) fn generate(spec: &SynthSpec) -> (State, Fleet) {
    let began = Instant::now();
    let mut rng = fastrand::Rng::with_seed(spec.seed);
    // Apart from the kinds' generator, so the kinds of a seed stay what they were.
    let mut extras = fastrand::Rng::with_seed(spec.seed ^ 0x5eed_1a9e);
    let total = spec.members + spec.suspended_members;
    let mut accounts = BTreeMap::new();
    let mut seeded = Vec::new();
    let mut texts: HashMap<String, Arc<str>> = HashMap::new();
    let mut templates = CreationTemplates::default();
    for k in 0..total {
        let id = member_id(k);
        let active = k < spec.members;
        let mut regions = HashMap::new();
        for (r, region) in spec.regions.iter().enumerate() {
            let mut state = RegionState::default();
            for i in 0..spec.repos_per_region {
                let kind = RepoKind::for_index(rng.usize(0..10));
                let (mut repo, tags): (SeededRepo, _) = repo_of_kind(&id, region, i, kind);
                repo.active = active;
                // One allocation per distinct text keeps 100,000 repositories small.
                let policy = repo.policy.as_ref().map(|text| {
                    texts
                        .entry(text.clone())
                        .or_insert_with(|| Arc::from(text.as_str()))
                        .clone()
                });
                state.repos.push(SynthRepo {
                    name: repo.name.clone(),
                    tags,
                    policy,
                    puts: 0,
                    deleted: false,
                    vanish_after_listing: false,
                    kind,
                    image_count: if spec.images { extras.u8(2..=8) } else { 0 },
                    in_use: false,
                });
                seeded.push(repo);
            }
            state.repos.sort_by(|a, b| a.name.cmp(&b.name));
            state.index = state
                .repos
                .iter()
                .enumerate()
                .map(|(i, r)| (r.name.clone(), i))
                .collect();
            if spec.images && spec.in_use && active && r == 0 {
                let needs_policy = state
                    .repos
                    .iter()
                    .position(|repo| matches!(repo.kind, RepoKind::Missing | RepoKind::Outdated));
                if let Some(i) = needs_policy {
                    state.repos[i].in_use = true;
                    state.functions.push((IN_USE_FUNCTION.to_string(), i));
                }
            }
            if spec.creation_templates {
                for template in templates_of(k) {
                    templates.put(&id, region, template);
                }
            }
            regions.insert(region.clone(), state);
        }
        accounts.insert(id, AccountState { active, regions });
    }
    seeded.sort_by(|a, b| {
        (&a.account_id, &a.region, &a.name).cmp(&(&b.account_id, &b.region, &b.name))
    });
    let fleet = Fleet {
        members: (0..spec.members).map(member_id).collect(),
        suspended: (spec.members..total).map(member_id).collect(),
        regions: spec.regions.clone(),
        repos: seeded,
        api_calls: 0,
        elapsed: began.elapsed(),
    };
    let state = State {
        accounts,
        seed: spec.seed,
        epoch: jiff::Timestamp::now().as_second(),
        load_rules: spec.load.clone(),
        load: LoadState::default(),
        deny_assume_role: HashSet::new(),
        templates,
        counts: BTreeMap::new(),
        failures: BTreeMap::new(),
        answers: None,
        since: std::time::Instant::now(),
    };
    (state, fleet)
}

/// The creation templates of the `k`-th member account (in each of its regions): none,
/// an outdated `ROOT` beside an unmanaged template with settings of its own, or a `ROOT`
/// with the fixture template.
pub fn templates_of(k: usize) -> Vec<CreationTemplate> {
    match k % 3 {
        0 => Vec::new(),
        1 => vec![
            CreationTemplate::with_lifecycle_policy("ROOT", OUTDATED_POLICY),
            CreationTemplate {
                description: Some("Images pulled from the old registry".into()),
                image_tag_mutability: Some("IMMUTABLE".into()),
                resource_tags: vec![crate::templates::ResourceTag {
                    key: "team".into(),
                    value: "platform".into(),
                }],
                ..CreationTemplate::with_lifecycle_policy(UNMANAGED_PREFIX, OUTDATED_POLICY)
            },
        ],
        _ => vec![CreationTemplate::with_lifecycle_policy(
            "ROOT",
            CI_BUILDS_POLICY,
        )],
    }
}
