//! The SVG charts of the HTML view: outcomes per account, and the savings of `--images` per
//! account and per finding.

use std::fmt::Write as _;

use super::*;

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
    // A sum of rounded amounts can land a hair below zero: never print "-0.00".
    let v = if v.abs() < 0.005 { 0.0 } else { v };
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

pub(super) fn outcomes_chart(out: &mut String, report: &Report) {
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
pub(super) fn savings(out: &mut String, report: &Report) {
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
            .filter(|(f, _)| **f != Finding::NoCreationTemplate)
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
