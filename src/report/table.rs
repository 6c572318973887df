//! The table view, for people at a terminal: a summary, grouped diffs, rows needing attention.

use comfy_table::presets::UTF8_BORDERS_ONLY;
use comfy_table::{ContentArrangement, Table};

use std::fmt::Write as _;

use super::text::*;
use super::{Command, Report};
use crate::model::RepoResult;

pub fn render(report: &Report, show_all: bool) -> String {
    let mut out = String::new();
    let rows: Vec<&RepoResult> = listed_rows(report, show_all).collect();
    if !rows.is_empty() {
        let mut table = Table::new();
        table
            .load_style(UTF8_BORDERS_ONLY)
            .set_content_arrangement(ContentArrangement::Disabled)
            .set_header(vec![
                "ACCOUNT",
                "REGION",
                "REPOSITORY",
                "TEMPLATE",
                "OUTCOME",
                "NOTE",
            ]);
        for r in &rows {
            table.add_row(vec![
                r.account_id.clone(),
                r.region.clone(),
                r.repository.clone(),
                r.template.clone().unwrap_or_else(|| "-".into()),
                r.outcome.as_str().to_string(),
                note(r),
            ]);
        }
        let _ = writeln!(out, "{table}");
    }
    for (outcome, template, diff, repos) in diff_groups(report) {
        let _ = writeln!(
            out,
            "\n{} with template {} ({} repositor{}):",
            outcome.as_str(),
            template.unwrap_or("-"),
            repos.len(),
            if repos.len() == 1 { "y" } else { "ies" }
        );
        for r in repos.iter().take(5) {
            let _ = writeln!(out, "  {}/{}/{}", r.account_id, r.region, r.repository);
        }
        if repos.len() > 5 {
            let _ = writeln!(out, "  ... and {} more", repos.len() - 5);
        }
        for line in diff.lines() {
            let _ = writeln!(out, "    {line}");
        }
    }
    for r in report
        .repositories
        .iter()
        .filter(|r| !r.protected_images.is_empty())
    {
        let _ = writeln!(
            out,
            "\nblocked {}/{}/{}:",
            r.account_id, r.region, r.repository
        );
        for p in &r.protected_images {
            let _ = writeln!(
                out,
                "  {} [{}] would {} (rule {}): {}",
                p.image_digest,
                p.image_tags.join(", "),
                p.action,
                p.rule_priority,
                p.reason
            );
        }
    }
    if !report.skipped.is_empty() {
        let _ = writeln!(out, "\nskipped:");
        for s in &report.skipped {
            let _ = writeln!(
                out,
                "  {} {}: {}",
                s.account_id,
                s.region.as_deref().unwrap_or("(all regions)"),
                s.error
            );
        }
    }
    if !report.notices.is_empty() {
        let _ = writeln!(out, "\nnotices:");
        for n in &report.notices {
            let _ = writeln!(out, "  {} {}: {}", n.account_id, n.region, n.message);
        }
    }
    if let Some(i) = &report.summary.impact {
        let _ = writeln!(
            out,
            "\nimpact: {} images ({}) in {} repositories; templates would expire {} ({}) and archive {} ({}); estimated saving {:.2} USD/month at {} USD per GB-month",
            i.totals.images,
            human_bytes(i.totals.bytes),
            i.repositories,
            i.totals.expiring_images,
            human_bytes(i.totals.expiring_bytes),
            i.totals.transitioning_images,
            human_bytes(i.totals.transitioning_bytes),
            i.totals.monthly_saving_usd,
            i.price_per_gb_month
        );
    }
    if let Some(c) = &report.summary.current_impact {
        let _ = writeln!(
            out,
            "current policies would expire {} ({}) and archive {} ({})",
            c.totals.expiring_images,
            human_bytes(c.totals.expiring_bytes),
            c.totals.transitioning_images,
            human_bytes(c.totals.transitioning_bytes)
        );
    }
    if let Some(u) = &report.summary.unused {
        let _ = writeln!(out, "\n{}", unused_line(u));
        for r in biggest_unused(report).iter().take(10) {
            let Some(ru) = &r.unused else { continue };
            let _ = writeln!(
                out,
                "  {:.2} USD/month  {} image(s), {}  {}/{}/{}",
                ru.total.monthly_cost_usd,
                ru.total.images,
                human_bytes(ru.total.bytes),
                r.account_id,
                r.region,
                r.repository
            );
        }
    }
    if !report.disabled_regions.is_empty() {
        let _ = writeln!(out, "\nregions not enabled (not visited):");
        for d in &report.disabled_regions {
            let _ = writeln!(out, "  {} {}", d.account_id, d.region);
        }
    }
    let _ = writeln!(out, "\n{}", summary_line(report));
    if !report.summary.findings.is_empty() {
        let _ = writeln!(out, "findings: {}", findings_line(report));
    }
    let hidden = report.repositories.len() - rows.len();
    if hidden > 0 {
        let _ = writeln!(
            out,
            "({hidden} unchanged repositories not listed; --output json lists every repository)"
        );
    }
    let _ = writeln!(out, "{}", api_line(report));
    if let Some(b) = &report.backup_file {
        let _ = writeln!(out, "journal of this run's writes: {b}");
        if report.command == Command::Apply && report.summary.applied > 0 {
            // ECR acts on a new policy within about a day: the window in which undoing helps.
            let _ = writeln!(
                out,
                "ECR applies new policies within about 24 hours; to undo this apply before then: ecr-fleet restore --backup {b} --yes"
            );
        }
    }
    out
}
