//! The run report (schema_version 1) and its three views: table, JSON and Markdown. Views only
//! render; every number comes from the report.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use comfy_table::presets::UTF8_BORDERS_ONLY;
use comfy_table::{ContentArrangement, Table};
use serde::Serialize;

use crate::plan::{Finding, Impact, Outcome, RepoResult};
use crate::regions::DisabledRegion;
use crate::unused::Unused;

pub const SCHEMA_VERSION: u32 = 1;

/// An account or account-region that could not be visited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub account_id: String,
    pub region: Option<String>,
    pub error: String,
}

/// Something the run worked around in one account-region, that a reader should know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notice {
    pub account_id: String,
    pub region: String,
    pub message: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OutcomeCounts {
    pub create: u64,
    pub update: u64,
    pub unchanged: u64,
    pub excluded: u64,
    pub unmatched: u64,
    pub blocked: u64,
    pub error: u64,
    pub gone: u64,
}

impl OutcomeCounts {
    pub fn get(&self, o: Outcome) -> u64 {
        match o {
            Outcome::Create => self.create,
            Outcome::Update => self.update,
            Outcome::Unchanged => self.unchanged,
            Outcome::Excluded => self.excluded,
            Outcome::Unmatched => self.unmatched,
            Outcome::Blocked => self.blocked,
            Outcome::Error => self.error,
            Outcome::Gone => self.gone,
        }
    }

    fn add(&mut self, o: Outcome) {
        let slot = match o {
            Outcome::Create => &mut self.create,
            Outcome::Update => &mut self.update,
            Outcome::Unchanged => &mut self.unchanged,
            Outcome::Excluded => &mut self.excluded,
            Outcome::Unmatched => &mut self.unmatched,
            Outcome::Blocked => &mut self.blocked,
            Outcome::Error => &mut self.error,
            Outcome::Gone => &mut self.gone,
        };
        *slot += 1;
    }
}

/// Fleet totals of `--images` impact: the per-repository fields, summed.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ImpactSummary {
    pub repositories: u64,
    #[serde(flatten)]
    pub totals: Impact,
    pub price_per_gb_month: f64,
}

/// Fleet totals of the unused-image findings (`audit --images`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct UnusedSummary {
    /// Repositories whose images were examined.
    pub repositories: u64,
    pub unused_after_days: u32,
    #[serde(flatten)]
    pub totals: Unused,
    pub price_per_gb_month: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    pub accounts: u64,
    pub inactive_accounts: u64,
    pub regions: u64,
    /// Regions named explicitly that an account has not enabled (account-region pairs; listed
    /// in the report's `disabled_regions`).
    pub disabled_regions: u64,
    pub repositories: u64,
    pub outcomes: OutcomeCounts,
    pub skipped: u64,
    /// Policies written by this run (`apply`, `restore`).
    pub applied: u64,
    /// Repositories with at least one content finding (`audit`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repositories_with_findings: Option<u64>,
    /// Repositories per finding (`audit`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub findings: BTreeMap<Finding, u64>,
    pub api_calls: BTreeMap<String, u64>,
    /// Attempts beyond the first (throttling and transient errors the SDK retried).
    pub api_retries: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub impact: Option<ImpactSummary>,
    /// The same totals for the repositories' current policies (`audit --images`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_impact: Option<ImpactSummary>,
    /// Unused images of the fleet, not in use (`audit --images`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unused: Option<UnusedSummary>,
    /// The window of the unused-image findings (shown inside `unused`).
    #[serde(skip)]
    pub unused_after_days: u32,
    /// The price the impact totals are computed at (shown inside them).
    #[serde(skip)]
    pub price_per_gb_month: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema_version: u32,
    pub command: String,
    pub started_at: String,
    pub finished_at: String,
    pub summary: Summary,
    pub repositories: Vec<RepoResult>,
    pub skipped: Vec<Skipped>,
    /// Regions named explicitly that an account has not enabled: not visited, not failures.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub disabled_regions: Vec<DisabledRegion>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notices: Vec<Notice>,
    /// Where `apply` recorded the policies it replaced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup_file: Option<String>,
    /// `--shard K/N` of this run; `report merge` joins the shards' reports.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
}

