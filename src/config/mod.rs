//! The TOML configuration: parsing, validation and the resolved, typed form the rest of the
//! program uses. Every error names the file, line, column and field, and is raised before any
//! AWS call.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::aws::ExecutionLimits;
use crate::model::InUseSource;

pub mod builtin;
mod checks;
mod matching;
mod resolve;
pub mod templates;

pub use checks::{check_account_id, check_region};
pub use matching::{classify, Disposition, MatchRule, NameGlob};
use templates::{TemplateError, TemplateSet};

/// Environment variable read when `--config` is not given.
pub const CONFIG_ENV: &str = "ECR_FLEET_CONFIG";

/// Where the configuration came from, for error messages and relative paths.
pub const DEFAULT_CONFIG_FILE: &str = "ecr-fleet.toml";
pub const DEFAULT_EXCEPTION_TAG: &str = "ecr-fleet:exempt";
pub const DEFAULT_ROLE_NAME: &str = "EcrFleetSpoke";
pub const DEFAULT_SESSION_NAME: &str = "ecr-fleet";

/// A configuration error pointing at a place in a file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read config: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {field}: {message}")]
    At {
        path: String,
        line: usize,
        column: usize,
        field: String,
        message: String,
    },
    #[error("{0}")]
    Template(#[from] TemplateError),
}

impl ConfigError {
    fn at(
        src: &Source,
        span: Range<usize>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        let (line, column) = src.line_col(span.start);
        ConfigError::At {
            path: src.path.clone(),
            line,
            column,
            field: field.into(),
            message: message.into(),
        }
    }
}

struct Source<'a> {
    path: String,
    text: &'a str,
}

impl Source<'_> {
    fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let column = before.rfind('\n').map_or(offset, |nl| offset - nl - 1) + 1;
        (line, column)
    }
}

// ---------------------------------------------------------------------------------------------
// Resolved form

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountSource {
    Organization { organizational_units: Vec<String> },
    List(Vec<String>),
    Current,
}

#[derive(Debug, Clone)]
pub struct AccountsConfig {
    pub source: AccountSource,
    pub exclude: Vec<String>,
    pub role_name: String,
    pub external_id: Option<String>,
    pub session_name: String,
    pub session_duration_seconds: Option<i32>,
    /// `--shard K/N`: visit only this shard's accounts (not a config key).
    pub shard: Option<crate::model::Shard>,
}

#[derive(Debug, Clone)]
pub struct ExceptionConfig {
    pub tag: String,
    pub value: Option<String>,
}

impl ExceptionConfig {
    /// Whether a repository with these tags opts out.
    pub fn exempts(&self, tags: &BTreeMap<String, String>) -> bool {
        match (tags.get(&self.tag), &self.value) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(v), Some(want)) => v == want,
        }
    }
}
#[derive(Debug, Clone, Default)]
pub struct SafetyConfig {
    pub protected_tags: Vec<NameGlob>,
    pub pulled_within_days: Option<u32>,
    /// Sources of the in-use index; empty: no index is collected.
    pub in_use: Vec<InUseSource>,
}

impl SafetyConfig {
    pub fn is_enabled(&self) -> bool {
        !self.protected_tags.is_empty()
            || self.pulled_within_days.is_some()
            || !self.in_use.is_empty()
    }
}

/// Which regions a run visits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegionSelection {
    /// These regions in every account (empty: the SDK's region).
    Listed(Vec<String>),
    /// Every region enabled for each account (Account Management ListRegions).
    Enabled,
}

/// The keyword of `regions = "enabled"` and `--regions enabled`.
pub const REGIONS_ENABLED: &str = "enabled";

