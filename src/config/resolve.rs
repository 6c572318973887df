//! From the file's raw TOML form to the resolved [`Config`]: every check that names a file,
//! line, column and field.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::checks::*;
use super::templates::{self, TemplateSet};
use super::*;
use crate::aws::{ExecutionLimits, RetryMode};
use crate::model::InUseSource;

/// Parse and resolve a config file's text.
pub(super) fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let src = Source {
        path: path.display().to_string(),
        text,
    };
    // The path of the key at fault comes from serde_path_to_error; the line and column
    // from the TOML parser's span.
    let fail = |e: toml::de::Error, field: String| {
        let span = e.span().unwrap_or(0..0);
        // serde messages are multi-line only when they quote the source; keep the first line.
        let message = e
            .message()
            .lines()
            .next()
            .unwrap_or("invalid TOML")
            .to_string();
        ConfigError::at(&src, span, field, message)
    };
    let de = toml::Deserializer::parse(text).map_err(|e| fail(e, "TOML syntax".to_string()))?;
    let raw: RawConfig = serde_path_to_error::deserialize(de).map_err(|e| {
        let field = key_path(e.path());
        fail(e.into_inner(), field)
    })?;
    resolve(raw, &src, path)
}

/// `accounts.role_name`, `match[1].names`: the path serde_path_to_error recorded, without the
/// private segment of toml's `Spanned` wrapper.
fn key_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Map { key } if key.starts_with("$__serde_spanned") => {}
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Unknown => {}
        }
    }
    if out.is_empty() {
        "(top level)".to_string()
    } else {
        out
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
        templates::check_template_name(name).map_err(|msg| {
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
) -> Result<ExecutionLimits, ConfigError> {
    let mut out = ExecutionLimits::default();
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
