//! Policy templates: plain ECR lifecycle policy files, validated against the full grammar when
//! the configuration is loaded, so no AWS call is made with an invalid template.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ecr_lifecycle::{parse_policy, Policy, PolicyError};

/// Name of the built-in default template (untagged-only cleanup), always available.
pub const BUILTIN_DEFAULT: &str = "untagged-cleanup";
const BUILTIN_DEFAULT_TEXT: &str = include_str!("../../policies/untagged-cleanup.json");

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("{path}: cannot read template: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: not valid JSON: {message}")]
    Json {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: invalid lifecycle policy:\n{}", indent(.violations))]
    Invalid { path: String, violations: String },
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl TemplateError {
    pub fn from_policy_error(path: &Path, err: PolicyError) -> Self {
        let path = path.display().to_string();
        match err {
            PolicyError::Json {
                line,
                column,
                message,
            } => TemplateError::Json {
                path,
                line,
                column,
                message,
            },
            invalid @ PolicyError::Invalid(_) => TemplateError::Invalid {
                path,
                violations: invalid.to_string(),
            },
        }
    }
}

#[derive(Debug, Clone)]
pub struct Template {
    pub name: String,
    /// The file it came from; `None` for the built-in default.
    pub path: Option<PathBuf>,
    /// The exact text written by `apply`.
    pub text: String,
    pub policy: Policy,
}

#[derive(Debug, Clone, Default)]
pub struct TemplateSet {
    templates: BTreeMap<String, Template>,
}

impl TemplateSet {
    /// Only the built-in default.
    pub fn builtin() -> Self {
        let policy =
            parse_policy(BUILTIN_DEFAULT_TEXT).expect("the built-in default template is valid");
        let mut templates = BTreeMap::new();
        templates.insert(
            BUILTIN_DEFAULT.to_string(),
            Template {
                name: BUILTIN_DEFAULT.to_string(),
                path: None,
                text: BUILTIN_DEFAULT_TEXT.to_string(),
                policy,
            },
        );
        TemplateSet { templates }
    }

    pub fn contains(&self, name: &str) -> bool {
        self.templates.get(name).is_some_and(|t| t.path.is_some())
    }

    pub fn get(&self, name: &str) -> Option<&Template> {
        self.templates.get(name)
    }

    /// Load `<dir>/<name>.json`. A file of that name overrides the built-in default.
    /// Returns `Ok(false)` when there is no such file and no built-in of that name.
    pub fn load_from_dir(&mut self, dir: &Path, name: &str) -> Result<bool, TemplateError> {
        let path = dir.join(format!("{name}.json"));
        if !path.is_file() {
            return Ok(self.templates.contains_key(name));
        }
        let template = load_template_file(&path, name)?;
        self.templates.insert(name.to_string(), template);
        Ok(true)
    }

    pub fn retain_used<'a>(&mut self, used: impl Iterator<Item = &'a str>) {
        let used: Vec<&str> = used.collect();
        self.templates
            .retain(|name, _| used.contains(&name.as_str()));
    }
}

/// Read and validate one template file.
pub fn load_template_file(path: &Path, name: &str) -> Result<Template, TemplateError> {
    let text = std::fs::read_to_string(path).map_err(|source| TemplateError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let policy = parse_policy(&text).map_err(|e| TemplateError::from_policy_error(path, e))?;
    Ok(Template {
        name: name.to_string(),
        path: Some(path.to_path_buf()),
        text,
        policy,
    })
}

/// Template names become file names: keep them to a safe character set.
pub fn check_template_name(name: &str) -> Result<(), String> {
    if !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.')
    {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a template name (letters, digits, '-', '_' and '.'; the file is <templates_dir>/<name>.json)"
        ))
    }
}
