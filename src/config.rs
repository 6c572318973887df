//! The TOML configuration: parsing, validation and the resolved, typed form the rest of the
//! program uses. Every error names the file, line, column and field, and is raised before any
//! AWS call.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use globset::GlobMatcher;
use serde::Deserialize;
use toml::Spanned;

use crate::templates::{TemplateError, TemplateSet};

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

    /// Best-effort dotted name of the key whose value sits at `offset`: the nearest table
    /// header above plus the key on that line. Used for serde errors, which carry only a span.
    fn field_at(&self, offset: usize) -> String {
        let offset = offset.min(self.text.len());
        let line_start = self.text[..offset].rfind('\n').map_or(0, |i| i + 1);
        let line_end = self.text[offset..]
            .find('\n')
            .map_or(self.text.len(), |i| offset + i);
        let line = &self.text[line_start..line_end];
        let table = self.text[..line_start]
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| l.starts_with('['))
            .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_string());
        let key = line
            .split_once('=')
            .map(|(k, _)| k.trim().trim_matches('"').to_string())
            .filter(|k| !k.is_empty() && !k.starts_with('['));
        let header = line.trim();
        if header.starts_with('[') {
            return header
                .trim_matches(|c| c == '[' || c == ']')
                .trim()
                .to_string();
        }
        match (table, key) {
            (Some(t), Some(k)) => format!("{t}.{k}"),
            (None, Some(k)) => k,
            (Some(t), None) => t,
            (None, None) => "(top level)".to_string(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Raw (file) form

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    templates_dir: Option<Spanned<String>>,
    regions: Option<Spanned<RawRegions>>,
    accounts: Option<RawAccounts>,
    exception: Option<RawException>,
    #[serde(rename = "match", default)]
    matches: Vec<Spanned<RawMatch>>,
    execution: Option<RawExecution>,
    apply: Option<RawApply>,
    safety: Option<RawSafety>,
    audit: Option<RawAudit>,
}

/// `regions = ["us-east-1", ...]` or `regions = "enabled"`.
#[derive(Debug)]
enum RawRegions {
    Keyword(String),
    List(Vec<Spanned<String>>),
}

// By hand, not `#[serde(untagged)]`: untagged enums buffer their input and so lose the
// positions `Spanned` needs for per-region errors.
impl<'de> Deserialize<'de> for RawRegions {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = RawRegions;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of region names or the string \"enabled\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawRegions, E> {
                Ok(RawRegions::Keyword(v.to_string()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<RawRegions, A::Error> {
                let mut out = Vec::new();
                while let Some(r) = seq.next_element::<Spanned<String>>()? {
                    out.push(r);
                }
                Ok(RawRegions::List(out))
            }
        }
        d.deserialize_any(Visitor)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccounts {
    source: Option<Spanned<String>>,
    ids: Option<Vec<Spanned<String>>>,
    organizational_units: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    exclude: Vec<Spanned<String>>,
    role_name: Option<Spanned<String>>,
    external_id: Option<Spanned<String>>,
    session_name: Option<Spanned<String>>,
    session_duration_seconds: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawException {
    tag: Option<Spanned<String>>,
    value: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMatch {
    template: Spanned<String>,
    names: Option<Vec<Spanned<String>>>,
    tags: Option<BTreeMap<String, Spanned<Vec<Spanned<String>>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExecution {
    concurrency: Option<Spanned<i64>>,
    per_region_concurrency: Option<Spanned<i64>>,
    max_attempts: Option<Spanned<i64>>,
    retry_mode: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApply {
    backup_dir: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSafety {
    #[serde(default)]
    protected_tags: Vec<Spanned<String>>,
    pulled_within_days: Option<Spanned<i64>>,
    #[serde(default)]
    in_use: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAudit {
    price_per_gb_month: Option<Spanned<f64>>,
    unused_after_days: Option<Spanned<i64>>,
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
    pub shard: Option<crate::shard::Shard>,
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

/// One `[[match]]` entry, compiled.
#[derive(Debug, Clone)]
pub struct MatchRule {
    pub template: String,
    pub names: Option<Vec<NameGlob>>,
    /// Every key must be present with one of the listed values (`*` = any value).
    pub tags: Option<BTreeMap<String, Vec<String>>>,
}

#[derive(Debug, Clone)]
pub struct NameGlob {
    pub pattern: String,
    matcher: GlobMatcher,
}

impl NameGlob {
    /// Compile a repository-name glob: whole-name, case-sensitive, `*` crosses `/`.
    pub fn new(pattern: &str) -> Result<Self, String> {
        if pattern.is_empty() {
            return Err("empty glob".to_string());
        }
        let glob = globset::GlobBuilder::new(pattern)
            .literal_separator(false)
            .case_insensitive(false)
            .backslash_escape(true)
            .build()
            .map_err(|e| format!("bad glob {pattern:?}: {}", e.kind()))?;
        Ok(NameGlob {
            pattern: pattern.to_string(),
            matcher: glob.compile_matcher(),
        })
    }

    pub fn is_match(&self, name: &str) -> bool {
        self.matcher.is_match(name)
    }
}

impl MatchRule {
    pub fn matches(&self, name: &str, tags: &BTreeMap<String, String>) -> bool {
        let names_ok = self
            .names
            .as_ref()
            .is_none_or(|globs| globs.iter().any(|g| g.is_match(name)));
        let tags_ok = self.tags.as_ref().is_none_or(|wanted| {
            wanted.iter().all(|(key, values)| {
                tags.get(key)
                    .is_some_and(|v| values.iter().any(|w| w == "*" || w == v))
            })
        });
        names_ok && tags_ok
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryMode {
    /// The SDK's adaptive mode: retries and a client-side rate limiter inside each call.
    Adaptive,
    /// ecr-fleet's own: full-jitter exponential backoff that holds no permit while it waits,
    /// and a per-account-region rate controller that tells quota throttling from other
    /// clients' traffic (see `aws::rate`).
    Standard,
}

#[derive(Debug, Clone)]
pub struct ExecutionConfig {
    /// API calls in flight across the whole run.
    pub concurrency: usize,
    /// API calls in flight inside one account-region (ECR throttles per account and region).
    pub per_region_concurrency: usize,
    /// Attempts per call, the first included. The default is sized for throttling: under
    /// 30% of calls throttled by other clients' traffic, a call fails after 15 attempts
    /// about once in 70 million (0.3^15), so a run of 100,000 repositories almost never
    /// gives up on one; after 10, once in 170,000, about once in ten 2,000-repository runs.
    pub max_attempts: u32,
    pub retry_mode: RetryMode,
}

impl Default for ExecutionConfig {
    fn default() -> Self {
        ExecutionConfig {
            concurrency: 32,
            per_region_concurrency: 8,
            max_attempts: 15,
            retry_mode: RetryMode::Standard,
        }
    }
}

/// What can be asked to protect images that something runs (`[safety] in_use`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InUseSource {
    /// Task definitions of active ECS services and of running tasks.
    Ecs,
    /// Lambda functions of package type Image.
    Lambda,
    /// Amazon Inspector's coverage of ECR images (`inUseCount`, `lastInUseAt`).
    Inspector,
}

impl InUseSource {
    pub const ALL: [InUseSource; 3] = [
        InUseSource::Ecs,
        InUseSource::Lambda,
        InUseSource::Inspector,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            InUseSource::Ecs => "ecs",
            InUseSource::Lambda => "lambda",
            InUseSource::Inspector => "inspector",
        }
    }

    pub fn parse(name: &str) -> Result<InUseSource, String> {
        InUseSource::ALL
            .into_iter()
            .find(|s| s.as_str() == name)
            .ok_or_else(|| {
                format!(
                    "unknown in-use source {name:?}: expected \"ecs\", \"lambda\" or \"inspector\""
                )
            })
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
    pub execution: ExecutionConfig,
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
                template: crate::templates::BUILTIN_DEFAULT.to_string(),
                names: Some(vec![NameGlob::new("*").expect("static glob")]),
                tags: None,
            }],
            templates: TemplateSet::builtin(),
            execution: ExecutionConfig::default(),
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
        let src = Source {
            path: path.display().to_string(),
            text,
        };
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            let field = src.field_at(span.start);
            // serde messages are multi-line only when they quote the source; keep the first line.
            let message = e
                .message()
                .lines()
                .next()
                .unwrap_or("invalid TOML")
                .to_string();
            ConfigError::at(&src, span, field, message)
        })?;
        resolve(raw, &src, path)
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

fn resolve(raw: RawConfig, src: &Source, path: &Path) -> Result<Config, ConfigError> {
    let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let (regions, regions_enabled) = resolve_regions(raw.regions, src)?;
    let accounts = resolve_accounts(raw.accounts, src)?;
    let exception = resolve_exception(raw.exception, src)?;
    let templates_dir = resolve_templates_dir(raw.templates_dir.as_ref(), &base_dir, src)?;
    let (matches, templates) = resolve_matches(raw.matches, &templates_dir, src)?;
    let warnings = unreachable_matches(&matches, &src.path);
    let execution = resolve_execution(raw.execution, src)?;
    let backup_dir = raw
        .apply
        .and_then(|a| a.backup_dir)
        .map_or_else(|| PathBuf::from("."), |d| PathBuf::from(d.into_inner()));
    let safety = resolve_safety(raw.safety, src)?;
    let (price_per_gb_month, unused_after_days) = resolve_audit(raw.audit, src)?;

    Ok(Config {
        path: Some(path.to_path_buf()),
        regions,
        regions_enabled,
        accounts,
        exception,
        matches,
        templates,
        execution,
        backup_dir,
        safety,
        price_per_gb_month,
        unused_after_days,
        warnings,
    })
}

/// `regions`: a list of region names, or `"enabled"` (every region enabled per account).
fn resolve_regions(
    raw: Option<Spanned<RawRegions>>,
    src: &Source,
) -> Result<(Vec<String>, bool), ConfigError> {
    Ok(match raw {
        None => (Vec::new(), false),
        Some(spanned) => {
            let span = spanned.span();
            match spanned.into_inner() {
                RawRegions::Keyword(k) if k == REGIONS_ENABLED => (Vec::new(), true),
                RawRegions::Keyword(k) => {
                    return Err(ConfigError::at(
                        src,
                        span,
                        "regions",
                        format!("{k:?}: expected a list of region names or \"enabled\""),
                    ))
                }
                RawRegions::List(list) => {
                    if list.is_empty() {
                        return Err(ConfigError::at(
                            src,
                            span,
                            "regions",
                            "must list at least one region",
                        ));
                    }
                    let mut out = Vec::new();
                    for r in list {
                        check_region(r.get_ref())
                            .map_err(|m| ConfigError::at(src, r.span(), "regions", m))?;
                        if !out.contains(r.get_ref()) {
                            out.push(r.into_inner());
                        }
                    }
                    (out, false)
                }
            }
        }
    })
}

fn resolve_exception(
    raw: Option<RawException>,
    src: &Source,
) -> Result<ExceptionConfig, ConfigError> {
    Ok(match raw {
        None => ExceptionConfig {
            tag: DEFAULT_EXCEPTION_TAG.to_string(),
            value: None,
        },
        Some(e) => {
            let tag = checked_value(src, e.tag, "exception.tag", check_tag_key)?
                .unwrap_or_else(|| DEFAULT_EXCEPTION_TAG.to_string());
            ExceptionConfig {
                tag,
                value: e.value.map(Spanned::into_inner),
            }
        }
    })
}

fn resolve_templates_dir(
    raw: Option<&Spanned<String>>,
    base_dir: &Path,
    src: &Source,
) -> Result<PathBuf, ConfigError> {
    Ok(match raw {
        Some(d) => {
            if d.get_ref().trim().is_empty() {
                return Err(ConfigError::at(
                    src,
                    d.span(),
                    "templates_dir",
                    "must not be empty",
                ));
            }
            base_dir.join(d.get_ref())
        }
        None => base_dir.join("policies"),
    })
}

/// `[[match]]` entries, and the templates they use (loaded from `templates_dir`).
fn resolve_matches(
    raw: Vec<Spanned<RawMatch>>,
    templates_dir: &Path,
    src: &Source,
) -> Result<(Vec<MatchRule>, TemplateSet), ConfigError> {
    if raw.is_empty() {
        return Err(ConfigError::At {
            path: src.path.clone(),
            line: 1,
            column: 1,
            field: "match".to_string(),
            message:
                "no [[match]] entries: add at least one (names = [\"*\"] matches every repository)"
                    .to_string(),
        });
    }
    let mut templates = TemplateSet::builtin();
    let mut matches = Vec::new();
    for (i, m) in raw.into_iter().enumerate() {
        let span = m.span();
        let m = m.into_inner();
        let field = format!("match[{i}]");
        let name = m.template.get_ref();
        crate::templates::check_template_name(name).map_err(|msg| {
            ConfigError::at(src, m.template.span(), format!("{field}.template"), msg)
        })?;
        if !templates.contains(name) {
            match templates.load_from_dir(templates_dir, name) {
                Ok(true) => {}
                Ok(false) => {
                    return Err(ConfigError::at(
                        src,
                        m.template.span(),
                        format!("{field}.template"),
                        format!(
                            "unknown template {name:?}: no file {}",
                            templates_dir.join(format!("{name}.json")).display()
                        ),
                    ))
                }
                Err(e) => return Err(ConfigError::Template(e)),
            }
        }
        if m.names.is_none() && m.tags.is_none() {
            return Err(ConfigError::at(
                src,
                span,
                field,
                "needs `names` or `tags` (names = [\"*\"] matches every repository)",
            ));
        }
        let names = match m.names {
            None => None,
            Some(globs) => {
                if globs.is_empty() {
                    return Err(ConfigError::at(
                        src,
                        span,
                        format!("{field}.names"),
                        "must not be empty",
                    ));
                }
                Some(checked_list(
                    src,
                    globs,
                    &format!("{field}.names"),
                    NameGlob::new,
                )?)
            }
        };
        let tags = match m.tags {
            None => None,
            Some(map) => {
                if map.is_empty() {
                    return Err(ConfigError::at(
                        src,
                        span,
                        format!("{field}.tags"),
                        "must not be empty",
                    ));
                }
                let mut out = BTreeMap::new();
                for (key, values) in map {
                    let vspan = values.span();
                    if values.get_ref().is_empty() {
                        return Err(ConfigError::at(
                            src,
                            vspan,
                            format!("{field}.tags.{key}"),
                            "must list at least one value (\"*\" = any value)",
                        ));
                    }
                    check_tag_key(&key)
                        .map_err(|msg| ConfigError::at(src, vspan, format!("{field}.tags"), msg))?;
                    out.insert(
                        key,
                        values
                            .into_inner()
                            .into_iter()
                            .map(Spanned::into_inner)
                            .collect(),
                    );
                }
                Some(out)
            }
        };
        matches.push(MatchRule {
            template: m.template.into_inner(),
            names,
            tags,
        });
    }
    // Only keep templates actually used (the built-in default stays available).
    templates.retain_used(matches.iter().map(|m| m.template.as_str()));
    Ok((matches, templates))
}

fn resolve_safety(raw: Option<RawSafety>, src: &Source) -> Result<SafetyConfig, ConfigError> {
    Ok(match raw {
        None => SafetyConfig::default(),
        Some(s) => {
            let protected_tags = checked_list(
                src,
                s.protected_tags,
                "safety.protected_tags",
                NameGlob::new,
            )?;
            let pulled_within_days = match s.pulled_within_days {
                None => None,
                Some(d) => Some(
                    u32::try_from(*d.get_ref())
                        .ok()
                        .filter(|v| *v <= 36_500)
                        .ok_or_else(|| {
                            ConfigError::at(
                                src,
                                d.span(),
                                "safety.pulled_within_days",
                                "must be between 0 and 36500",
                            )
                        })?,
                ),
            };
            let mut in_use = Vec::new();
            for name in &s.in_use {
                let source = InUseSource::parse(name.get_ref())
                    .map_err(|m| ConfigError::at(src, name.span(), "safety.in_use", m))?;
                if in_use.contains(&source) {
                    return Err(ConfigError::at(
                        src,
                        name.span(),
                        "safety.in_use",
                        format!("{:?} is listed twice", source.as_str()),
                    ));
                }
                in_use.push(source);
            }
            in_use.sort();
            SafetyConfig {
                protected_tags,
                pulled_within_days,
                in_use,
            }
        }
    })
}

/// `[audit]`: the price per GB-month and the unused-image window.
fn resolve_audit(raw: Option<RawAudit>, src: &Source) -> Result<(f64, u32), ConfigError> {
    let (raw_price, raw_unused) = match raw {
        None => (None, None),
        Some(a) => (a.price_per_gb_month, a.unused_after_days),
    };
    let unused_after_days = match raw_unused {
        None => DEFAULT_UNUSED_AFTER_DAYS,
        Some(d) => u32::try_from(*d.get_ref())
            .ok()
            .filter(|v| (1..=36_500).contains(v))
            .ok_or_else(|| {
                ConfigError::at(
                    src,
                    d.span(),
                    "audit.unused_after_days",
                    "must be between 1 and 36500",
                )
            })?,
    };
    let price_per_gb_month = match raw_price {
        None => DEFAULT_PRICE_PER_GB_MONTH,
        Some(p) => {
            let v = *p.get_ref();
            if !v.is_finite() || v < 0.0 {
                return Err(ConfigError::at(
                    src,
                    p.span(),
                    "audit.price_per_gb_month",
                    "must be a non-negative number",
                ));
            }
            v
        }
    };
    Ok((price_per_gb_month, unused_after_days))
}

/// `[[match]]` entries that come after a catch-all (`names` with a bare `*` and no `tags`):
/// first match wins, so no repository can ever reach them.
fn unreachable_matches(matches: &[MatchRule], path: &str) -> Vec<String> {
    let Some(catch_all) = matches.iter().position(|m| {
        m.tags.is_none()
            && m.names
                .as_ref()
                .is_some_and(|n| n.iter().any(|g| g.pattern == "*"))
    }) else {
        return Vec::new();
    };
    (catch_all + 1..matches.len())
        .map(|i| {
            format!(
                "{path}: match[{i}] (template {:?}) can never apply: match[{catch_all}] matches every repository first",
                matches[i].template
            )
        })
        .collect()
}

/// Check an optional string, turning a failure into an error at its position.
fn checked_value(
    src: &Source,
    value: Option<Spanned<String>>,
    field: &str,
    check: impl Fn(&str) -> Result<(), String>,
) -> Result<Option<String>, ConfigError> {
    value
        .map(|v| {
            check(v.get_ref()).map_err(|m| ConfigError::at(src, v.span(), field, m))?;
            Ok(v.into_inner())
        })
        .transpose()
}

/// Check every string of a list, turning a failure into an error at that string's position.
fn checked_list<T>(
    src: &Source,
    list: Vec<Spanned<String>>,
    field: &str,
    check: impl Fn(&str) -> Result<T, String>,
) -> Result<Vec<T>, ConfigError> {
    list.iter()
        .map(|item| check(item.get_ref()).map_err(|m| ConfigError::at(src, item.span(), field, m)))
        .collect()
}

fn account_id(id: &str) -> Result<String, String> {
    check_account_id(id).map(|()| id.to_string())
}

fn resolve_accounts(raw: Option<RawAccounts>, src: &Source) -> Result<AccountsConfig, ConfigError> {
    let Some(a) = raw else {
        return Ok(AccountsConfig {
            source: AccountSource::Current,
            exclude: Vec::new(),
            role_name: DEFAULT_ROLE_NAME.to_string(),
            external_id: None,
            session_name: DEFAULT_SESSION_NAME.to_string(),
            session_duration_seconds: None,
            shard: None,
        });
    };
    let ids = match a.ids {
        None => None,
        Some(ids) => Some(checked_list(src, ids, "accounts.ids", account_id)?),
    };
    // Where the list starts, for the error if the source does not take OUs.
    let ous_span = a
        .organizational_units
        .as_ref()
        .and_then(|l| l.first())
        .map(Spanned::span);
    let ous = match a.organizational_units {
        None => None,
        Some(ous) => Some(checked_list(
            src,
            ous,
            "accounts.organizational_units",
            |id| check_ou_id(id).map(|()| id.to_string()),
        )?),
    };
    let source = match a.source {
        None => {
            if ids.is_some() {
                AccountSource::List(ids.clone().unwrap_or_default())
            } else if ous.is_some() {
                AccountSource::Organization {
                    organizational_units: ous.clone().unwrap_or_default(),
                }
            } else {
                AccountSource::Current
            }
        }
        Some(s) => match s.get_ref().as_str() {
            "organization" => {
                if ids.is_some() {
                    return Err(ConfigError::at(
                        src,
                        s.span(),
                        "accounts.ids",
                        "only used with source = \"list\"",
                    ));
                }
                AccountSource::Organization {
                    organizational_units: ous.clone().unwrap_or_default(),
                }
            }
            "list" => {
                let list = ids.clone().unwrap_or_default();
                if list.is_empty() {
                    return Err(ConfigError::at(
                        src,
                        s.span(),
                        "accounts.ids",
                        "source = \"list\" needs at least one account id in `ids`",
                    ));
                }
                AccountSource::List(list)
            }
            "current" => AccountSource::Current,
            other => {
                return Err(ConfigError::at(
                    src,
                    s.span(),
                    "accounts.source",
                    format!(
                    "unknown source {other:?}: expected \"organization\", \"list\" or \"current\""
                ),
                ))
            }
        },
    };
    if ous.is_some() && !matches!(source, AccountSource::Organization { .. }) {
        return Err(ConfigError::at(
            src,
            ous_span.unwrap_or(0..0),
            "accounts.organizational_units",
            "only used with source = \"organization\"",
        ));
    }
    let exclude = checked_list(src, a.exclude, "accounts.exclude", account_id)?;
    let role_name = checked_value(src, a.role_name, "accounts.role_name", check_role_name)?
        .unwrap_or_else(|| DEFAULT_ROLE_NAME.to_string());
    let external_id = checked_value(
        src,
        a.external_id,
        "accounts.external_id",
        check_external_id,
    )?;
    let session_name = checked_value(
        src,
        a.session_name,
        "accounts.session_name",
        check_session_name,
    )?
    .unwrap_or_else(|| DEFAULT_SESSION_NAME.to_string());
    let session_duration_seconds = match a.session_duration_seconds {
        None => None,
        Some(d) => {
            let v = *d.get_ref();
            if !(900..=43_200).contains(&v) {
                return Err(ConfigError::at(
                    src,
                    d.span(),
                    "accounts.session_duration_seconds",
                    "must be between 900 and 43200",
                ));
            }
            Some(v as i32)
        }
    };
    Ok(AccountsConfig {
        source,
        exclude,
        role_name,
        external_id,
        session_name,
        session_duration_seconds,
        shard: None,
    })
}

fn resolve_execution(
    raw: Option<RawExecution>,
    src: &Source,
) -> Result<ExecutionConfig, ConfigError> {
    let mut out = ExecutionConfig::default();
    let Some(e) = raw else { return Ok(out) };
    let ranged = |v: &Spanned<i64>, field: &str, lo: i64, hi: i64| -> Result<i64, ConfigError> {
        let n = *v.get_ref();
        if (lo..=hi).contains(&n) {
            Ok(n)
        } else {
            Err(ConfigError::at(
                src,
                v.span(),
                field,
                format!("must be between {lo} and {hi}"),
            ))
        }
    };
    if let Some(v) = &e.concurrency {
        out.concurrency = ranged(v, "execution.concurrency", 1, 1024)? as usize;
    }
    if let Some(v) = &e.per_region_concurrency {
        out.per_region_concurrency = ranged(v, "execution.per_region_concurrency", 1, 64)? as usize;
    }
    if let Some(v) = &e.max_attempts {
        out.max_attempts = ranged(v, "execution.max_attempts", 1, 20)? as u32;
    }
    if let Some(m) = &e.retry_mode {
        out.retry_mode = match m.get_ref().as_str() {
            "adaptive" => RetryMode::Adaptive,
            "standard" => RetryMode::Standard,
            other => {
                return Err(ConfigError::at(
                    src,
                    m.span(),
                    "execution.retry_mode",
                    format!("unknown retry mode {other:?}: expected \"adaptive\" or \"standard\""),
                ))
            }
        };
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Field checks shared with the command line

pub fn check_account_id(id: &str) -> Result<(), String> {
    if id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(format!("{id:?} is not an AWS account id (12 digits)"))
    }
}

pub fn check_region(region: &str) -> Result<(), String> {
    // e.g. us-east-1, eu-central-2, us-gov-west-1, cn-northwest-1, ap-southeast-5
    let parts: Vec<&str> = region.split('-').collect();
    let ok = parts.len() >= 3
        && parts[0].len() == 2
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit())
        && !parts[parts.len() - 1].is_empty();
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{region:?} is not an AWS region name (like \"us-east-1\")"
        ))
    }
}

fn check_ou_id(id: &str) -> Result<(), String> {
    let is_lower_alnum = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    let ok = if let Some(rest) = id.strip_prefix("ou-") {
        rest.split_once('-').is_some_and(|(a, b)| {
            (4..=32).contains(&a.len())
                && (8..=32).contains(&b.len())
                && is_lower_alnum(a)
                && is_lower_alnum(b)
        })
    } else if let Some(rest) = id.strip_prefix("r-") {
        (4..=32).contains(&rest.len()) && is_lower_alnum(rest)
    } else {
        false
    };
    if ok {
        Ok(())
    } else {
        Err(format!("{id:?} is not an organizational unit id (like \"ou-ab12-cdefghij\") or root id (\"r-ab12\")"))
    }
}

fn iam_chars(s: &str, extra: &str) -> bool {
    s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "+=,.@-_".contains(c) || extra.contains(c))
}

fn check_role_name(name: &str) -> Result<(), String> {
    // A role name may carry a path ("team/EcrFleetSpoke"); the name part is 1..64 characters.
    let last = name.rsplit('/').next().unwrap_or(name);
    if !last.is_empty() && last.len() <= 64 && iam_chars(name, "/") && !name.starts_with('/') {
        Ok(())
    } else {
        Err(format!("{name:?} is not an IAM role name (1-64 of letters, digits and +=,.@-_, optionally after a path)"))
    }
}

fn check_session_name(name: &str) -> Result<(), String> {
    if (2..=64).contains(&name.len()) && iam_chars(name, "") {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a valid role session name (2-64 of letters, digits and +=,.@-_)"
        ))
    }
}

fn check_external_id(id: &str) -> Result<(), String> {
    if (2..=1224).contains(&id.len()) && iam_chars(id, ":/") {
        Ok(())
    } else {
        Err("must be 2-1224 of letters, digits and +=,.@:/-_".to_string())
    }
}

fn check_tag_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.chars().count() > 128 {
        Err(format!("{key:?} is not a valid tag key (1-128 characters)"))
    } else {
        Ok(())
    }
}

impl fmt::Display for RetryMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RetryMode::Adaptive => "adaptive",
            RetryMode::Standard => "standard",
        })
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
        assert_eq!(c.execution.retry_mode, RetryMode::Standard);
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
        assert!(!e.contains('\n'), "{e}");
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
