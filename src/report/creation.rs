//! Creation templates in the report: their summary counts, and their part of the table,
//! Markdown and JUnit views.

use std::fmt::Write as _;

use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus};
use serde::{Deserialize, Serialize};

use super::{Command, Report};
use crate::model::{CreationTemplateResult, RegionFinding, TemplateOutcome};

/// `summary.creation_templates`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct TemplateSummary {
    /// Rows of `creation_templates`.
    pub total: u64,
    pub outcomes: TemplateCounts,
    /// Templates written by this run (`apply`, `restore`).
    pub applied: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct TemplateCounts {
    pub create: u64,
    pub update: u64,
    pub unchanged: u64,
    pub unmanaged: u64,
    pub error: u64,
}

impl TemplateCounts {
    pub fn get(&self, o: TemplateOutcome) -> u64 {
        match o {
            TemplateOutcome::Create => self.create,
            TemplateOutcome::Update => self.update,
            TemplateOutcome::Unchanged => self.unchanged,
            TemplateOutcome::Unmanaged => self.unmanaged,
            TemplateOutcome::Error => self.error,
        }
    }
}

impl TemplateSummary {
    pub fn of(rows: &[CreationTemplateResult]) -> TemplateSummary {
        let mut s = TemplateSummary {
            total: rows.len() as u64,
            ..TemplateSummary::default()
        };
        for r in rows {
            let slot = match r.outcome {
                TemplateOutcome::Create => &mut s.outcomes.create,
                TemplateOutcome::Update => &mut s.outcomes.update,
                TemplateOutcome::Unchanged => &mut s.outcomes.unchanged,
                TemplateOutcome::Unmanaged => &mut s.outcomes.unmanaged,
                TemplateOutcome::Error => &mut s.outcomes.error,
            };
            *slot += 1;
            s.applied += u64::from(r.applied);
        }
        s
    }
}

/// The counts in one line: `2 create, 1 unchanged, 1 unmanaged (1 applied)`.
fn counts_line(report: &Report) -> String {
    let s = &report.summary.creation_templates;
    let mut parts: Vec<String> = TemplateOutcome::ALL
        .iter()
        .filter(|o| s.outcomes.get(**o) > 0)
        .map(|o| format!("{} {}", s.outcomes.get(*o), o.as_str()))
        .collect();
    if parts.is_empty() {
        parts.push("none".into());
    }
    let applied = if s.applied > 0 {
        format!(" ({} applied)", s.applied)
    } else {
        String::new()
    };
    format!("{}{applied}", parts.join(", "))
}

/// What a row says beside its outcome: the error, or that apply wrote it.
fn note(r: &CreationTemplateResult) -> String {
    match (&r.error, r.applied) {
        (Some(e), _) => e.clone(),
        (None, true) => "applied".into(),
        (None, false) => String::new(),
    }
}

/// Rows worth listing: everything but `unchanged`.
fn listed(report: &Report) -> impl Iterator<Item = &CreationTemplateResult> {
    report
        .creation_templates
        .iter()
        .filter(|r| r.outcome != TemplateOutcome::Unchanged)
}

/// The table view's section; empty when the run saw no creation template.
pub(super) fn table_section(report: &Report) -> String {
    let mut out = String::new();
    if report.creation_templates.is_empty() && report.region_findings.is_empty() {
        return out;
    }
    let _ = writeln!(out, "\ncreation templates: {}", counts_line(report));
    for r in listed(report) {
        let _ = writeln!(
            out,
            "  {} {} {:<12} {:<10} {} {}",
            r.account_id,
            r.region,
            r.prefix,
            r.outcome.as_str(),
            r.template.as_deref().unwrap_or("-"),
            note(r)
        );
        if !r.applied || report.command.is_read_only() {
            for line in r.diff.as_deref().unwrap_or("").lines() {
                let _ = writeln!(out, "      {line}");
            }
        }
    }
    for f in &report.region_findings {
        let _ = writeln!(
            out,
            "  {} {}: no creation template with a lifecycle policy covers new repositories (no_creation_template)",
            f.account_id, f.region
        );
    }
    out
}