#[derive(Debug, Clone)]
pub struct Config {
    /// The file this came from; `None` for the built-in default.
    pub path: Option<PathBuf>,
    /// Listed regions; empty with `regions = "enabled"` (see `regions_enabled`).
    pub regions: Vec<String>,
    /// `regions = "enabled"`: every region enabled for each account.
    pub regions_enabled: bool,
    pub accounts: AccountsConfig,
    pub exception: ExceptionConfig,
    pub matches: Vec<MatchRule>,
    pub templates: TemplateSet,
    pub execution: ExecutionLimits,
    pub backup_dir: PathBuf,
    pub safety: SafetyConfig,
    pub price_per_gb_month: f64,
    /// Window of the unused-image findings of `audit --images` (`[audit] unused_after_days`).
    pub unused_after_days: u32,
    /// Things that are valid but probably not meant, such as a `[[match]]` no repository can
    /// reach; `validate` prints them and runs log them.
    pub warnings: Vec<String>,
}

pub const DEFAULT_PRICE_PER_GB_MONTH: f64 = 0.10;
pub const DEFAULT_UNUSED_AFTER_DAYS: u32 = 90;

impl Config {
    /// The configuration used when no file exists: the current account, the given regions
    /// (or the SDK's region), every repository on the built-in default template.
    pub fn builtin(regions: Vec<String>) -> Config {
        Config {
            path: None,
            regions,
            regions_enabled: false,
            accounts: AccountsConfig {
                source: AccountSource::Current,
                exclude: Vec::new(),
                role_name: DEFAULT_ROLE_NAME.to_string(),
                external_id: None,
                session_name: DEFAULT_SESSION_NAME.to_string(),
                session_duration_seconds: None,
                shard: None,
            },
            exception: ExceptionConfig {
                tag: DEFAULT_EXCEPTION_TAG.to_string(),
                value: None,
            },
            matches: vec![MatchRule {
                template: templates::BUILTIN_DEFAULT.to_string(),
                names: Some(vec![NameGlob::new("*").expect("static glob")]),
                tags: None,
            }],
            templates: TemplateSet::builtin(),
            execution: ExecutionLimits::default(),
            backup_dir: PathBuf::from("."),
            safety: SafetyConfig::default(),
            price_per_gb_month: DEFAULT_PRICE_PER_GB_MONTH,
            unused_after_days: DEFAULT_UNUSED_AFTER_DAYS,
            warnings: Vec::new(),
        }
    }

    /// The regions this config asks for.
    pub fn region_selection(&self) -> RegionSelection {
        if self.regions_enabled {
            RegionSelection::Enabled
        } else {
            RegionSelection::Listed(self.regions.clone())
        }
    }

