//! `[[creation_template]]`: the repository creation templates ecr-fleet keeps in every visited
//! account-region, so that a repository ECR creates between two runs (on push, by a
//! pull-through cache, by replication) has its lifecycle policy from birth.

use serde::Deserialize;
use toml::Spanned;

use super::templates::TemplateSet;
use super::{ConfigError, Source};

/// The `appliedFor` values ECR knows, in the order ecr-fleet writes them.
pub const APPLIED_FOR: [&str; 3] = ["CREATE_ON_PUSH", "PULL_THROUGH_CACHE", "REPLICATION"];

/// The prefix of the template that covers every repository no other template covers.
pub const ROOT_PREFIX: &str = "ROOT";

/// One `[[creation_template]]` entry, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreationTemplateRule {
    /// As written in the config (ECR treats `team-a` and `team-a/` alike).
    pub prefix: String,
    /// A policy template, as in `[[match]]`.
    pub template: String,
    /// Sorted, without duplicates.
    pub applied_for: Vec<String>,
}

/// The prefix as ECR compares it: the trailing `/` ECR assumes is dropped.
pub fn prefix_key(prefix: &str) -> &str {
    prefix.strip_suffix('/').unwrap_or(prefix)
}

/// The `prefix` ECR accepts (CreateRepositoryCreationTemplate): `ROOT`, or 1 to 256 characters
/// matching `^([a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*\/?)$`:
/// lowercase namespaces separated by `/`, each made of lowercase letters and digits joined by
/// `.`, `_`, `__` or runs of `-`, with an optional trailing `/`.
pub fn check_prefix(prefix: &str) -> Result<(), String> {
    if prefix == ROOT_PREFIX {
        return Ok(());
    }
    let bad = || {
        Err(format!(
            "{prefix:?} is not a creation template prefix: \"ROOT\", or lowercase namespaces \
             separated by '/' (letters and digits joined by '.', '_', '__' or '-'), such as \
             \"team-a\" or \"prod/team-a\"; at most 256 characters"
        ))
    };
    if prefix.is_empty() || prefix.len() > 256 {
        return bad();
    }
    let body = prefix.strip_suffix('/').unwrap_or(prefix);
    if body.is_empty() || !body.split('/').all(namespace_ok) {
        return bad();
    }
    Ok(())
}

