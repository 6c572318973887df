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
use crate::model::{CreationTemplateResult, Finding, Outcome, RepoResult, TemplateOutcome, Unused};

/// Accounts drawn in a chart; the others are counted below it.
mod charts;

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
    charts::outcomes_chart(&mut out, report);
    charts::savings(&mut out, report);
    attention(&mut out, report);
    creation_templates(&mut out, report);
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
    let t = &s.creation_templates.outcomes;
    if t.error > 0 {
        parts.push(format!("{} creation template(s) with an error", t.error));
    }
    if report.has_pending() && t.create + t.update > 0 {
        parts.push(format!(
            "{} creation template(s) to {}",
            t.create + t.update,
            if report.command.is_read_only() {
                "create or update"
            } else {
                "write"
            }
        ));
    }
    if s.outcomes.blocked > 0 {
        parts.push(format!(
            "{} blocked by the safety settings",
            s.outcomes.blocked
        ));
    }
    if report.has_findings() {
        let repos = s.repositories_with_findings.unwrap_or(0);
        if repos > 0 {
            parts.push(format!("findings in {repos} repositories"));
        }
        if !report.region_findings.is_empty() {
            parts.push(format!(
                "{} account-region(s) without a creation template",
                report.region_findings.len()
            ));
        }
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
        out.push_str(
            "<p class=\"note\">Findings (repositories; account-regions for no_creation_template): ",
        );
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

fn rank(r: &RepoResult) -> u8 {
    match r.outcome {
        Outcome::Error => 0,
        Outcome::Blocked => 1,
        Outcome::Update => 2,
        Outcome::Create => 3,
        _ => 4,
    }
}

/// One row of an attention table: who, what, the outcome as a badge, the note and the diff.
struct Row<'a> {
    account: &'a str,
    region: &'a str,
    name: &'a str,
    template: Option<&'a str>,
    outcome: (&'static str, &'static str),
    note: String,
    diff: Option<&'a str>,
}

/// A table of rows, the first `MAX_ROWS` of them; `name` heads the name column.
fn attention_table<'a>(out: &mut String, name: &str, rows: impl ExactSizeIterator<Item = Row<'a>>) {
    let total = rows.len();
    let _ = writeln!(
        out,
        "<table><tr><th>account</th><th>region</th><th>{name}</th><th>template</th>\
         <th>outcome</th><th>note</th></tr>"
    );
    for r in rows.take(MAX_ROWS) {
        let _ = write!(
            out,
            "<tr><td class=\"id\">{}</td><td class=\"id\">{}</td><td class=\"wrap\"><code>{}</code></td><td>{}</td>\
             <td><span class=\"badge\" style=\"background:{}\">{}</span></td><td class=\"wrap\">{}",
            Esc(r.account),
            Esc(r.region),
            Esc(r.name),
            Esc(r.template.unwrap_or("-")),
            r.outcome.1,
            r.outcome.0,
            Esc(&r.note),
        );
        if let Some(diff) = r.diff {
            diff_details(out, diff);
        }
        out.push_str("</td></tr>\n");
    }
    out.push_str("</table>");
    if total > MAX_ROWS {
        let _ = write!(
            out,
            "<p class=\"note\">{} more in the JSON report.</p>",
            total - MAX_ROWS
        );
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
        out.push_str("<p>None.</p>");
    }
    let rows = rows.into_iter().map(|r| Row {
        account: &r.account_id,
        region: &r.region,
        name: &r.repository,
        template: r.template.as_deref(),
        outcome: (r.outcome.as_str(), colour(r.outcome)),
        note: note(r),
        diff: r.diff.as_deref(),
    });
    if rows.len() > 0 {
        attention_table(out, "repository", rows);
    }
    out.push_str("</section>\n");
}

fn template_colour(o: TemplateOutcome) -> &'static str {
    colour(match o {
        TemplateOutcome::Create => Outcome::Create,
        TemplateOutcome::Update => Outcome::Update,
        TemplateOutcome::Unchanged => Outcome::Unchanged,
        TemplateOutcome::Unmanaged => Outcome::Excluded,
        TemplateOutcome::Error => Outcome::Error,
    })
}

