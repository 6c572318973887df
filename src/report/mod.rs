//! The run report (schema_version 1): the one result model every view renders, and the
//! tally that computes its summary from the rows. The views are the submodules: table,
//! Markdown, JUnit; JSON is the report serialized. Views only render; every number comes
//! from the report.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{DisabledRegion, Finding, Impact, Notice, Outcome, RepoResult, Skipped, Unused};

pub mod doctor;
pub mod junit;
pub mod markdown;
pub mod merge;
pub mod preview;
#[cfg(test)]
mod schema;
pub mod table;
mod text;

pub use text::human_bytes;

pub const SCHEMA_VERSION: u32 = 1;

/// The command a report comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Command {
    Plan,
    Apply,
    Audit,
    Restore,
}

impl Command {
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Plan => "plan",
            Command::Apply => "apply",
            Command::Audit => "audit",
            Command::Restore => "restore",
        }
    }

    /// `plan` and `audit` only read: what they find pending is drift.
    pub fn is_read_only(self) -> bool {
        matches!(self, Command::Plan | Command::Audit)
    }
}

/// The views of a report a command can print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Table,
    Json,
    Markdown,
    Junit,
}

/// Repositories per outcome; every outcome is listed, zero or not.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
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
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct ImpactSummary {
    /// Repositories that have an impact.
    pub repositories: u64,
    #[serde(flatten)]
    pub totals: Impact,
    /// The storage price the estimate used, in USD per GB-month.
    pub price_per_gb_month: f64,
}

/// Fleet totals of the unused-image findings (`audit --images`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct UnusedSummary {
    /// Repositories whose images were examined.
    pub repositories: u64,
    /// The window (`[audit] unused_after_days`).
    pub unused_after_days: u32,
    #[serde(flatten)]
    pub totals: Unused,
    /// The storage price the costs used, in USD per GB-month.
    pub price_per_gb_month: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
/// Run totals. The counts are derived from the rest of the report.
pub struct Summary {
    /// Accounts in scope, including those that were skipped.
    pub accounts: u64,
    /// Accounts left out because their Organizations status is not ACTIVE.
    pub inactive_accounts: u64,
    /// Regions visited: the length of the top-level `regions`.
    pub regions: u64,
    /// Regions named explicitly that an account has not enabled (account-region pairs; listed
    /// in the report's `disabled_regions`).
    #[serde(default)]
    pub disabled_regions: u64,
    /// Number of entries in the top-level `repositories`.
    pub repositories: u64,
    pub outcomes: OutcomeCounts,
    /// Number of entries in the top-level `skipped`.
    pub skipped: u64,
    /// Policies written by this run (`apply`, `restore`).
    #[serde(default)]
    pub applied: u64,
    /// Repositories with at least one content finding (`audit`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repositories_with_findings: Option<u64>,
    /// Repositories per finding (`audit`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub findings: BTreeMap<Finding, u64>,
    /// AWS operations called, keyed service:Operation (e.g. ecr:GetLifecyclePolicy). Retries
    /// are not counted here. `report merge` sums the shards' calls.
    pub api_calls: BTreeMap<String, u64>,
    /// Attempts beyond the first (throttling and transient errors the SDK retried).
    #[serde(default)]
    pub api_retries: u64,
    /// With `--images`: fleet totals of what the templates would do to the images.
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

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Report {
    /// Version of this report shape. Changes that remove or retype a field bump it.
    #[cfg_attr(test, schemars(range(min = 1, max = 1)))]
    pub schema_version: u32,
    /// The subcommand that produced the report.
    pub command: Command,
    /// When the run started: a UTC instant in RFC 3339 form, e.g. 2026-11-22T10:00:00Z.
    #[cfg_attr(test, schemars(extend("format" = "date-time")))]
    pub started_at: String,
    /// When the run finished, in the same form.
    #[cfg_attr(test, schemars(extend("format" = "date-time")))]
    pub finished_at: String,
    pub summary: Summary,
    /// One entry per repository, sorted by account_id, region, then repository.
    pub repositories: Vec<RepoResult>,
    /// Accounts or account-regions that could not be visited. Any entry here makes the run
    /// exit 1.
    pub skipped: Vec<Skipped>,
    /// The regions the run visited, sorted: with `regions = "enabled"`, every region enabled
    /// in any visited account. `summary.regions` counts them; `report merge` joins them.
    #[serde(default)]
    pub regions: Vec<String>,
    /// Regions named explicitly that an account has not enabled: not visited, not failures.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disabled_regions: Vec<DisabledRegion>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notices: Vec<Notice>,
    /// Things the run worked around that a reader should know, per account-region (for
    /// example tags read one repository at a time because the tagging API was unavailable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_file: Option<String>,
    /// The `--shard K/N` of the run (1 <= K <= N). `report merge` joins the reports of the
    /// shards of one run and leaves it out.
    #[cfg_attr(test, schemars(regex(pattern = r"^[1-9][0-9]*/[1-9][0-9]*$")))]
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
        self.regions.sort();
        self.regions.dedup();
        self.summary.regions = self.regions.len() as u64;
        self.summary.disabled_regions = self.disabled_regions.len() as u64;
        self.summary.applied = self.repositories.iter().filter(|r| r.applied).count() as u64;
        if self.command == Command::Audit {
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
    pub fn render(&self, view: View, show_all: bool) -> String {
        match view {
            View::Table => table::render(self, show_all),
            View::Json => self.to_json(),
            View::Markdown => markdown::render(self),
            View::Junit => junit::render(self),
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

#[cfg(test)]
mod tests {
    use super::markdown::render as render_markdown;
    use super::table::render as render_table;
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

    fn report(command: Command) -> Report {
        let mut r = Report {
            schema_version: SCHEMA_VERSION,
            command,
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
            regions: vec!["us-east-1".into()],
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
        let r = report(Command::Plan);
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
        let text = render_table(&report(Command::Plan), false);
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
        let all = render_table(&report(Command::Plan), true);
        assert!(all.contains(" c "), "{all}");
    }

    #[test]
    fn markdown_escapes_cells_and_folds_diffs() {
        let md = render_markdown(&report(Command::Plan));
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
        let mut r = report(Command::Apply);
        r.repositories[0].applied = true;
        r.backup_file = Some("ecr-fleet-journal-20261122T100009Z.jsonl".into());
        r.tally();
        let text = render_table(&r, false);
        assert!(
            text.contains(
                "ecr-fleet restore --backup ecr-fleet-journal-20261122T100009Z.jsonl --yes"
            ),
            "{text}"
        );
        assert!(text.contains("1 applied"), "{text}");
    }

    #[test]
    fn unused_images_biggest_saving_first() {
        use crate::model::UnusedBucket;
        let mut r = report(Command::Audit);
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
