//! A simulated organization in which a run shows every outcome, for `ecr-fleet demo`: a
//! [`DemoSpec`] starts a [`SynthFleet`] on loopback, and [`DemoSpec::config`] gives a config
//! file and the policy templates that fit it.
//!
//! With the config, a `plan` of the demo organization reports repositories to create and to
//! update, unchanged ones (some with the template's text reformatted), an excluded one
//! (tag `ecr-fleet:exempt`), unmatched ones (`scratch/*`), a blocked one (its oldest
//! untagged image runs in a Lambda function) and a suspended account left out. Images
//! (ages, sizes, pulls) feed `audit --images`. Two accounts of three hold repository
//! creation templates: an outdated `ROOT` beside an unmanaged `legacy` template, or a
//! `ROOT` already right.
//!
//! To run the pipeline against it: start the server, then give the SDK
//! [`DemoSpec::environment`] (the endpoint, static credentials that are not secret, a
//! region; no profile, no instance metadata).

use std::path::{Path, PathBuf};

use crate::faults::LoadRules;
use crate::fleet::{fleet_config, CI_BUILDS_POLICY, CI_BUILDS_TEMPLATE, FLEET_REGIONS};
use crate::server::{SynthFleet, SynthSpec};

/// What the demo organization holds.
#[derive(Clone, Debug)]
pub struct DemoSpec {
    /// Active member accounts; one suspended member is added.
    pub accounts: usize,
    pub regions: Vec<String>,
    pub repos_per_region: usize,
    pub seed: u64,
    /// Latency, random throttling or quotas, as the benchmarks use them.
    pub load: LoadRules,
}

impl Default for DemoSpec {
    /// Three accounts (and a suspended one), two regions, 20 repositories each, seed 1, no
    /// load faults.
    fn default() -> DemoSpec {
        DemoSpec {
            accounts: 3,
            regions: FLEET_REGIONS.iter().map(|r| r.to_string()).collect(),
            repos_per_region: 20,
            seed: 1,
            load: LoadRules::default(),
        }
    }
}

/// A config file and its policy templates, for a [`DemoSpec`].
#[derive(Clone, Debug)]
pub struct DemoConfig {
    /// `ecr-fleet.toml`: the organization's accounts, the demo's regions, the exception
    /// tag, in-use protection through Lambda, one `[[match]]`. Its `templates_dir` is
    /// `policies`, next to it.
    pub config_toml: String,
    /// `(name, JSON text)` of each policy template: `policies/<name>.json`.
    pub templates: Vec<(String, String)>,
    /// A `[[creation_template]]` entry (`ROOT`, the same template), to append to
    /// `config_toml` where the config knows creation templates.
    pub creation_template_toml: String,
}

impl DemoConfig {
    /// Writes `ecr-fleet.toml` (with `creation_templates`, the creation template entry
    /// too) and `policies/` into `dir`; returns the config's path.
    pub fn write_to(&self, dir: &Path, creation_templates: bool) -> std::io::Result<PathBuf> {
        let policies = dir.join("policies");
        std::fs::create_dir_all(&policies)?;
        for (name, text) in &self.templates {
            std::fs::write(policies.join(format!("{name}.json")), text)?;
        }
        let mut config = self.config_toml.clone();
        if creation_templates {
            config.push('\n');
            config.push_str(&self.creation_template_toml);
        }
        let path = dir.join("ecr-fleet.toml");
        std::fs::write(&path, config)?;
        Ok(path)
    }
}

impl DemoSpec {
    /// The synthetic fleet behind it: images, an in-use image and creation templates on,
    /// one suspended member.
    pub fn synth_spec(&self) -> SynthSpec {
        SynthSpec {
            members: self.accounts,
            suspended_members: 1,
            regions: self.regions.clone(),
            repos_per_region: self.repos_per_region,
            seed: self.seed,
            load: self.load.clone(),
            images: true,
            in_use: true,
            creation_templates: true,
        }
    }

    /// Generates the organization and serves it on 127.0.0.1 (a free port).
    pub fn start(&self) -> SynthFleet {
        SynthFleet::start(&self.synth_spec())
    }

    /// A config and templates that fit the organization.
    pub fn config(&self) -> DemoConfig {
        let regions: Vec<&str> = self.regions.iter().map(String::as_str).collect();
        let mut config_toml = fleet_config(&regions);
        // `[safety]` goes before the `[[match]]` array so the TOML stays in table order.
        let safety = "[safety]\nprotected_tags = [\"release-*\"]\nin_use = [\"lambda\"]\n\n";
        let at = config_toml
            .find("[[match]]")
            .expect("the fleet config has a [[match]]");
        config_toml.insert_str(at, safety);
        DemoConfig {
            config_toml,
            templates: vec![(CI_BUILDS_TEMPLATE.to_string(), CI_BUILDS_POLICY.to_string())],
            creation_template_toml: format!(
                "[[creation_template]]\nprefix = \"ROOT\"\ntemplate = \"{CI_BUILDS_TEMPLATE}\"\n"
            ),
        }
    }

    /// Environment for the SDK to reach `url` (a [`SynthFleet::url`]) as the management
    /// account: endpoint, static credentials (placeholders, not secrets), region, and no
    /// instance metadata lookups.
    pub fn environment(url: &str) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", url.to_string()),
            ("AWS_ACCESS_KEY_ID", "demo".to_string()),
            ("AWS_SECRET_ACCESS_KEY", "demo".to_string()),
            ("AWS_REGION", FLEET_REGIONS[0].to_string()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_has_safety_before_the_match_and_writes_its_workspace() {
        let config = DemoSpec::default().config();
        let safety = config.config_toml.find("[safety]").unwrap();
        let rule = config.config_toml.find("[[match]]").unwrap();
        assert!(safety < rule);
        let dir = std::env::temp_dir().join(format!("ecr-fleet-sim-{}", std::process::id()));
        let path = config.write_to(&dir, true).unwrap();
        let written = std::fs::read_to_string(&path).unwrap();
        assert!(written.ends_with("template = \"ci-builds\"\n"), "{written}");
        assert!(dir.join("policies/ci-builds.json").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