/// Creation templates: the counts, the templates to create, update or look at (errors first,
/// unmanaged last: listed, never touched), and the account-regions no template covers.
fn creation_templates(out: &mut String, report: &Report) {
    if report.creation_templates.is_empty() && report.region_findings.is_empty() {
        return;
    }
    let t = &report.summary.creation_templates;
    let _ = write!(
        out,
        "<section><h2>Creation templates (<span id=\"templates\">{}</span>)</h2>\
         <table class=\"counts\"><tr>",
        t.total
    );
    for o in TemplateOutcome::ALL {
        let _ = write!(
            out,
            "<th><span class=\"sw\" style=\"background:{}\"></span>{}</th>",
            template_colour(o),
            o.as_str()
        );
    }
    out.push_str("<th>applied</th></tr><tr>");
    for o in TemplateOutcome::ALL {
        let _ = write!(
            out,
            "<td id=\"template-{}\">{}</td>",
            o.as_str(),
            t.outcomes.get(o)
        );
    }
    let _ = write!(
        out,
        "<td id=\"template-applied\">{}</td></tr></table>",
        t.applied
    );
    let rank = |o: TemplateOutcome| match o {
        TemplateOutcome::Error => 0,
        TemplateOutcome::Update => 1,
        TemplateOutcome::Create => 2,
        _ => 3,
    };
    let mut rows: Vec<&CreationTemplateResult> = report
        .creation_templates
        .iter()
        .filter(|r| r.outcome != TemplateOutcome::Unchanged)
        .collect();
    rows.sort_by(|a, b| {
        rank(a.outcome)
            .cmp(&rank(b.outcome))
            .then_with(|| a.key().cmp(&b.key()))
    });
    if !rows.is_empty() {
        out.push_str("<h3>Templates to create, update or look at</h3>");
        let rows = rows.into_iter().map(|r| Row {
            account: &r.account_id,
            region: &r.region,
            name: &r.prefix,
            template: r.template.as_deref(),
            outcome: (r.outcome.as_str(), template_colour(r.outcome)),
            note: match (&r.error, r.applied, r.outcome) {
                (Some(e), _, _) => e.clone(),
                (None, true, _) => "applied".into(),
                (None, false, TemplateOutcome::Unmanaged) => "not in the config: left alone".into(),
                _ => String::new(),
            },
            diff: r.diff.as_deref(),
        });
        attention_table(out, "prefix", rows);
    }
    if !report.region_findings.is_empty() {
        out.push_str(
            "<h3>No creation template with a lifecycle policy covers new repositories \
             (no_creation_template)</h3><table><tr><th>account</th><th>region</th></tr>",
        );
        for f in &report.region_findings {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td></tr>",
                Esc(&f.account_id),
                Esc(&f.region)
            );
        }
        out.push_str("</table>");
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

    fn template(prefix: &str, outcome: TemplateOutcome) -> CreationTemplateResult {
        let mut t = CreationTemplateResult::new("111111111111", "us-east-1", prefix, None);
        t.outcome = outcome;
        if outcome != TemplateOutcome::Unmanaged {
            t.template = Some("standard".into());
        }
        if outcome.is_write() {
            t.diff = Some("+{\"rules\": []}\n".into());
        }
        t
    }

    #[test]
    fn creation_templates_are_counted_and_listed() {
        let mut r = plan();
        r.command = Command::Audit;
        let mut failed = template("team-b", TemplateOutcome::Error);
        failed.error = Some(format!(
            "ecr:DescribeRepositoryCreationTemplates: {HOSTILE}"
        ));
        r.creation_templates = vec![
            template("ROOT", TemplateOutcome::Create),
            template("team-a", TemplateOutcome::Unchanged),
            template("legacy", TemplateOutcome::Unmanaged),
            failed,
        ];
        r.region_findings.push(crate::model::RegionFinding {
            account_id: "222222222222".into(),
            region: "eu-west-1".into(),
            finding: Finding::NoCreationTemplate,
        });
        r.tally();
        let html = render(&r);
        let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        let counts = &json["summary"]["creation_templates"];
        for o in TemplateOutcome::ALL {
            let name = o.as_str();
            assert_eq!(
                stated(&html, &format!("template-{name}")),
                counts["outcomes"][name].to_string(),
                "{name}"
            );
        }
        assert_eq!(stated(&html, "templates"), counts["total"].to_string());
        assert_eq!(stated(&html, "finding-no_creation_template"), "1");
        assert!(!html.contains("<script"), "{html}");
        // Errors first, unmanaged last, unchanged not listed.
        let table = &html[html.find("Templates to create").unwrap()..];
        let at = |p: &str| table.find(&format!("<code>{p}</code>")).unwrap();
        assert!(
            at("team-b") < at("ROOT") && at("ROOT") < at("legacy"),
            "{table}"
        );
        assert!(!table.contains("<code>team-a</code>"), "{table}");
        assert!(table.contains("not in the config: left alone"), "{table}");
        assert!(
            html.contains("1 account-region(s) without a creation template"),
            "{html}"
        );
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