/// The Markdown view's section; empty when the run saw no creation template.
pub(super) fn markdown_section(report: &Report) -> String {
    let mut out = String::new();
    if report.creation_templates.is_empty() && report.region_findings.is_empty() {
        return out;
    }
    let _ = writeln!(out, "## Creation templates\n\n{}.\n", counts_line(report));
    let rows: Vec<&CreationTemplateResult> = listed(report).collect();
    if !rows.is_empty() {
        let _ = writeln!(
            out,
            "| account | region | prefix | template | outcome | note |\n|---|---|---|---|---|---|"
        );
        for r in rows {
            let _ = writeln!(
                out,
                "| {} | {} | `{}` | {} | {} | {} |",
                r.account_id,
                r.region,
                r.prefix,
                r.template.as_deref().unwrap_or("-"),
                r.outcome.as_str(),
                note(r).replace('|', "\\|").replace('\n', " ")
            );
        }
        let _ = writeln!(out);
    }
    if !report.region_findings.is_empty() {
        let _ = writeln!(
            out,
            "No creation template with a lifecycle policy covers new repositories (`no_creation_template`) in:\n"
        );
        for f in &report.region_findings {
            let _ = writeln!(out, "- {} {}", f.account_id, f.region);
        }
        let _ = writeln!(out);
    }
    out
}

/// The JUnit test case of one template, named `creation template <prefix>`: `error` fails
/// always; `create`/`update` fail in `plan` and `audit` (drift) and, in `apply` and
/// `restore`, when not written; `unmanaged` is skipped.
pub(super) fn junit_case(command: Command, r: &CreationTemplateResult) -> TestCase {
    let template = r.template.as_deref().unwrap_or("-");
    let failure = match r.outcome {
        TemplateOutcome::Error => {
            Some(("error", r.error.clone().unwrap_or_else(|| "failed".into())))
        }
        TemplateOutcome::Create | TemplateOutcome::Update if command.is_read_only() => Some((
            r.outcome.as_str(),
            if r.outcome == TemplateOutcome::Create {
                format!("no creation template: one with template {template} would be created")
            } else {
                format!("the creation template differs from template {template}")
            },
        )),
        TemplateOutcome::Create | TemplateOutcome::Update if !r.applied => Some((
            r.outcome.as_str(),
            r.error
                .clone()
                .unwrap_or_else(|| format!("template {template} was not written")),
        )),
        _ => None,
    };
    let status = match failure {
        Some((ty, message)) => {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            s.set_type(ty).set_message(message);
            if let Some(d) = &r.diff {
                s.set_description(d.as_str());
            }
            s
        }
        None if r.outcome == TemplateOutcome::Unmanaged => {
            let mut s = TestCaseStatus::skipped();
            s.set_type("unmanaged")
                .set_message("no [[creation_template]] names this prefix: left alone");
            s
        }
        None => TestCaseStatus::success(),
    };
    let mut case = TestCase::new(format!("creation template {}", r.prefix), status);
    case.set_classname(format!("{}/{}", r.account_id, r.region));
    case
}

