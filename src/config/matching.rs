//! Which template applies to a repository: `[[match]]` rules (name globs and tags, first match
//! in file order) and the exception tag.

use std::collections::BTreeMap;

use globset::GlobMatcher;

use super::Config;

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

/// Where the configuration puts a repository, decided from its name and tags alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// Carries the exception tag; `template` is what would have matched otherwise.
    Excluded {
        template: Option<String>,
    },
    Unmatched,
    Managed {
        template: String,
    },
}

impl Disposition {
    pub fn template(&self) -> Option<&str> {
        match self {
            Disposition::Excluded { template } => template.as_deref(),
            Disposition::Unmatched => None,
            Disposition::Managed { template } => Some(template),
        }
    }
}

pub fn classify(config: &Config, name: &str, tags: &BTreeMap<String, String>) -> Disposition {
    let matched = config
        .match_repository(name, tags)
        .map(|m| m.template.clone());
    if config.exception.exempts(tags) {
        return Disposition::Excluded { template: matched };
    }
    match matched {
        Some(template) => Disposition::Managed { template },
        None => Disposition::Unmatched,
    }
}
