//! The HTML view (`--output html`, `--html FILE`): one self-contained page to open in a
//! browser, offline or from an S3 link. Inline CSS and SVG only: no script, and no font, image
//! or link from another host. Every string from AWS or the config goes through [`Esc`].
//!
//! The numbers are the report's: the summary as it stands, and per account or per finding
//! the sums of the rows' fields (priced as the fleet totals are).

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use super::text::{finding_name, human_bytes, note};
use super::{Command, Report};
use crate::model::{Finding, Outcome, RepoResult, Unused};

/// Accounts drawn in a chart; the others are counted below it.
const MAX_CHART_ACCOUNTS: usize = 40;
/// Rows of the attention table; the JSON report has them all.
const MAX_ROWS: usize = 500;

/// A string from AWS or the config, escaped for HTML text and attribute values.
struct Esc<'a>(&'a str);

impl fmt::Display for Esc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            match c {
                '&' => f.write_str("&amp;")?,
                '<' => f.write_str("&lt;")?,
                '>' => f.write_str("&gt;")?,
                '"' => f.write_str("&quot;")?,
                '\'' => f.write_str("&#39;")?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

fn colour(o: Outcome) -> &'static str {
    match o {
        Outcome::Create => "#2f6fde",
        Outcome::Update => "#e39a1b",
        Outcome::Unchanged => "#3a9d5d",
        Outcome::Excluded => "#a3acb9",
        Outcome::Unmatched => "#d3d8df",
        Outcome::Blocked => "#8a4fd8",
        Outcome::Error => "#d64545",
        Outcome::Gone => "#5c6773",
    }
}