    /// Read and validate a config file, including every template it names.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Config::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        resolve::parse(text, path)
    }

    /// Templates referenced by at least one `[[match]]`, in first-use order.
    pub fn used_templates(&self) -> Vec<&str> {
        let mut seen = Vec::new();
        for m in &self.matches {
            if !seen.contains(&m.template.as_str()) {
                seen.push(m.template.as_str());
            }
        }
        seen
    }

    /// The first `[[match]]` that applies to a repository.
    pub fn match_repository(
        &self,
        name: &str,
        tags: &BTreeMap<String, String>,
    ) -> Option<&MatchRule> {
        self.matches.iter().find(|m| m.matches(name, tags))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(template: &str, body: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("policies")).unwrap();
        std::fs::write(
            dir.path().join("policies").join(format!("{template}.json")),
            body,
        )
        .unwrap();
        dir
    }

    const GOOD_POLICY: &str = r#"{"rules":[{"rulePriority":1,"description":"expire untagged images after a week","selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":7},"action":{"type":"expire"}}]}"#;

    fn parse_in(dir: &tempfile::TempDir, text: &str) -> Result<Config, ConfigError> {
        let path = dir.path().join("ecr-fleet.toml");
        std::fs::write(&path, text).unwrap();
        Config::load(&path)
    }

    fn err(text: &str) -> String {
        let dir = dir_with("weekly", GOOD_POLICY);
        let e = parse_in(&dir, text).unwrap_err().to_string();
        // Errors are one line and name the file.
        assert!(e.contains("ecr-fleet.toml"), "{e}");
        e
    }

    const MATCH: &str = "[[match]]\ntemplate = \"weekly\"\nnames = [\"*\"]\n";

    #[test]
    fn full_config_resolves() {
        let dir = dir_with("weekly", GOOD_POLICY);
        let c = parse_in(
            &dir,
            &format!(
                r#"templates_dir = "policies"
regions = ["us-east-1", "eu-west-1", "us-east-1"]
[accounts]
source = "organization"
organizational_units = ["ou-ab12-cdefghij"]
exclude = ["111111111111"]
role_name = "platform/EcrFleetSpoke"
external_id = "abc-123"
session_name = "ecr-fleet-nightly"
session_duration_seconds = 7200
[exception]
tag = "keep-me"
value = "true"
[execution]
concurrency = 8
per_region_concurrency = 2
max_attempts = 5
retry_mode = "standard"
[apply]
backup_dir = "backups"
[safety]
protected_tags = ["prod", "release-*"]
pulled_within_days = 30
[audit]
price_per_gb_month = 0.09
{MATCH}"#
            ),
        )
        .unwrap();
        assert_eq!(c.regions, vec!["us-east-1", "eu-west-1"]);
        assert_eq!(
            c.accounts.source,
            AccountSource::Organization {
                organizational_units: vec!["ou-ab12-cdefghij".into()]
            }
        );
        assert_eq!(c.accounts.session_duration_seconds, Some(7200));
        assert_eq!(c.execution.retry_mode, crate::aws::RetryMode::Standard);
        assert_eq!(c.execution.max_attempts, 5);
        assert!(c.safety.is_enabled());
        assert_eq!(c.templates.get("weekly").unwrap().policy.rules.len(), 1);
        assert!((c.price_per_gb_month - 0.09).abs() < f64::EPSILON);
    }

    #[test]
    fn unknown_key_names_line_and_field() {
        let e = err(&format!(
            "regions = [\"us-east-1\"]\n[accounts]\nsource = \"current\"\nrole = \"x\"\n{MATCH}"
        ));
        assert!(e.contains(":4:"), "{e}");
        assert!(e.contains("unknown field `role`"), "{e}");
        assert!(e.contains(": accounts.role: "), "{e}");
        assert!(!e.contains('\n'), "{e}");
    }

    #[test]
    fn an_error_in_an_array_of_tables_names_the_entry() {
        let e = err(&format!(
            "regions = [\"us-east-1\"]\n{MATCH}[[match]]\ntemplate = \"x\"\nnamez = [\"b\"]\n"
        ));
        assert!(e.contains(": match[1].namez: unknown field"), "{e}");
        let e = err(&format!(
            "regions = [\"us-east-1\"]\n{MATCH}[[match]]\nnames = \"b\"\n"
        ));
        assert!(e.contains(": match[1].names: invalid type"), "{e}");
    }

    #[test]
    fn bad_toml_names_line() {
        let e = err("regions = [\"us-east-1\"\n[[match]]\n");
        assert!(e.contains("ecr-fleet.toml:"), "{e}");
        assert!(!e.contains('\n'), "{e}");
    }

    #[test]
    fn wrong_type_names_the_field() {
        let e = err(&format!("regions = \"us-east-1\"\n{MATCH}"));
        assert!(e.contains(":1:"), "{e}");
        assert!(e.contains("regions"), "{e}");
    }

    #[test]
    fn bad_account_ids_are_rejected_with_position() {
        let e = err(&format!(
            "[accounts]\nsource = \"list\"\nids = [\"12345\"]\n{MATCH}"
        ));
        assert!(e.contains(":3:"), "{e}");
        assert!(e.contains("accounts.ids"), "{e}");
        assert!(e.contains("12 digits"), "{e}");
        let e = err(&format!(
            "[accounts]\nexclude = [\"1234567890ab\"]\n{MATCH}"
        ));
        assert!(e.contains("accounts.exclude"), "{e}");
    }

    #[test]
    fn list_source_needs_ids() {
        let e = err(&format!("[accounts]\nsource = \"list\"\n{MATCH}"));
        assert!(e.contains("needs at least one account id"), "{e}");
        let e = err(&format!("[accounts]\nsource = \"everything\"\n{MATCH}"));
        assert!(e.contains("accounts.source"), "{e}");
    }

    #[test]
    fn empty_and_malformed_regions() {
        let e = err(&format!("regions = []\n{MATCH}"));
        assert!(e.contains("regions: must list at least one region"), "{e}");
        let e = err(&format!("regions = [\"US-EAST-1\"]\n{MATCH}"));
        assert!(e.contains("not an AWS region"), "{e}");
        assert!(check_region("us-gov-west-1").is_ok());
        assert!(check_region("ap-southeast-5").is_ok());
        assert!(check_region("useast1").is_err());
    }

    #[test]
    fn regions_enabled_keyword() {
        let dir = dir_with("weekly", GOOD_POLICY);
        let c = parse_in(&dir, &format!("regions = \"enabled\"\n{MATCH}")).unwrap();
        assert!(c.regions_enabled);
        assert!(c.regions.is_empty());
        assert_eq!(c.region_selection(), RegionSelection::Enabled);
        let c = parse_in(&dir, &format!("regions = [\"eu-west-1\"]\n{MATCH}")).unwrap();
        assert_eq!(
            c.region_selection(),
            RegionSelection::Listed(vec!["eu-west-1".into()])
        );
        let e = err(&format!("regions = \"all\"\n{MATCH}"));
        assert!(e.contains(":1:"), "{e}");
        assert!(
            e.contains("regions: \"all\": expected a list of region names or \"enabled\""),
            "{e}"
        );
        let e = err(&format!("regions = 3\n{MATCH}"));
        assert!(e.contains("regions"), "{e}");
        assert!(!e.contains('\n'), "{e}");
    }

    #[test]
    fn in_use_sources_are_checked() {
        let dir = dir_with("weekly", GOOD_POLICY);
        let c = parse_in(
            &dir,
            &format!("[safety]\nin_use = [\"lambda\", \"ecs\"]\n{MATCH}"),
        )
        .unwrap();
        assert_eq!(c.safety.in_use, [InUseSource::Ecs, InUseSource::Lambda]);
        assert!(c.safety.is_enabled());
        let e = err(&format!("[safety]\nin_use = [\"ecs\", \"eks\"]\n{MATCH}"));
        assert!(e.contains(":2:"), "{e}");
        assert!(
            e.contains("safety.in_use: unknown in-use source \"eks\""),
            "{e}"
        );
        let e = err(&format!("[safety]\nin_use = [\"ecs\", \"ecs\"]\n{MATCH}"));
        assert!(e.contains("safety.in_use: \"ecs\" is listed twice"), "{e}");
        let e = err(&format!("[safety]\nin_use = \"ecs\"\n{MATCH}"));
        assert!(e.contains("safety.in_use"), "{e}");
    }

    #[test]
    fn unused_after_days_default_and_bounds() {
        let dir = dir_with("weekly", GOOD_POLICY);
        let c = parse_in(&dir, MATCH).unwrap();
        assert_eq!(c.unused_after_days, DEFAULT_UNUSED_AFTER_DAYS);
        let c = parse_in(&dir, &format!("[audit]\nunused_after_days = 30\n{MATCH}")).unwrap();
        assert_eq!(c.unused_after_days, 30);
        let e = err(&format!("[audit]\nunused_after_days = 0\n{MATCH}"));
        assert!(e.contains(":2:"), "{e}");
        assert!(
            e.contains("audit.unused_after_days: must be between 1 and 36500"),
            "{e}"
        );
    }

    #[test]
    fn bad_glob_names_the_match_entry() {
        let e = err("[[match]]\ntemplate = \"weekly\"\nnames = [\"prod-[\"]\n");
        assert!(e.contains(":3:"), "{e}");
        assert!(e.contains("match[0].names"), "{e}");
        assert!(e.contains("bad glob"), "{e}");
    }

    #[test]
    fn unknown_template_names_the_missing_file() {
        let e = err("[[match]]\ntemplate = \"nope\"\nnames = [\"*\"]\n");
        assert!(e.contains(":2:"), "{e}");
        assert!(e.contains("match[0].template"), "{e}");
        assert!(e.contains("nope.json"), "{e}");
        let e = err("[[match]]\ntemplate = \"../etc/passwd\"\nnames = [\"*\"]\n");
        assert!(e.contains("not a template name"), "{e}");
    }

    #[test]
    fn invalid_template_is_reported_with_its_file() {
        let dir = dir_with("weekly", "{\"rules\": [}");
        let e = parse_in(&dir, MATCH).unwrap_err().to_string();
        assert!(e.contains("weekly.json:1:"), "{e}");
        let dir = dir_with(
            "weekly",
            r#"{"rules":[{"rulePriority":1,"description":"count rules take no unit, so this one is invalid","selection":{"tagStatus":"any","countType":"imageCountMoreThan","countUnit":"days","countNumber":3},"action":{"type":"expire"}}]}"#,
        );
        let e = parse_in(&dir, MATCH).unwrap_err().to_string();
        assert!(e.contains("weekly.json: invalid lifecycle policy"), "{e}");
        assert!(e.contains("countUnit"), "{e}");
    }

    #[test]
    fn match_needs_a_selector_and_values() {
        let e = err("[[match]]\ntemplate = \"weekly\"\n");
        assert!(e.contains("needs `names` or `tags`"), "{e}");
        let e = err("[[match]]\ntemplate = \"weekly\"\ntags = { team = [] }\n");
        assert!(e.contains("match[0].tags.team"), "{e}");
        let e = err("regions = [\"us-east-1\"]\n");
        assert!(e.contains("no [[match]] entries"), "{e}");
    }

    #[test]
    fn execution_bounds_are_checked() {
        let e = err(&format!("[execution]\nconcurrency = 0\n{MATCH}"));
        assert!(
            e.contains("execution.concurrency: must be between 1 and 1024"),
            "{e}"
        );
        let e = err(&format!("[execution]\nretry_mode = \"yolo\"\n{MATCH}"));
        assert!(e.contains("execution.retry_mode"), "{e}");
    }

    #[test]
    fn unreadable_config_path() {
        let e = Config::load(Path::new("does/not/exist.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("does/not/exist.toml: cannot read config"),
            "{e}"
        );
    }

    #[test]
    fn entries_after_a_catch_all_are_reported_as_unreachable() {
        let dir = dir_with("weekly", GOOD_POLICY);
        let c = parse_in(
            &dir,
            "[[match]]\ntemplate = \"weekly\"\nnames = [\"prod-*\"]\n\
             [[match]]\ntemplate = \"weekly\"\nnames = [\"*\"]\n\
             [[match]]\ntemplate = \"weekly\"\ntags = { team = [\"*\"] }\n",
        )
        .unwrap();
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        assert!(c.warnings[0].contains("match[2]"), "{:?}", c.warnings);
        assert!(
            c.warnings[0].contains("match[1] matches every repository"),
            "{:?}",
            c.warnings
        );
        let c = parse_in(&dir, MATCH).unwrap();
        assert!(c.warnings.is_empty());
    }

    #[test]
    fn builtin_default_manages_everything() {
        let c = Config::builtin(vec!["us-east-1".into()]);
        assert_eq!(c.accounts.source, AccountSource::Current);
        assert_eq!(
            c.match_repository("any/name", &BTreeMap::new())
                .unwrap()
                .template,
            "untagged-cleanup"
        );
    }
}
