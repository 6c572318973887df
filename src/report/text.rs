//! Pieces the table and Markdown views share: grouped diffs, summary lines, byte counts.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{Report, UnusedSummary};
use crate::model::{Finding, Outcome, RepoResult};

/// Changed repositories grouped by identical diff, so a fleet-wide change prints its diff once.
pub(super) fn diff_groups(report: &Report) -> Vec<(Outcome, Option<&str>, &str, Vec<&RepoResult>)> {
    let mut groups: BTreeMap<(Outcome, Option<&str>, &str), Vec<&RepoResult>> = BTreeMap::new();
    for r in &report.repositories {
        if let (true, Some(diff)) = (
            r.outcome.is_write() || r.outcome == Outcome::Blocked,
            r.diff.as_deref(),
        ) {
            groups
                .entry((r.outcome, r.template.as_deref(), diff))
                .or_default()
                .push(r);
        }
    }
    groups
        .into_iter()
        .map(|((o, t, d), rs)| (o, t, d, rs))
        .collect()
}

pub(super) fn note(r: &RepoResult) -> String {
    if let Some(e) = &r.error {
        return e.clone();
    }
    let mut parts = Vec::new();
    if r.applied {
        parts.push("applied".to_string());
    }
    if !r.protected_images.is_empty() {
        parts.push(format!(
            "{} protected image(s) would be removed",
            r.protected_images.len()
        ));
    }
    if !r.findings.is_empty() {
        parts.push(
            r.findings
                .iter()
                .map(|f| finding_name(*f))
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    if let Some(i) = &r.impact {
        if i.expiring_images + i.transitioning_images > 0 {
            parts.push(format!(
                "would expire {} ({}), archive {}",
                i.expiring_images,
                human_bytes(i.expiring_bytes),
                i.transitioning_images
            ));
        }
    }
    parts.join("; ")
}

/// The table view of `preview`: one row per image acted on, then the totals.
pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Rows a human wants to see: everything but `unchanged` (which the summary counts).
pub(super) fn listed_rows(report: &Report, all: bool) -> impl Iterator<Item = &RepoResult> {
    report
        .repositories
        .iter()
        .filter(move |r| all || r.outcome != Outcome::Unchanged || !r.findings.is_empty())
}

pub(super) fn summary_line(report: &Report) -> String {
    let o = &report.summary.outcomes;
    let mut s = format!(
        "{} repositories in {} account(s) x {} region(s): {} create, {} update, {} unchanged, {} excluded, {} unmatched, {} blocked, {} error, {} gone",
        report.summary.repositories,
        report.summary.accounts,
        report.summary.regions,
        o.create,
        o.update,
        o.unchanged,
        o.excluded,
        o.unmatched,
        o.blocked,
        o.error,
        o.gone
    );
    if report.summary.applied > 0 || !report.command.is_read_only() {
        let _ = write!(s, "; {} applied", report.summary.applied);
    }
    if report.summary.skipped > 0 {
        let _ = write!(s, "; {} skipped target(s)", report.summary.skipped);
    }
    if report.summary.inactive_accounts > 0 {
        let _ = write!(
            s,
            "; {} inactive account(s) left out",
            report.summary.inactive_accounts
        );
    }
    if report.summary.disabled_regions > 0 {
        let _ = write!(
            s,
            "; {} region(s) not enabled",
            report.summary.disabled_regions
        );
    }
    s
}

/// Fleet line of the unused-image findings.
pub(super) fn unused_line(u: &UnusedSummary) -> String {
    let t = &u.totals;
    format!(
        "unused images (older than {} days, not in use): {} ({}, {:.2} USD/month) in {} repositories: never pulled {} ({}), not pulled {} ({}), untagged {} ({}); {} in use left out",
        u.unused_after_days,
        t.total.images,
        human_bytes(t.total.bytes),
        t.total.monthly_cost_usd,
        u.repositories,
        t.never_pulled.images,
        human_bytes(t.never_pulled.bytes),
        t.not_pulled.images,
        human_bytes(t.not_pulled.bytes),
        t.untagged.images,
        human_bytes(t.untagged.bytes),
        t.in_use_excluded
    )
}

/// Repositories with unused images, biggest saving first (ties by name, stable).
pub(super) fn biggest_unused(report: &Report) -> Vec<&RepoResult> {
    let mut rows: Vec<&RepoResult> = report
        .repositories
        .iter()
        .filter(|r| r.unused.as_ref().is_some_and(|u| !u.is_empty()))
        .collect();
    rows.sort_by(|a, b| {
        let bytes = |r: &RepoResult| r.unused.as_ref().map_or(0, |u| u.total.bytes);
        bytes(b).cmp(&bytes(a)).then_with(|| a.key().cmp(&b.key()))
    });
    rows
}

pub(super) fn finding_name(f: Finding) -> String {
    serde_json::to_value(f)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

pub(super) fn findings_line(report: &Report) -> String {
    report
        .summary
        .findings
        .iter()
        .map(|(f, n)| format!("{} {n}", finding_name(*f)))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn api_line(report: &Report) -> String {
    let total: u64 = report.summary.api_calls.values().sum();
    let detail = report
        .summary
        .api_calls
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "API calls: {total} ({detail}); retries: {}",
        report.summary.api_retries
    )
}