/// One path component: alphanumeric runs joined by `.`, `_`, `__` or `-+`.
fn namespace_ok(part: &str) -> bool {
    let bytes = part.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        // A separator run: one '.', one or two '_', or any number of '-'.
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &part[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// The file form of one entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCreationTemplate {
    prefix: Spanned<String>,
    template: Spanned<String>,
    applied_for: Option<Spanned<Vec<Spanned<String>>>>,
}

/// Resolve the entries, loading the templates they name into `templates`.
pub(super) fn resolve(
    raw: Vec<Spanned<RawCreationTemplate>>,
    templates: &mut TemplateSet,
    templates_dir: &std::path::Path,
    src: &Source,
) -> Result<Vec<CreationTemplateRule>, ConfigError> {
    let mut out: Vec<CreationTemplateRule> = Vec::new();
    for (i, entry) in raw.into_iter().enumerate() {
        let entry = entry.into_inner();
        let field = format!("creation_template[{i}]");
        let prefix = &entry.prefix;
        check_prefix(prefix.get_ref())
            .map_err(|m| ConfigError::at(src, prefix.span(), format!("{field}.prefix"), m))?;
        if let Some(j) = out
            .iter()
            .position(|r| prefix_key(&r.prefix) == prefix_key(prefix.get_ref()))
        {
            return Err(ConfigError::at(
                src,
                prefix.span(),
                format!("{field}.prefix"),
                format!(
                    "prefix {:?} is already used by creation_template[{j}] (one template per prefix)",
                    prefix.get_ref()
                ),
            ));
        }
        super::resolve::load_template(
            templates,
            templates_dir,
            &entry.template,
            &format!("{field}.template"),
            src,
        )?;
        let applied_for = match entry.applied_for {
            None => APPLIED_FOR.iter().map(|s| s.to_string()).collect(),
            Some(list) => {
                let span = list.span();
                let list = list.into_inner();
                if list.is_empty() {
                    return Err(ConfigError::at(
                        src,
                        span,
                        format!("{field}.applied_for"),
                        "must list at least one of \"CREATE_ON_PUSH\", \"PULL_THROUGH_CACHE\", \"REPLICATION\" (leave it out for all three)",
                    ));
                }
                let mut values: Vec<String> = Vec::new();
                for v in list {
                    if !APPLIED_FOR.contains(&v.get_ref().as_str()) {
                        return Err(ConfigError::at(
                            src,
                            v.span(),
                            format!("{field}.applied_for"),
                            format!(
                                "unknown value {:?}: expected \"CREATE_ON_PUSH\", \"PULL_THROUGH_CACHE\" or \"REPLICATION\"",
                                v.get_ref()
                            ),
                        ));
                    }
                    if values.contains(v.get_ref()) {
                        return Err(ConfigError::at(
                            src,
                            v.span(),
                            format!("{field}.applied_for"),
                            format!("{:?} is listed twice", v.get_ref()),
                        ));
                    }
                    values.push(v.into_inner());
                }
                values.sort();
                values
            }
        };
        out.push(CreationTemplateRule {
            prefix: entry.prefix.into_inner(),
            template: entry.template.into_inner(),
            applied_for,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_follow_the_ecr_pattern() {
        for ok in [
            "ROOT",
            "root",
            "team-a",
            "team-a/",
            "prod/team-a",
            "a",
            "ecr-public",
            "a.b_c__d--e",
            "docker-hub/library",
        ] {
            assert!(check_prefix(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "/", "Team", "-a", "a-", "a//b", "/a", "a___b", "a..b", "a b", "ROOT/", "a/*",
        ] {
            assert!(check_prefix(bad).is_err(), "{bad}");
        }
        assert!(check_prefix(&"a".repeat(256)).is_ok());
        assert!(check_prefix(&"a".repeat(257)).is_err());
        assert_eq!(prefix_key("team-a/"), "team-a");
        assert_eq!(prefix_key("ROOT"), "ROOT");
    }

    const POLICY: &str = r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":7},"action":{"type":"expire"}}]}"#;
    const MATCH: &str = "[[match]]\ntemplate = \"weekly\"\nnames = [\"*\"]\n";

    /// Parses `MATCH` then `entries` in a folder holding `policies/weekly.json`.
    fn parse(entries: &str) -> Result<crate::config::Config, String> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("policies")).unwrap();
        std::fs::write(dir.path().join("policies/weekly.json"), POLICY).unwrap();
        std::fs::write(dir.path().join("policies/daily.json"), POLICY).unwrap();
        let path = dir.path().join("ecr-fleet.toml");
        std::fs::write(&path, format!("{MATCH}{entries}")).unwrap();
        crate::config::Config::load(&path).map_err(|e| {
            let e = e.to_string();
            assert!(e.contains("ecr-fleet.toml:") && !e.contains('\n'), "{e}");
            e
        })
    }

    #[test]
    fn entries_resolve_with_defaults_and_their_templates() {
        let c = parse(
            "[[creation_template]]\nprefix = \"ROOT\"\ntemplate = \"weekly\"\n\
             [[creation_template]]\nprefix = \"team-a\"\ntemplate = \"daily\"\n\
             applied_for = [\"REPLICATION\", \"CREATE_ON_PUSH\"]\n",
        )
        .unwrap();
        assert_eq!(c.creation_templates.len(), 2);
        assert_eq!(c.creation_templates[0].applied_for, APPLIED_FOR);
        assert_eq!(
            c.creation_templates[1].applied_for,
            ["CREATE_ON_PUSH", "REPLICATION"]
        );
        // A template only a creation template uses is loaded and kept.
        assert!(c.templates.get("daily").is_some());
        assert_eq!(c.used_templates(), ["weekly", "daily"]);
    }

    #[test]
    fn bad_entries_name_line_and_field() {
        let entry = |body: &str| format!("[[creation_template]]\n{body}");
        for (body, line, want) in [
            (
                "prefix = \"Team A\"\ntemplate = \"weekly\"\n",
                5,
                "creation_template[0].prefix: \"Team A\" is not a creation template prefix",
            ),
            (
                "prefix = \"ROOT\"\ntemplate = \"nope\"\n",
                6,
                "creation_template[0].template: unknown template \"nope\"",
            ),
            (
                "prefix = \"ROOT\"\ntemplate = \"../x\"\n",
                6,
                "not a template name",
            ),
            (
                "prefix = \"ROOT\"\ntemplate = \"weekly\"\napplied_for = []\n",
                7,
                "creation_template[0].applied_for: must list at least one",
            ),
            (
                "prefix = \"ROOT\"\ntemplate = \"weekly\"\napplied_for = [\"ON_PUSH\"]\n",
                7,
                "creation_template[0].applied_for: unknown value \"ON_PUSH\"",
            ),
            (
                "prefix = \"ROOT\"\ntemplate = \"weekly\"\napplied_for = [\"REPLICATION\", \"REPLICATION\"]\n",
                7,
                "\"REPLICATION\" is listed twice",
            ),
            (
                "prefix = \"ROOT\"\ntemplate = \"weekly\"\nlifecycle = \"x\"\n",
                7,
                "unknown field `lifecycle`",
            ),
            ("template = \"weekly\"\n", 4, "missing field `prefix`"),
            (
                "prefix = \"ROOT\"\ntemplate = \"weekly\"\napplied_for = \"REPLICATION\"\n",
                7,
                "creation_template[0].applied_for",
            ),
        ] {
            let e = parse(&entry(body)).unwrap_err();
            assert!(e.contains(&format!(":{line}:")), "{body}: {e}");
            assert!(e.contains(want), "{body}: {e}");
        }
        // The same prefix twice, with or without ECR's trailing '/'.
        let e = parse(&format!(
            "{}{}",
            entry("prefix = \"team-a\"\ntemplate = \"weekly\"\n"),
            entry("prefix = \"team-a/\"\ntemplate = \"weekly\"\n")
        ))
        .unwrap_err();
        assert!(e.contains(":8:"), "{e}");
        assert!(
            e.contains("creation_template[1].prefix: prefix \"team-a/\" is already used by creation_template[0]"),
            "{e}"
        );
    }
}