const STYLE: &str = "\
*{box-sizing:border-box}
body{margin:0;background:#f4f6f9;color:#1f2733;font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif}
main{max-width:1120px;margin:0 auto;padding:24px 28px 40px}
h1{font-size:22px;margin:0 0 2px}
h2{font-size:16px;margin:0 0 12px}
h3{font-size:14px;margin:16px 0 8px}
svg{max-width:100%;height:auto;display:block}
.meta{color:#5c6773;margin:0 0 16px}
section{background:#fff;border:1px solid #dde2e8;border-radius:8px;padding:18px 20px;margin:0 0 16px}
.verdict{padding:10px 14px;border-radius:6px;margin:0 0 16px;font-weight:600}
.ok{background:#e6f4ea;color:#1e6b3a}.warn{background:#fff4e0;color:#8a5400}.bad{background:#fde8e8;color:#9b1c1c}
dl.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(140px,1fr));gap:10px;margin:0 0 14px}
dl.cards div{background:#f7f9fb;border:1px solid #e3e7ec;border-radius:6px;padding:8px 12px}
dt{color:#5c6773;font-size:12px}dd{margin:0;font-size:20px;font-weight:600}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid #e8ebef;vertical-align:top}
th{font-size:12px;color:#5c6773;font-weight:600}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
table.counts td{font-size:16px;font-weight:600}
code,pre{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
pre{background:#f7f9fb;border:1px solid #e3e7ec;border-radius:4px;padding:8px;overflow-x:auto;margin:6px 0 0}
.add{color:#1e6b3a}.del{color:#9b1c1c}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-size:12px;font-weight:600}
.sw{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:5px}
.legend{display:flex;flex-wrap:wrap;gap:14px;margin:0 0 8px;font-size:12px;color:#3d4653}
.note{color:#5c6773;font-size:12px;margin:8px 0 0}
.wrap{overflow-wrap:anywhere}
td.id{white-space:nowrap}
svg text{font:12px system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;fill:#1f2733}
summary{cursor:pointer;color:#2f6fde}
";

/// The HTML document of `report`.
pub fn render(report: &Report) -> String {
    let mut out = String::with_capacity(32 * 1024);
    let command = report.command.as_str();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>ecr-fleet {command} {}</title><style>{STYLE}</style></head><body><main>\n\
         <h1>ecr-fleet {command}</h1><p class=\"meta\">{} to {}{}{}</p>\n",
        Esc(&report.started_at),
        Esc(&report.started_at),
        Esc(&report.finished_at),
        duration(report).map_or(String::new(), |d| format!(" ({d})")),
        report
            .shard
            .as_deref()
            .map_or(String::new(), |s| format!(", shard {}", Esc(s))),
    );
    verdict(&mut out, report);
    summary(&mut out, report);
    outcomes_chart(&mut out, report);
    savings(&mut out, report);
    attention(&mut out, report);
    // Extension point, creation templates (release 0.3): once the report carries
    // `creation_templates`, their section goes here, shaped like `summary` and `attention`:
    // the counts per outcome (ids `template-<outcome>`), the rows other than `unchanged`
    // (errors first, `unmanaged` last), and the account-regions no template covers.
    other_records(&mut out, report);
    out.push_str("</main></body></html>\n");
    out
}

fn duration(report: &Report) -> Option<String> {
    let s = report.elapsed()?.as_secs();
    Some(match s {
        0..60 => format!("{s} s"),
        _ => format!("{} min {} s", s / 60, s % 60),
    })
}

/// A repository a reader should look at: a change, a refusal, a failure or a finding.
fn needs_attention(r: &RepoResult) -> bool {
    matches!(
        r.outcome,
        Outcome::Create | Outcome::Update | Outcome::Blocked | Outcome::Error
    ) || !r.findings.is_empty()
}

fn verdict(out: &mut String, report: &Report) {
    let s = &report.summary;
    let mut parts = Vec::new();
    if s.outcomes.error > 0 {
        parts.push(format!("{} repositories with an error", s.outcomes.error));
    }
    if s.skipped > 0 {
        parts.push(format!("{} skipped target(s)", s.skipped));
    }
    let pending = s.outcomes.create + s.outcomes.update;
    if report.has_pending() && pending > 0 {
        parts.push(if report.command.is_read_only() {
            format!("{pending} repositories differ from their template")
        } else {
            format!("{pending} repositories not written")
        });
    }
    if s.outcomes.blocked > 0 {
        parts.push(format!(
            "{} blocked by the safety settings",
            s.outcomes.blocked
        ));
    }
    if report.has_findings() {
        parts.push(format!(
            "findings in {} repositories",
            s.repositories_with_findings.unwrap_or(0)
        ));
    }
    let class = if report.has_failures() {
        "bad"
    } else if parts.is_empty() {
        parts.push("Every repository is as its template says".to_string());
        "ok"
    } else {
        "warn"
    };
    let _ = writeln!(
        out,
        "<p class=\"verdict {class}\">{}.</p>",
        parts.join(" &middot; ")
    );
}

fn card(out: &mut String, id: &str, label: &str, value: impl fmt::Display) {
    let _ = write!(
        out,
        "<div><dt>{label}</dt><dd id=\"{id}\">{value}</dd></div>"
    );
}

fn summary(out: &mut String, report: &Report) {
    let s = &report.summary;
    out.push_str("<section><h2>Summary</h2><dl class=\"cards\">");
    card(out, "accounts", "Accounts", s.accounts);
    card(out, "regions", "Regions", s.regions);
    card(out, "repositories", "Repositories", s.repositories);
    card(out, "skipped", "Skipped targets", s.skipped);
    if s.applied > 0 || !report.command.is_read_only() {
        card(out, "applied", "Policies written", s.applied);
    }
    if let Some(n) = s.repositories_with_findings {
        card(out, "with-findings", "With findings", n);
    }
    if s.inactive_accounts > 0 {
        card(out, "inactive", "Inactive accounts", s.inactive_accounts);
    }
    let calls: u64 = s.api_calls.values().sum();
    card(out, "api-calls", "API calls", calls);
    if let Some(i) = &s.impact {
        card(
            out,
            "saving",
            "Template saving, USD/month",
            format_args!("{:.2}", i.totals.monthly_saving_usd),
        );
    }
    if let Some(u) = &s.unused {
        card(
            out,
            "unused-cost",
            "Unused images, USD/month",
            format_args!("{:.2}", u.totals.total.monthly_cost_usd),
        );
    }
    out.push_str("</dl>\n<table class=\"counts\"><tr>");
    for o in Outcome::ALL {
        let _ = write!(
            out,
            "<th><span class=\"sw\" style=\"background:{}\"></span>{}</th>",
            colour(o),
            o.as_str()
        );
    }
    out.push_str("</tr><tr>");
    for o in Outcome::ALL {
        let _ = write!(
            out,
            "<td id=\"outcome-{}\">{}</td>",
            o.as_str(),
            s.outcomes.get(o)
        );
    }
    out.push_str("</tr></table>\n");
    if !s.findings.is_empty() {
        out.push_str("<p class=\"note\">Findings (repositories): ");
        let parts: Vec<String> = s
            .findings
            .iter()
            .map(|(f, n)| {
                let name = finding_name(*f);
                format!("{name} <b id=\"finding-{name}\">{n}</b>")
            })
            .collect();
        out.push_str(&parts.join(", "));
        out.push_str("</p>\n");
    }
    out.push_str("</section>\n");
}

/// A horizontal bar chart: one row per label, one bar per series (`stacked`: one bar of
/// segments). Each bar has a `<title>` for screen readers and tooltips.
struct Chart<'a> {
    title: &'a str,
    series: &'a [(&'a str, &'a str)],
    rows: Vec<(String, Vec<f64>)>,
    stacked: bool,
    value: fn(f64) -> String,
}

impl Chart<'_> {
    fn render(&self, out: &mut String) {
        const WIDTH: f64 = 820.0;
        // Wide enough for the longest label at 12px, within reason.
        let longest = self.rows.iter().map(|(l, _)| l.chars().count()).max();
        let label_w = (longest.unwrap_or(0) as f64 * 7.0 + 14.0).clamp(100.0, 260.0);
        let bar = WIDTH - label_w - 100.0;
        let bars = if self.stacked { 1 } else { self.series.len() };
        let row_h = 10.0 + 14.0 * bars as f64;
        let extent = |v: &[f64]| -> f64 {
            if self.stacked {
                v.iter().sum()
            } else {
                v.iter().copied().fold(0.0, f64::max)
            }
        };
        let max = self.rows.iter().map(|(_, v)| extent(v)).fold(0.0, f64::max);
        let scale = if max > 0.0 { bar / max } else { 0.0 };
        let height = row_h * self.rows.len() as f64 + 4.0;
        out.push_str("<div class=\"legend\">");
        for (name, colour) in self.series.iter().filter(|_| self.series.len() > 1) {
            let _ = write!(
                out,
                "<span><span class=\"sw\" style=\"background:{colour}\"></span>{name}</span>"
            );
        }
        let _ = write!(
            out,
            "</div><svg viewBox=\"0 0 {WIDTH} {height}\" width=\"{WIDTH}\" height=\"{height}\" role=\"img\" \
             xmlns=\"http://www.w3.org/2000/svg\"><title>{}</title>",
            self.title
        );
        for (i, (label, values)) in self.rows.iter().enumerate() {
            let top = 5.0 + row_h * i as f64;
            let _ = write!(
                out,
                "<text x=\"{:.0}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                label_w - 8.0,
                top + row_h / 2.0 - 1.0,
                Esc(label)
            );
            let mut x = label_w;
            for (k, (v, (name, colour))) in values.iter().zip(self.series).enumerate() {
                let y = if self.stacked {
                    top
                } else {
                    top + 14.0 * k as f64
                };
                if !self.stacked {
                    x = label_w;
                }
                let w = v * scale;
                if *v > 0.0 {
                    let _ = write!(
                        out,
                        "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"12\" fill=\"{colour}\"><title>{}: {} {name}</title></rect>",
                        w.max(1.0),
                        Esc(label),
                        (self.value)(*v)
                    );
                }
                x += w;
                if !self.stacked {
                    let _ = write!(
                        out,
                        "<text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                        x + 6.0,
                        y + 10.0,
                        (self.value)(*v)
                    );
                }
            }
            if self.stacked {
                let _ = write!(
                    out,
                    "<text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                    x + 6.0,
                    top + 10.0,
                    (self.value)(extent(values))
                );
            }
        }
        out.push_str("</svg>\n");
    }
}

fn count(v: f64) -> String {
    format!("{v:.0}")
}

fn usd(v: f64) -> String {
    format!("{v:.2} USD")
}

/// Keep the `MAX_CHART_ACCOUNTS` biggest rows; say how many more there are.
fn cap_rows(chart: &mut Chart, out_note: &mut String, what: &str) {
    let more = chart.rows.len().saturating_sub(MAX_CHART_ACCOUNTS);
    if more > 0 {
        chart.rows.truncate(MAX_CHART_ACCOUNTS);
        *out_note = format!(
            "<p class=\"note\">{more} more account(s) {what} not drawn; the summary counts them.</p>\n"
        );
    }
}

fn outcomes_chart(out: &mut String, report: &Report) {
    let mut per_account: BTreeMap<&str, [u64; 8]> = BTreeMap::new();
    for r in &report.repositories {
        per_account.entry(&r.account_id).or_default()[r.outcome as usize] += 1;
    }
    if per_account.is_empty() {
        return;
    }
    let attention = |c: &[u64; 8]| {
        [
            Outcome::Create,
            Outcome::Update,
            Outcome::Blocked,
            Outcome::Error,
        ]
        .iter()
        .map(|o| c[*o as usize])
        .sum::<u64>()
    };
    let mut accounts: Vec<(&str, [u64; 8])> = per_account.into_iter().collect();
    accounts.sort_by(|a, b| {
        (attention(&b.1), b.1.iter().sum::<u64>())
            .cmp(&(attention(&a.1), a.1.iter().sum::<u64>()))
            .then(a.0.cmp(b.0))
    });
    let series: Vec<(&str, &str)> = Outcome::ALL.map(|o| (o.as_str(), colour(o))).to_vec();
    let mut chart = Chart {
        title: "Repositories per account by outcome",
        series: &series,
        rows: accounts
            .iter()
            .map(|(a, c)| (a.to_string(), c.iter().map(|n| *n as f64).collect()))
            .collect(),
        stacked: true,
        value: count,
    };
    let mut note = String::new();
    cap_rows(&mut chart, &mut note, "with fewer changes");
    out.push_str(
        "<section><h2>Outcomes per account</h2>\
         <p class=\"note\">Accounts with the most repositories needing attention first.</p>",
    );
    chart.render(out);
    out.push_str(&note);
    out.push_str("</section>\n");
}

/// `--images`: what the templates would save and what unused images cost, per account and
/// (audit) per finding.
fn savings(out: &mut String, report: &Report) {
    let s = &report.summary;
    if s.impact.is_none() && s.unused.is_none() {
        return;
    }
    let price = s
        .unused
        .as_ref()
        .map(|u| u.price_per_gb_month)
        .or(s.impact.as_ref().map(|i| i.price_per_gb_month))
        .unwrap_or(0.0);
    let mut per_account: BTreeMap<&str, (f64, Unused)> = BTreeMap::new();
    for r in &report.repositories {
        let entry = per_account.entry(&r.account_id).or_default();
        if let Some(i) = &r.impact {
            entry.0 += i.monthly_saving_usd;
        }
        if let Some(u) = &r.unused {
            entry.1.add(u);
        }
    }
    let mut rows: Vec<(String, Vec<f64>)> = per_account
        .into_iter()
        .map(|(a, (saving, mut unused))| {
            unused.price(price);
            let saving = (saving * 100.0).round() / 100.0;
            (a.to_string(), vec![saving, unused.total.monthly_cost_usd])
        })
        .filter(|(_, v)| v.iter().any(|x| *x > 0.0))
        .collect();
    rows.sort_by(|a, b| {
        let key = |r: &(String, Vec<f64>)| r.1[0].max(r.1[1]);
        key(b).total_cmp(&key(a)).then(a.0.cmp(&b.0))
    });
    out.push_str("<section><h2>Monthly savings</h2>");
    let _ = write!(
        out,
        "<p class=\"note\">At {price} USD per GB-month. Template saving: the bytes the \
         configured templates would expire now. Unused images: images older than the unused \
         window and not in use; the two overlap.</p>"
    );
    if let Some(u) = &s.unused {
        let _ = write!(
            out,
            "<p class=\"note\">Unused images: {} ({}) in {} repositories, older than {} days.</p>",
            u.totals.total.images,
            human_bytes(u.totals.total.bytes),
            u.repositories,
            u.unused_after_days
        );
    }
    if rows.is_empty() {
        out.push_str("<p>No saving found.</p>");
    } else {
        let mut chart = Chart {
            title: "Monthly savings per account, USD",
            series: &[("template saving", "#2f6fde"), ("unused images", "#e39a1b")],
            rows,
            stacked: false,
            value: usd,
        };
        let mut note = String::new();
        cap_rows(&mut chart, &mut note, "with smaller savings");
        out.push_str("<h3>Per account</h3>");
        chart.render(out);
        out.push_str(&note);
    }
    if report.command == Command::Audit && !s.findings.is_empty() {
        let rows: Vec<(String, Vec<f64>)> = s
            .findings
            .iter()
            .map(|(f, n)| {
                let value = finding_saving(report, *f);
                (format!("{} ({n})", finding_name(*f)), vec![value])
            })
            .collect();
        out.push_str(
            "<h3>Per finding</h3><p class=\"note\">For the unused findings, what those images \
             cost; for the others, what the templates would save in the repositories with that \
             finding. In brackets: repositories.</p>",
        );
        Chart {
            title: "Monthly savings per finding, USD",
            series: &[("per month", "#2f6fde")],
            rows,
            stacked: false,
            value: usd,
        }
        .render(out);
    }
    out.push_str("</section>\n");
}

/// The saving a finding stands for: the fleet's unused bucket for the unused findings, else
/// the template saving of the repositories that have it.
fn finding_saving(report: &Report, f: Finding) -> f64 {
    let unused = report.summary.unused.as_ref().map(|u| &u.totals);
    match (f, unused) {
        (Finding::UnusedNeverPulled, Some(u)) => u.never_pulled.monthly_cost_usd,
        (Finding::UnusedNotPulled, Some(u)) => u.not_pulled.monthly_cost_usd,
        (Finding::UnusedUntagged, Some(u)) => u.untagged.monthly_cost_usd,
        _ => {
            let sum: f64 = report
                .repositories
                .iter()
                .filter(|r| r.findings.contains(&f))
                .filter_map(|r| r.impact.as_ref())
                .map(|i| i.monthly_saving_usd)
                .sum();
            (sum * 100.0).round() / 100.0
        }
    }
}

fn rank(r: &RepoResult) -> u8 {
    match r.outcome {
        Outcome::Error => 0,
        Outcome::Blocked => 1,
        Outcome::Update => 2,
        Outcome::Create => 3,
        _ => 4,
    }
}

fn attention(out: &mut String, report: &Report) {
    let mut rows: Vec<&RepoResult> = report
        .repositories
        .iter()
        .filter(|r| needs_attention(r))
        .collect();
    rows.sort_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| a.key().cmp(&b.key())));
    let _ = write!(
        out,
        "<section><h2>Repositories that need attention (<span id=\"attention\">{}</span>)</h2>",
        rows.len()
    );
    if rows.is_empty() {
        out.push_str("<p>None.</p></section>\n");
        return;
    }
    out.push_str(
        "<table><tr><th>account</th><th>region</th><th>repository</th><th>template</th>\
         <th>outcome</th><th>note</th></tr>\n",
    );
    for r in rows.iter().take(MAX_ROWS) {
        let _ = write!(
            out,
            "<tr><td class=\"id\">{}</td><td class=\"id\">{}</td><td class=\"wrap\"><code>{}</code></td><td>{}</td>\
             <td><span class=\"badge\" style=\"background:{}\">{}</span></td><td class=\"wrap\">{}",
            Esc(&r.account_id),
            Esc(&r.region),
            Esc(&r.repository),
            Esc(r.template.as_deref().unwrap_or("-")),
            colour(r.outcome),
            r.outcome.as_str(),
            Esc(&note(r)),
        );
        if let Some(diff) = r.diff.as_deref() {
            diff_details(out, diff);
        }
        out.push_str("</td></tr>\n");
    }
    out.push_str("</table>");
    if rows.len() > MAX_ROWS {
        let _ = write!(
            out,
            "<p class=\"note\">{} more in the JSON report.</p>",
            rows.len() - MAX_ROWS
        );
    }
    out.push_str("</section>\n");
}

fn diff_details(out: &mut String, diff: &str) {
    let _ = write!(
        out,
        "<details><summary>diff, {} line(s)</summary><pre>",
        diff.lines().count()
    );
    for line in diff.lines() {
        let class = match line.as_bytes().first() {
            Some(b'+') => " class=\"add\"",
            Some(b'-') => " class=\"del\"",
            _ => "",
        };
        let _ = writeln!(out, "<span{class}>{}</span>", Esc(line));
    }
    out.push_str("</pre></details>");
}

/// Skipped targets, regions not enabled, notices, API calls and the journal.
fn other_records(out: &mut String, report: &Report) {
    if !report.skipped.is_empty() {
        out.push_str(
            "<section><h2>Skipped targets</h2><table><tr><th>account</th><th>region</th>\
             <th>error</th></tr>\n",
        );
        for s in &report.skipped {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td class=\"wrap\">{}</td></tr>",
                Esc(&s.account_id),
                Esc(s.region.as_deref().unwrap_or("all regions")),
                Esc(&s.error)
            );
        }
        out.push_str("</table></section>\n");
    }
    if !report.disabled_regions.is_empty() || !report.notices.is_empty() {
        out.push_str("<section><h2>Notices</h2><table><tr><th>account</th><th>region</th><th>notice</th></tr>\n");
        for d in &report.disabled_regions {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>region not enabled: not visited</td></tr>",
                Esc(&d.account_id),
                Esc(&d.region)
            );
        }
        for n in &report.notices {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td class=\"wrap\">{}</td></tr>",
                Esc(&n.account_id),
                Esc(&n.region),
                Esc(&n.message)
            );
        }
        out.push_str("</table></section>\n");
    }
    let s = &report.summary;
    let calls: u64 = s.api_calls.values().sum();
    let _ = write!(
        out,
        "<section><details><summary>API calls: {calls}, retries: {}</summary><table>\
         <tr><th>call</th><th class=\"n\">count</th></tr>",
        s.api_retries
    );
    for (name, n) in &s.api_calls {
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"n\">{n}</td></tr>",
            Esc(name)
        );
    }
    out.push_str("</table></details>");
    if let Some(b) = &report.backup_file {
        let _ = write!(
            out,
            "<p class=\"note\">Journal of this run's writes: <code>{}</code></p>",
            Esc(b)
        );
    }
    let _ = writeln!(
        out,
        "<p class=\"note\">Report schema version {}.</p></section>",
        report.schema_version
    );
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::model::{Impact, Skipped, UnusedBucket};
    use crate::report::{Summary, SCHEMA_VERSION};

    const HOSTILE: &str = "evil/<script>alert(\"x'&y\")</script>";

    fn row(account: &str, repo: &str, outcome: Outcome) -> RepoResult {
        let mut r = RepoResult::new(account, "us-east-1", repo, Some("standard".into()));
        r.outcome = outcome;
        if outcome.is_write() {
            r.diff = Some("-old\n+{\"rules\": \"<b>\"}\n".into());
        }
        r
    }

    fn report(command: Command, repositories: Vec<RepoResult>) -> Report {
        let mut api_calls = BTreeMap::new();
        api_calls.insert("ecr:DescribeRepositories".to_string(), 4);
        api_calls.insert("sts:AssumeRole".to_string(), 2);
        let mut r = Report {
            schema_version: SCHEMA_VERSION,
            command,
            started_at: "2026-11-22T10:00:00Z".into(),
            finished_at: "2026-11-22T10:01:05Z".into(),
            summary: Summary {
                accounts: 3,
                regions: 1,
                api_calls,
                unused_after_days: 90,
                price_per_gb_month: 0.1,
                ..Summary::default()
            },
            repositories,
            creation_templates: Vec::new(),
            region_findings: Vec::new(),
            skipped: vec![Skipped {
                account_id: "333333333333".into(),
                region: None,
                error: format!("AccessDenied on {HOSTILE}"),
            }],
            regions: vec!["us-east-1".into()],
            disabled_regions: Vec::new(),
            notices: Vec::new(),
            backup_file: None,
            shard: None,
        };
        r.tally();
        r
    }

    fn plan() -> Report {
        let mut error = row("111111111111", HOSTILE, Outcome::Error);
        error.error = Some(format!("ecr:GetLifecyclePolicy: <{HOSTILE}>"));
        report(
            Command::Plan,
            vec![
                row("111111111111", "a", Outcome::Create),
                row("111111111111", "b", Outcome::Update),
                row("111111111111", "c", Outcome::Unchanged),
                row("222222222222", "d", Outcome::Unchanged),
                row("222222222222", "e", Outcome::Excluded),
                error,
            ],
        )
    }

    /// The number an element with this id states.
    fn stated(html: &str, id: &str) -> String {
        let open = format!("id=\"{id}\">");
        let at = html.find(&open).unwrap_or_else(|| panic!("no {id}")) + open.len();
        html[at..].split('<').next().unwrap().to_string()
    }

    #[test]
    fn hostile_strings_are_escaped_everywhere() {
        let html = render(&plan());
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("alert(\"x"), "{html}");
        assert!(
            html.contains("evil/&lt;script&gt;alert(&quot;x&#39;&amp;y&quot;)&lt;/script&gt;"),
            "{html}"
        );
        // The diff's text is escaped too, inside its folded block.
        assert!(html.contains("&quot;&lt;b&gt;&quot;"), "{html}");
        assert!(html.contains("<details><summary>diff, 2 line(s)"), "{html}");
    }

    #[test]
    fn self_contained_no_script_nothing_from_elsewhere() {
        let html = render(&plan());
        assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
        for banned in [
            "<script", "<link", "<img", "@import", "url(", "src=", "href=",
        ] {
            assert!(!html.contains(banned), "{banned}");
        }
        // The only URL is the SVG namespace, which is a name, not a fetch.
        let urls: Vec<&str> = html
            .match_indices("http")
            .map(|(i, _)| &html[i..i + 26])
            .collect();
        assert!(
            urls.iter().all(|u| *u == "http://www.w3.org/2000/svg"),
            "{urls:?}"
        );
    }

    #[test]
    fn counts_are_the_reports() {
        let r = plan();
        let html = render(&r);
        let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        for o in Outcome::ALL {
            let name = o.as_str();
            assert_eq!(
                stated(&html, &format!("outcome-{name}")),
                json["summary"]["outcomes"][name].to_string(),
                "{name}"
            );
        }
        for key in ["accounts", "regions", "repositories", "skipped"] {
            assert_eq!(
                stated(&html, key),
                json["summary"][key].to_string(),
                "{key}"
            );
        }
        assert_eq!(stated(&html, "api-calls"), "6");
        // create, update and error need attention; error first.
        assert_eq!(stated(&html, "attention"), "3");
        let table = &html[html.find("need attention").unwrap()..];
        assert!(table.find(">error</span>").unwrap() < table.find(">update</span>").unwrap());
        // One bar per account with rows; the skipped account has none.
        assert!(
            html.contains("<title>111111111111: 1 create</title>"),
            "{html}"
        );
        assert!(
            html.contains("<title>222222222222: 1 excluded</title>"),
            "{html}"
        );
        assert!(html.contains("<p class=\"verdict bad\">"), "{html}");
        assert!(html.contains("(1 min 5 s)"), "{html}");
    }

    #[test]
    fn audit_images_shows_savings_per_account_and_finding() {
        let bucket = |images: u64, gib: u64| UnusedBucket {
            images,
            bytes: gib << 30,
            monthly_cost_usd: gib as f64 * 0.1,
        };
        let mut rows = Vec::new();
        for (account, gib) in [("111111111111", 4), ("222222222222", 20)] {
            let mut r = row(account, &format!("r{gib}"), Outcome::Unchanged);
            r.findings = vec![Finding::NoPolicy, Finding::UnusedNeverPulled];
            r.impact = Some(Box::new(Impact {
                monthly_saving_usd: gib as f64 * 0.05,
                ..Impact::default()
            }));
            r.unused = Some(Box::new(Unused {
                never_pulled: bucket(2, gib),
                total: bucket(2, gib),
                ..Unused::default()
            }));
            rows.push(r);
        }
        let r = report(Command::Audit, rows);
        let html = render(&r);
        assert_eq!(stated(&html, "unused-cost"), "2.40");
        assert_eq!(stated(&html, "saving"), "1.20");
        assert_eq!(stated(&html, "finding-no_policy"), "2");
        assert!(
            html.contains("<title>222222222222: 2.00 USD unused images</title>"),
            "{html}"
        );
        assert!(
            html.contains("<title>111111111111: 0.20 USD template saving</title>"),
            "{html}"
        );
        assert!(
            html.contains("<title>unused_never_pulled (2): 2.40 USD per month</title>"),
            "{html}"
        );
        assert!(
            html.contains("<title>no_policy (2): 1.20 USD per month</title>"),
            "{html}"
        );
        // Biggest saving first.
        let savings = &html[html.find("Monthly savings").unwrap()..];
        assert!(
            savings.find(">222222222222</text>").unwrap()
                < savings.find(">111111111111</text>").unwrap()
        );
    }

    #[test]
    fn many_accounts_are_capped_and_counted() {
        let rows = (0..300)
            .map(|i| row(&format!("{:012}", 100_000 + i), "r", Outcome::Unchanged))
            .collect();
        let html = render(&report(Command::Plan, rows));
        assert_eq!(
            html.matches("unchanged</title></rect>").count(),
            MAX_CHART_ACCOUNTS
        );
        assert!(html.contains("260 more account(s)"), "{html}");
        assert!(html.contains("<p class=\"verdict ok\">") || html.contains("verdict bad"));
    }

    /// A demo-sized fleet (12 accounts, 2 regions) for scripts/screenshot-report.sh.
    fn demo(command: Command) -> Report {
        let mut rng = fastrand::Rng::with_seed(7);
        let teams = ["payments", "search", "checkout", "ml", "platform", "web"];
        let mut rows = Vec::new();
        for a in 0..12u64 {
            let account = format!("{}", 210_987_654_300 + a * 1_111);
            for region in ["eu-west-1", "us-east-1"] {
                for i in 0..rng.usize(6..40) {
                    let name = format!("{}/service-{i}", teams[rng.usize(..teams.len())]);
                    let outcome = match rng.u8(..100) {
                        0..40 => Outcome::Unchanged,
                        40..55 => Outcome::Create,
                        55..68 => Outcome::Update,
                        68..78 => Outcome::Excluded,
                        78..90 => Outcome::Unmatched,
                        90..95 => Outcome::Blocked,
                        95..98 => Outcome::Error,
                        _ => Outcome::Gone,
                    };
                    let mut r = RepoResult::new(&account, region, &name, Some("standard".into()));
                    r.outcome = outcome;
                    if matches!(
                        outcome,
                        Outcome::Create | Outcome::Update | Outcome::Blocked
                    ) {
                        r.diff = Some(
                            "   {\n     \"rules\": [\n-      {\"rulePriority\": 1, \"countNumber\": 30}\n+      {\"rulePriority\": 1, \"countNumber\": 14},\n+      {\"rulePriority\": 2, \"tagStatus\": \"untagged\"}\n     ]\n   }\n"
                                .into(),
                        );
                    }
                    if outcome == Outcome::Error {
                        r.error = Some(
                            "ecr:GetLifecyclePolicy: ThrottlingException: Rate exceeded".into(),
                        );
                    }
                    if command == Command::Audit {
                        let gib = rng.u64(0..(4 << 30)) * (a % 4 + 1);
                        let kinds = [
                            Finding::NoPolicy,
                            Finding::NoUntaggedExpiry,
                            Finding::DriftFromTemplate,
                        ];
                        if rng.bool() {
                            r.findings.push(kinds[rng.usize(..3)]);
                        }
                        r.impact = Some(Box::new(Impact {
                            monthly_saving_usd: ((gib >> 20) as f64 / 1024.0 * 0.1 * 100.0).round()
                                / 100.0,
                            expiring_bytes: gib,
                            ..Impact::default()
                        }));
                        let b = UnusedBucket {
                            images: rng.u64(0..30),
                            bytes: gib / 2,
                            monthly_cost_usd: 0.0,
                        };
                        let mut u = Unused {
                            never_pulled: b.clone(),
                            total: b,
                            ..Unused::default()
                        };
                        u.price(0.1);
                        if !u.is_empty() {
                            r.findings.push(Finding::UnusedNeverPulled);
                        }
                        r.unused = Some(Box::new(u));
                    }
                    rows.push(r);
                }
            }
        }
        rows.push({
            let mut r = row("210987654300", HOSTILE, Outcome::Error);
            r.error = Some(format!(
                "ecr:ListTagsForResource: AccessDenied for {HOSTILE}"
            ));
            r
        });
        let mut r = report(command, rows);
        r.summary.accounts = 13;
        r.summary.regions = 2;
        r.tally();
        r
    }

    /// Writes plan.html and audit.html of the demo fleet into $ECR_FLEET_HTML_DEMO_DIR.
    #[test]
    #[ignore = "a helper of scripts/screenshot-report.sh"]
    fn write_demo_pages() {
        let dir = std::env::var("ECR_FLEET_HTML_DEMO_DIR").expect("ECR_FLEET_HTML_DEMO_DIR");
        for command in [Command::Plan, Command::Audit] {
            let path = std::path::Path::new(&dir).join(format!("{}.html", command.as_str()));
            std::fs::write(path, render(&demo(command))).unwrap();
        }
    }
}
