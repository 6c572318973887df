//! The Markdown view, for a pull request or a CI job summary.

use std::fmt::Write as _;

use super::text::*;
use super::Report;
use crate::model::{Outcome, RepoResult};

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The Markdown view, for tickets, pull requests and CodeBuild reports.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# ecr-fleet {}\n", report.command.as_str());
    let _ = writeln!(out, "{} to {}\n", report.started_at, report.finished_at);
    let _ = writeln!(out, "| outcome | repositories |\n|---|---:|");
    for o in Outcome::ALL {
        let _ = writeln!(
            out,
            "| {} | {} |",
            o.as_str(),
            report.summary.outcomes.get(o)
        );
    }
    let _ = writeln!(
        out,
        "\n{} repositories, {} account(s), {} region(s), {} skipped target(s), {} inactive account(s), {} applied.\n",
        report.summary.repositories,
        report.summary.accounts,
        report.summary.regions,
        report.summary.skipped,
        report.summary.inactive_accounts,
        report.summary.applied
    );
    if !report.summary.findings.is_empty() {
        let _ = writeln!(out, "Findings: {}.\n", findings_line(report));
    }
    if let Some(i) = &report.summary.impact {
        let _ = writeln!(
            out,
            "Impact: templates would expire **{}** images ({}) and archive **{}** ({}) of {} images; estimated saving **{:.2} USD/month**.\n",
            i.totals.expiring_images,
            human_bytes(i.totals.expiring_bytes),
            i.totals.transitioning_images,
            human_bytes(i.totals.transitioning_bytes),
            i.totals.images,
            i.totals.monthly_saving_usd
        );
    }
    if let Some(c) = &report.summary.current_impact {
        let _ = writeln!(
            out,
            "Current policies would expire {} images ({}) and archive {} ({}).\n",
            c.totals.expiring_images,
            human_bytes(c.totals.expiring_bytes),
            c.totals.transitioning_images,
            human_bytes(c.totals.transitioning_bytes)
        );
    }
    if let Some(u) = &report.summary.unused {
        let t = &u.totals;
        let _ = writeln!(
            out,
            "## Unused images\n\nImages older than {} days and not in use: **{}** ({}), **{:.2} USD/month** at {} USD per GB-month; {} in use left out.\n",
            u.unused_after_days,
            t.total.images,
            human_bytes(t.total.bytes),
            t.total.monthly_cost_usd,
            u.price_per_gb_month,
            t.in_use_excluded
        );
        let _ = writeln!(
            out,
            "| | images | size | USD/month |\n|---|---:|---:|---:|\n| never pulled | {} | {} | {:.2} |\n| not pulled | {} | {} | {:.2} |\n| untagged | {} | {} | {:.2} |\n",
            t.never_pulled.images,
            human_bytes(t.never_pulled.bytes),
            t.never_pulled.monthly_cost_usd,
            t.not_pulled.images,
            human_bytes(t.not_pulled.bytes),
            t.not_pulled.monthly_cost_usd,
            t.untagged.images,
            human_bytes(t.untagged.bytes),
            t.untagged.monthly_cost_usd
        );
        let biggest = biggest_unused(report);
        if !biggest.is_empty() {
            let _ = writeln!(out, "Biggest savings first:\n\n| account | region | repository | unused images | size | USD/month | never pulled | not pulled | untagged |\n|---|---|---|---:|---:|---:|---:|---:|---:|");
            for r in &biggest {
                let Some(ru) = &r.unused else { continue };
                let _ = writeln!(
                    out,
                    "| {} | {} | `{}` | {} | {} | {:.2} | {} | {} | {} |",
                    r.account_id,
                    r.region,
                    md_escape(&r.repository),
                    ru.total.images,
                    human_bytes(ru.total.bytes),
                    ru.total.monthly_cost_usd,
                    ru.never_pulled.images,
                    ru.not_pulled.images,
                    ru.untagged.images
                );
            }
            let _ = writeln!(out);
        }
    }
    if !report.disabled_regions.is_empty() {
        let _ = writeln!(
            out,
            "## Regions not enabled\n\nNamed in the run but not enabled for the account (not visited, not failures).\n\n| account | region |\n|---|---|"
        );
        for d in &report.disabled_regions {
            let _ = writeln!(out, "| {} | {} |", d.account_id, d.region);
        }
        let _ = writeln!(out);
    }
    let rows: Vec<&RepoResult> = listed_rows(report, false).collect();
    if !rows.is_empty() {
        let _ = writeln!(out, "| account | region | repository | template | outcome | note |\n|---|---|---|---|---|---|");
        for r in rows {
            let _ = writeln!(
                out,
                "| {} | {} | `{}` | {} | {} | {} |",
                r.account_id,
                r.region,
                md_escape(&r.repository),
                r.template.as_deref().unwrap_or("-"),
                r.outcome.as_str(),
                md_escape(&note(r))
            );
        }
        let _ = writeln!(out);
    }
    for (outcome, template, diff, repos) in diff_groups(report) {
        let _ = writeln!(
            out,
            "<details><summary>{} with <code>{}</code>: {} repositor{}</summary>\n\n```diff\n{}```\n\n</details>\n",
            outcome.as_str(),
            template.unwrap_or("-"),
            repos.len(),
            if repos.len() == 1 { "y" } else { "ies" },
            diff
        );
    }
    if !report.skipped.is_empty() {
        let _ = writeln!(
            out,
            "## Skipped\n\n| account | region | error |\n|---|---|---|"
        );
        for s in &report.skipped {
            let _ = writeln!(
                out,
                "| {} | {} | {} |",
                s.account_id,
                s.region.as_deref().unwrap_or("all"),
                md_escape(&s.error)
            );
        }
        let _ = writeln!(out);
    }
    if !report.notices.is_empty() {
        let _ = writeln!(
            out,
            "## Notices\n\n| account | region | notice |\n|---|---|---|"
        );
        for n in &report.notices {
            let _ = writeln!(
                out,
                "| {} | {} | {} |",
                n.account_id,
                n.region,
                md_escape(&n.message)
            );
        }
        let _ = writeln!(out);
    }
    let _ = writeln!(out, "{}", api_line(report));
    if let Some(b) = &report.backup_file {
        let _ = writeln!(out, "\nJournal of this run's writes: `{b}`");
    }
    out
}
