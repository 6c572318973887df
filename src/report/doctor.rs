//! The views of `doctor`: a table with one row per check, each failure again below it with its
//! fix, and a versioned JSON document.

use std::fmt::Write as _;

use comfy_table::presets::UTF8_BORDERS_ONLY;
use comfy_table::{ContentArrangement, Table};
use serde::Serialize;

use crate::model::{Check, CheckStatus};

/// Version of the JSON document of `doctor --output json`.
pub const DOCTOR_SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DoctorSummary {
    pub checks: usize,
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
    /// Accounts with at least one failed check.
    pub accounts_failing: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct DoctorReport {
    pub schema_version: u32,
    pub started_at: String,
    pub finished_at: String,
    pub write_access: bool,
    pub checks: Vec<Check>,
    pub summary: DoctorSummary,
}

impl DoctorReport {
    pub fn new(checks: Vec<Check>, write_access: bool) -> DoctorReport {
        let count = |s: CheckStatus| checks.iter().filter(|c| c.status == s).count();
        let mut failing: Vec<&str> = checks
            .iter()
            .filter(|c| c.status == CheckStatus::Fail)
            .filter_map(|c| c.account_id.as_deref())
            .collect();
        failing.sort_unstable();
        failing.dedup();
        let summary = DoctorSummary {
            checks: checks.len(),
            passed: count(CheckStatus::Pass),
            failed: count(CheckStatus::Fail),
            skipped: count(CheckStatus::Skip),
            accounts_failing: failing.len(),
        };
        DoctorReport {
            schema_version: DOCTOR_SCHEMA_VERSION,
            started_at: String::new(),
            finished_at: String::new(),
            write_access,
            checks,
            summary,
        }
    }

    pub fn failed(&self) -> bool {
        self.summary.failed > 0
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("the doctor report serializes") + "\n"
    }
}

fn or_dash(value: Option<&str>) -> &str {
    value.unwrap_or("-")
}

/// Notes longer than this are cut in the table; failures are printed whole below it.
const NOTE_WIDTH: usize = 72;

fn shortened(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    if line.chars().count() <= NOTE_WIDTH && line.len() == text.len() {
        return text.to_string();
    }
    let cut: String = line.chars().take(NOTE_WIDTH - 1).collect();
    format!("{cut}…")
}

/// One line per failure: where, what, why, and the fix.
pub fn failure_line(c: &Check) -> String {
    format!(
        "FAIL {} {} {}: {}\n  fix: {}",
        or_dash(c.account_id.as_deref()),
        or_dash(c.region.as_deref()),
        c.action,
        or_dash(c.error.as_deref()),
        or_dash(c.fix.as_deref())
    )
}

pub fn render_table(report: &DoctorReport) -> String {
    let mut table = Table::new();
    table
        .load_style(UTF8_BORDERS_ONLY)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(vec![
            "STATUS", "CHECK", "ACCOUNT", "REGION", "ACTION", "NOTE",
        ]);
    for c in &report.checks {
        let note = match c.status {
            CheckStatus::Fail => c.error.as_deref(),
            _ => c.detail.as_deref(),
        };
        table.add_row(vec![
            c.status.as_str().to_uppercase(),
            c.check.clone(),
            or_dash(c.account_id.as_deref()).to_string(),
            or_dash(c.region.as_deref()).to_string(),
            c.action.clone(),
            shortened(or_dash(note)),
        ]);
    }
    let mut out = format!("{table}\n");
    let failures: Vec<&Check> = report
        .checks
        .iter()
        .filter(|c| c.status == CheckStatus::Fail)
        .collect();
    if !failures.is_empty() {
        let _ = writeln!(out, "\nfailures:");
        for c in failures {
            let _ = writeln!(out, "{}", failure_line(c));
        }
    }
    let s = &report.summary;
    let _ = writeln!(
        out,
        "\n{} check(s): {} passed, {} failed, {} skipped{}",
        s.checks,
        s.passed,
        s.failed,
        s.skipped,
        if s.failed == 0 {
            ": a run has what it needs"
        } else {
            ""
        }
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_name_account_region_action_and_fix() {
        let checks = vec![
            Check::new("credentials", "sts:GetCallerIdentity", CheckStatus::Pass)
                .detail("caller arn:aws:iam::111111111111:user/me"),
            Check::new("read", "ecr:GetLifecyclePolicy", CheckStatus::Pass)
                .at("222222222222", Some("eu-west-1"))
                .failed("AccessDeniedException: no", "add ecr:GetLifecyclePolicy"),
        ];
        let report = DoctorReport::new(checks, false);
        assert!(report.failed());
        assert_eq!(report.summary.accounts_failing, 1);
        let text = render_table(&report);
        assert!(text.contains(
            "FAIL 222222222222 eu-west-1 ecr:GetLifecyclePolicy: AccessDeniedException: no\n  fix: add ecr:GetLifecyclePolicy"
        ), "{text}");
        assert!(
            text.contains("2 check(s): 1 passed, 1 failed, 0 skipped"),
            "{text}"
        );
        let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(json["schema_version"], 1);
        assert_eq!(json["checks"][1]["status"], "fail");
        assert_eq!(json["checks"][1]["region"], "eu-west-1");
        assert_eq!(json["summary"]["failed"], 1);
    }
}