/// The JUnit test case of an account-region finding (`audit`): a failure.
pub(super) fn junit_finding_case(f: &RegionFinding) -> TestCase {
    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
    status.set_type("finding").set_message(
        "findings: no_creation_template (no creation template with a lifecycle policy covers new repositories)",
    );
    let mut case = TestCase::new("creation templates", status);
    case.set_classname(format!("{}/{}", f.account_id, f.region));
    case
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Finding;
    use crate::report::{Summary, View, SCHEMA_VERSION};

    fn template(prefix: &str, outcome: TemplateOutcome) -> CreationTemplateResult {
        let mut t = CreationTemplateResult::new(
            "111111111111",
            "us-east-1",
            prefix,
            (outcome != TemplateOutcome::Unmanaged).then(|| "standard".to_string()),
        );
        t.outcome = outcome;
        if outcome.is_write() {
            t.diff = Some("+appliedFor: [REPLICATION]\n".into());
        }
        if outcome == TemplateOutcome::Error {
            t.error = Some("ecr:DescribeRepositoryCreationTemplates: AccessDenied".into());
        }
        t
    }

    fn report(command: Command, rows: Vec<CreationTemplateResult>) -> Report {
        let mut r = Report {
            schema_version: SCHEMA_VERSION,
            command,
            started_at: "2026-11-22T10:00:00Z".into(),
            finished_at: "2026-11-22T10:00:09Z".into(),
            summary: Summary::default(),
            repositories: Vec::new(),
            creation_templates: rows,
            region_findings: Vec::new(),
            regions: Vec::new(),
            skipped: Vec::new(),
            disabled_regions: Vec::new(),
            notices: Vec::new(),
            backup_file: None,
            shard: None,
        };
        r.tally();
        r
    }

    #[test]
    fn json_counts_pending_and_failures() {
        let r = report(
            Command::Plan,
            vec![
                template("ROOT", TemplateOutcome::Create),
                template("ops", TemplateOutcome::Unmanaged),
                template("team-a", TemplateOutcome::Unchanged),
            ],
        );
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        let row = &v["creation_templates"][0];
        for field in [
            "account_id",
            "region",
            "prefix",
            "template",
            "outcome",
            "applied",
            "diff",
            "error",
        ] {
            assert!(row.get(field).is_some(), "{field}: {row}");
        }
        assert!(row.get("current").is_none());
        assert_eq!(
            v["creation_templates"][1]["template"],
            serde_json::Value::Null
        );
        let s = &v["summary"]["creation_templates"];
        assert_eq!(
            (s["total"].as_u64(), s["outcomes"]["create"].as_u64()),
            (Some(3), Some(1))
        );
        assert!(v.get("region_findings").is_none());
        assert!(r.has_pending() && !r.has_failures() && !r.has_findings());
        let mut applied = r.clone();
        applied.command = Command::Apply;
        applied.creation_templates[0].applied = true;
        applied.tally();
        assert!(!applied.has_pending());
        assert_eq!(applied.summary.creation_templates.applied, 1);
        let failed = report(
            Command::Plan,
            vec![template("ROOT", TemplateOutcome::Error)],
        );
        assert!(failed.has_failures());
    }

    #[test]
    fn region_findings_are_counted_and_shown_in_every_view() {
        let mut r = report(
            Command::Audit,
            vec![template("ROOT", TemplateOutcome::Update)],
        );
        r.region_findings.push(RegionFinding {
            account_id: "111111111111".into(),
            region: "us-east-1".into(),
            finding: Finding::NoCreationTemplate,
        });
        r.tally();
        assert_eq!(r.summary.findings[&Finding::NoCreationTemplate], 1);
        assert!(r.has_findings());
        let table = r.render(View::Table, false);
        assert!(table.contains("creation templates: 1 update"), "{table}");
        assert!(table.contains("+appliedFor: [REPLICATION]"), "{table}");
        assert!(table.contains("(no_creation_template)"), "{table}");
        let md = r.render(View::Markdown, false);
        assert!(md.contains("## Creation templates"), "{md}");
        assert!(md.contains("| `ROOT` | standard | update |"), "{md}");
        let xml = r.render(View::Junit, false);
        assert!(xml.contains(r#"name="creation template ROOT""#), "{xml}");
        assert!(xml.contains("the creation template differs"), "{xml}");
        assert!(xml.contains("no_creation_template"), "{xml}");
        // Apply: a written template passes; an unmanaged one is skipped.
        let mut a = report(
            Command::Apply,
            vec![
                template("ROOT", TemplateOutcome::Create),
                template("ops", TemplateOutcome::Unmanaged),
            ],
        );
        a.creation_templates[0].applied = true;
        let xml = a.render(View::Junit, false);
        assert!(!xml.contains("<failure"), "{xml}");
        assert!(xml.contains(r#"type="unmanaged""#), "{xml}");
    }
}