impl Report {
    /// Recompute the outcome counts and totals from the rows.
    pub fn tally(&mut self) {
        let mut counts = OutcomeCounts::default();
        for r in &self.repositories {
            counts.add(r.outcome);
        }
        self.summary.outcomes = counts;
        self.summary.repositories = self.repositories.len() as u64;
        self.summary.skipped = self.skipped.len() as u64;
        self.summary.disabled_regions = self.disabled_regions.len() as u64;
        self.summary.applied = self.repositories.iter().filter(|r| r.applied).count() as u64;
        if self.command == "audit" {
            self.summary.repositories_with_findings = Some(
                self.repositories
                    .iter()
                    .filter(|r| !r.findings.is_empty())
                    .count() as u64,
            );
            let mut by_kind = BTreeMap::new();
            for f in self.repositories.iter().flat_map(|r| &r.findings) {
                *by_kind.entry(*f).or_default() += 1;
            }
            self.summary.findings = by_kind;
        }
        let price = self.summary.price_per_gb_month;
        self.summary.impact = sum_impact(
            self.repositories.iter().filter_map(|r| r.impact.as_deref()),
            price,
        );
        self.summary.current_impact = sum_impact(
            self.repositories
                .iter()
                .filter_map(|r| r.current_impact.as_deref()),
            price,
        );
        let mut unused = UnusedSummary {
            unused_after_days: self.summary.unused_after_days,
            price_per_gb_month: price,
            ..UnusedSummary::default()
        };
        for u in self.repositories.iter().filter_map(|r| r.unused.as_ref()) {
            unused.repositories += 1;
            unused.totals.add(u);
        }
        unused.totals.price(price);
        self.summary.unused = (unused.repositories > 0).then_some(unused);
    }

    /// Something `apply` would still write, or a repository it may not write.
    pub fn has_pending(&self) -> bool {
        self.repositories
            .iter()
            .any(|r| (r.outcome.is_write() || r.outcome == Outcome::Blocked) && !r.applied)
    }

    pub fn has_failures(&self) -> bool {
        !self.skipped.is_empty()
            || self
                .repositories
                .iter()
                .any(|r| r.outcome == Outcome::Error)
    }

    /// Findings that call for action: `exempt` is reported but is an owner's decision, so it
    /// alone does not make `audit` exit 3.
    pub fn has_findings(&self) -> bool {
        self.repositories
            .iter()
            .flat_map(|r| &r.findings)
            .any(|f| *f != Finding::Exempt)
    }

    /// The chosen view of this report.
    pub fn render(&self, output: crate::cli::OutputFormat, show_all: bool) -> String {
        use crate::cli::OutputFormat;
        match output {
            OutputFormat::Table => render_table(self, show_all),
            OutputFormat::Json => self.to_json(),
            OutputFormat::Markdown => render_markdown(self),
            OutputFormat::Junit => crate::junit::render(self),
        }
    }

    pub fn to_json(&self) -> String {
        let mut out = Vec::new();
        self.write_json(&mut out).expect("report serializes");
        String::from_utf8(out).expect("JSON is UTF-8")
    }

    /// Writes the JSON view as it is produced: a report of 100,000 repositories need not
    /// sit in memory twice over as text.
    pub fn write_json(&self, mut out: impl std::io::Write) -> std::io::Result<()> {
        serde_json::to_writer_pretty(&mut out, self)?;
        out.write_all(b"\n")?;
        out.flush()
    }
}

/// Fleet totals of per-repository impacts; `None` when no repository has one.
fn sum_impact<'a>(
    impacts: impl Iterator<Item = &'a Impact>,
    price_per_gb_month: f64,
) -> Option<ImpactSummary> {
    let mut s = ImpactSummary {
        price_per_gb_month,
        ..ImpactSummary::default()
    };
    for i in impacts {
        s.repositories += 1;
        s.totals.add(i);
    }
    s.totals.monthly_saving_usd = (s.totals.monthly_saving_usd * 100.0).round() / 100.0;
    (s.repositories > 0).then_some(s)
}

/// Changed repositories grouped by identical diff, so a fleet-wide change prints its diff once.
fn diff_groups(report: &Report) -> Vec<(Outcome, Option<&str>, &str, Vec<&RepoResult>)> {
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

fn note(r: &RepoResult) -> String {
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
pub fn render_preview_table(
    images: &[ecr_lifecycle::Image],
    actions: &[ecr_lifecycle::ImageAction],
    at: jiff::Timestamp,
) -> String {
    let mut out = String::new();
    if !actions.is_empty() {
        let mut table = Table::new();
        table
            .load_style(UTF8_BORDERS_ONLY)
            .set_header(vec!["DIGEST", "TAGS", "PUSHED", "ACTION", "RULE"]);
        for a in actions {
            let img = &images[a.index];
            table.add_row(vec![
                img.digest.clone(),
                img.tags.join(","),
                img.pushed_at.to_string(),
                format!("{:?}", a.action).to_lowercase(),
                a.rule_priority.to_string(),
            ]);
        }
        let _ = writeln!(out, "{table}");
    }
    let totals = ecr_lifecycle::impact(images, actions);
    let _ = writeln!(
        out,
        "{} of {} images affected: {} expire ({}), {} transition to archive ({}); as of {at}",
        actions.len(),
        images.len(),
        totals.expiring_images,
        human_bytes(totals.expiring_bytes),
        totals.transitioning_images,
        human_bytes(totals.transitioning_bytes)
    );
    out
}

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
fn listed_rows(report: &Report, all: bool) -> impl Iterator<Item = &RepoResult> {
    report
        .repositories
        .iter()
        .filter(move |r| all || r.outcome != Outcome::Unchanged || !r.findings.is_empty())
}

fn summary_line(report: &Report) -> String {
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
    if report.summary.applied > 0 || report.command == "apply" || report.command == "restore" {
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
fn unused_line(u: &UnusedSummary) -> String {
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
fn biggest_unused(report: &Report) -> Vec<&RepoResult> {
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

fn finding_name(f: Finding) -> String {
    serde_json::to_value(f)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn findings_line(report: &Report) -> String {
    report
        .summary
        .findings
        .iter()
        .map(|(f, n)| format!("{} {n}", finding_name(*f)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn api_line(report: &Report) -> String {
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

/// The human view.
pub fn render_table(report: &Report, show_all: bool) -> String {
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
                "  {} {:?} would {} (rule {}): {}",
                p.image_digest, p.image_tags, p.action, p.rule_priority, p.reason
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
        if report.command == "apply" && report.summary.applied > 0 {
            // ECR acts on a new policy within about a day: the window in which undoing helps.
            let _ = writeln!(
                out,
                "ECR applies new policies within about 24 hours; to undo this apply before then: ecr-fleet restore --backup {b} --yes"
            );
        }
    }
    out
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The Markdown view, for tickets, pull requests and CodeBuild reports.
pub fn render_markdown(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# ecr-fleet {}\n", report.command);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn row(repo: &str, outcome: Outcome, diff: Option<&str>) -> RepoResult {
        RepoResult {
            account_id: "111111111111".into(),
            region: "us-east-1".into(),
            repository: repo.into(),
            template: Some("standard".into()),
            outcome,
            applied: false,
            diff: diff.map(Into::into),
            error: (outcome == Outcome::Error)
                .then(|| "ecr:GetLifecyclePolicy: ServerException".to_string()),
            findings: Vec::new(),
            impact: None,
            current_impact: None,
            protected_images: Vec::new(),
            unused: None,
            current_policy: None,
        }
    }

    fn report(command: &str) -> Report {
        let mut r = Report {
            schema_version: SCHEMA_VERSION,
            command: command.into(),
            started_at: "2026-11-22T10:00:00Z".into(),
            finished_at: "2026-11-22T10:00:09Z".into(),
            summary: Summary {
                accounts: 2,
                regions: 1,
                ..Summary::default()
            },
            repositories: vec![
                row("a", Outcome::Create, Some("+x\n")),
                row("b", Outcome::Create, Some("+x\n")),
                row("c", Outcome::Unchanged, None),
                row("d|pipe", Outcome::Error, None),
            ],
            skipped: vec![Skipped {
                account_id: "222222222222".into(),
                region: None,
                error: "cannot assume role: AccessDenied".into(),
            }],
            disabled_regions: Vec::new(),
            notices: Vec::new(),
            backup_file: None,
            shard: None,
        };
        r.summary
            .api_calls
            .insert("ecr:GetLifecyclePolicy".into(), 3);
        r.tally();
        r
    }

    #[test]
    fn json_carries_the_contract_fields() {
        let r = report("plan");
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["schema_version"], 1);
        assert_eq!(v["summary"]["outcomes"]["create"], 2);
        assert_eq!(v["summary"]["outcomes"]["unchanged"], 1);
        assert_eq!(v["summary"]["outcomes"]["error"], 1);
        assert_eq!(v["summary"]["outcomes"]["blocked"], 0);
        assert_eq!(v["summary"]["skipped"], 1);
        assert_eq!(v["summary"]["repositories"], 4);
        assert_eq!(v["summary"]["api_calls"]["ecr:GetLifecyclePolicy"], 3);
        assert_eq!(v["repositories"][0]["applied"], false);
        assert!(v["repositories"][2]["diff"].is_null());
        assert_eq!(v["skipped"][0]["region"], serde_json::Value::Null);
        // Internal fields stay internal.
        assert!(v["repositories"][0].get("current_policy").is_none());
        assert!(r.has_pending());
        assert!(r.has_failures());
    }

    #[test]
    fn table_groups_identical_diffs_and_hides_unchanged() {
        let text = render_table(&report("plan"), false);
        assert_eq!(
            text.matches("create with template standard (2 repositories)")
                .count(),
            1,
            "{text}"
        );
        assert!(!text.contains(" c "), "{text}");
        assert!(
            text.contains("1 unchanged repositories not listed"),
            "{text}"
        );
        assert!(text.contains("AccessDenied"), "{text}");
        assert!(text.contains("API calls: 3"), "{text}");
        let all = render_table(&report("plan"), true);
        assert!(all.contains(" c "), "{all}");
    }

    #[test]
    fn markdown_escapes_cells_and_folds_diffs() {
        let md = render_markdown(&report("plan"));
        assert!(md.starts_with("# ecr-fleet plan\n"), "{md}");
        assert!(md.contains("| create | 2 |"), "{md}");
        assert!(md.contains("`d\\|pipe`"), "{md}");
        assert!(
            md.contains(
                "<details><summary>create with <code>standard</code>: 2 repositories</summary>"
            ),
            "{md}"
        );
        assert!(md.contains("## Skipped"), "{md}");
    }

    #[test]
    fn apply_table_tells_how_to_undo() {
        let mut r = report("apply");
        r.repositories[0].applied = true;
        r.backup_file = Some("ecr-fleet-backup-20261122T100009Z.json".into());
        r.tally();
        let text = render_table(&r, false);
        assert!(
            text.contains(
                "ecr-fleet restore --backup ecr-fleet-backup-20261122T100009Z.json --yes"
            ),
            "{text}"
        );
        assert!(text.contains("1 applied"), "{text}");
    }

    #[test]
    fn unused_images_biggest_saving_first() {
        use crate::unused::UnusedBucket;
        let mut r = report("audit");
        let bucket = |images: u64, gib: u64| UnusedBucket {
            images,
            bytes: gib << 30,
            monthly_cost_usd: gib as f64 * 0.1,
        };
        let unused = |gib: u64| Unused {
            never_pulled: bucket(1, gib),
            not_pulled: UnusedBucket::default(),
            untagged: UnusedBucket::default(),
            total: bucket(1, gib),
            in_use_excluded: 0,
        };
        r.repositories[0].unused = Some(Box::new(unused(1)));
        r.repositories[1].unused = Some(Box::new(unused(5)));
        r.repositories[2].unused = Some(Box::default());
        r.summary.unused_after_days = 90;
        r.summary.price_per_gb_month = 0.1;
        r.disabled_regions.push(DisabledRegion {
            account_id: "111111111111".into(),
            region: "af-south-1".into(),
        });
        r.tally();
        let u = r.summary.unused.as_ref().unwrap();
        assert_eq!((u.repositories, u.totals.total.images), (3, 2));
        assert!((u.totals.total.monthly_cost_usd - 0.6).abs() < 1e-9);
        assert_eq!(r.summary.disabled_regions, 1);
        let md = render_markdown(&r);
        let b = md.find("| `b` | 1 | 5.0 GiB | 0.50 |").expect(&md);
        let a = md.find("| `a` | 1 | 1.0 GiB | 0.10 |").expect(&md);
        assert!(b < a, "{md}");
        assert!(!md.contains("| `c` | 0"), "{md}");
        assert!(md.contains("| 111111111111 | af-south-1 |"), "{md}");
        let text = render_table(&r, false);
        assert!(
            text.contains(
                "unused images (older than 90 days, not in use): 2 (6.0 GiB, 0.60 USD/month)"
            ),
            "{text}"
        );
        assert!(text.contains("1 region(s) not enabled"), "{text}");
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["summary"]["unused"]["total"]["images"], 2);
        assert_eq!(v["summary"]["unused"]["unused_after_days"], 90);
        assert_eq!(v["disabled_regions"][0]["region"], "af-south-1");
    }

    #[test]
    fn human_bytes_units() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
    }
}
