//! `report merge`: join the JSON reports of the shards of one run (`--shard K/N`) into the
//! report one unsharded run writes. Each input is read into [`Report`]; rows, skipped targets,
//! disabled regions, notices and visited regions are joined and sorted as a run sorts them,
//! and [`Report::tally`] computes every count the rows hold, as at the end of a run.
//!
//! What the rows do not hold follows one rule per field (README, "Sharding"):
//!
//! - `summary.accounts`, `summary.inactive_accounts`: summed; each shard counts its own.
//! - `regions`: the union of the visited regions; `summary.regions` counts it (a report
//!   without the list, from before it existed, counts at least its own `summary.regions`).
//! - `summary.api_calls`, `summary.api_retries`: summed, so per shard: each shard identifies
//!   the caller and lists the organization once, which one unsharded run does once in all.
//! - `started_at`: the earliest; `finished_at`: the latest.
//! - `price_per_gb_month`, `unused_after_days` (settings shown inside the impact and unused
//!   totals): the inputs must agree.
//! - `backup_file`: kept when every input names the same one, else left out (each shard of
//!   an apply has its own journal; the shard reports keep them).
//! - `shard`: left out; the merged report is no longer one shard's.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

use super::{Report, Summary, SCHEMA_VERSION};
use crate::model::Shard;

#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("{file}: cannot read: {error}")]
    Read { file: String, error: std::io::Error },
    #[error(
        "{file}: not an ecr-fleet report of schema_version {SCHEMA_VERSION}: {field}: {problem}"
    )]
    Shape {
        file: String,
        field: String,
        problem: String,
    },
    #[error("the reports differ in {field}: {}", list(.values))]
    Mismatch {
        field: &'static str,
        values: Vec<(String, String)>,
    },
    #[error("the reports overlap (the same account-region in two inputs, so they are not shards of one run): {}", .0.join("; "))]
    Overlap(Vec<String>),
}

fn list(values: &[(String, String)]) -> String {
    let items: Vec<String> = values.iter().map(|(f, v)| format!("{v} in {f}")).collect();
    items.join(", ")
}

/// One input: its name (the file) and its report.
pub struct Input {
    pub name: String,
    pub report: Report,
}

impl Input {
    /// Parse `text` as a report of this schema_version; an error names the field.
    pub fn parse(name: &str, text: &str) -> Result<Input, MergeError> {
        let shape = |field: String, problem: String| MergeError::Shape {
            file: name.to_string(),
            field,
            problem,
        };
        let mut de = serde_json::Deserializer::from_str(text);
        let report: Report = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            // A report of another version fails somewhere; its version is the reason.
            #[derive(Deserialize)]
            struct Version {
                schema_version: u32,
            }
            match serde_json::from_str::<Version>(text) {
                Ok(v) if v.schema_version != SCHEMA_VERSION => {
                    shape("schema_version".into(), format!("is {}", v.schema_version))
                }
                _ => match e.path().to_string() {
                    root if root == "." => shape("(root)".into(), e.into_inner().to_string()),
                    path => shape(path, e.into_inner().to_string()),
                },
            }
        })?;
        if let Some(s) = &report.shard {
            s.parse::<Shard>()
                .map_err(|e| shape("shard".into(), format!("{s:?}: {e}")))?;
        }
        Ok(Input {
            name: name.to_string(),
            report,
        })
    }
}

/// Read and merge `files`; the merged report.
pub fn merge_files(files: &[PathBuf]) -> Result<Report, MergeError> {
    let read = |path: &PathBuf| {
        let file = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => Input::parse(&file, &text),
            Err(error) => Err(MergeError::Read { file, error }),
        }
    };
    merge(files.iter().map(read).collect::<Result<_, _>>()?)
}

/// Every input that gives a `value` must give the same one; that value.
fn same<T: PartialEq + fmt::Display>(
    inputs: &[Input],
    field: &'static str,
    value: impl Fn(&Report) -> Option<T>,
) -> Result<Option<T>, MergeError> {
    let mut values: Vec<(&str, T)> = inputs
        .iter()
        .filter_map(|i| Some((i.name.as_str(), value(&i.report)?)))
        .collect();
    if values.iter().any(|(_, v)| *v != values[0].1) {
        let values = values.iter().map(|(f, v)| (f.to_string(), v.to_string()));
        return Err(MergeError::Mismatch {
            field,
            values: values.collect(),
        });
    }
    Ok(values.pop().map(|(_, v)| v))
}

/// No account-region in two inputs, as a row or a skipped target (a region of `None`: the
/// whole account, which clashes with any of its regions).
fn check_overlap(inputs: &[Input]) -> Result<(), MergeError> {
    let mut keys = BTreeSet::new();
    for (i, input) in inputs.iter().enumerate() {
        let r = &input.report;
        let rows = r
            .repositories
            .iter()
            .map(|r| (&r.account_id, Some(&r.region)));
        let skipped = r.skipped.iter().map(|s| (&s.account_id, s.region.as_ref()));
        keys.extend(
            rows.chain(skipped)
                .map(|(a, g)| (a.as_str(), g.map(String::as_str), i)),
        );
    }
    let keys: Vec<(&str, Option<&str>, usize)> = keys.into_iter().collect();
    let mut overlaps = Vec::new();
    for (n, (account, ra, ia)) in keys.iter().enumerate() {
        let same_account = keys[n + 1..].iter().take_while(|(b, ..)| b == account);
        for (_, rb, ib) in same_account {
            if ia != ib && (ra.is_none() || rb.is_none() || ra == rb) {
                let region = ra.or(*rb).unwrap_or("(whole account)");
                let (a, b) = (&inputs[*ia.min(ib)].name, &inputs[*ia.max(ib)].name);
                overlaps.push(format!("{account} {region} in {a} and {b}"));
            }
        }
    }
    const SHOWN: usize = 5;
    if overlaps.len() > SHOWN {
        let more = overlaps.len() - SHOWN;
        overlaps.truncate(SHOWN);
        overlaps.push(format!("and {more} more"));
    }
    match overlaps.is_empty() {
        true => Ok(()),
        false => Err(MergeError::Overlap(overlaps)),
    }
}

/// Shards, where named, must be of one N with distinct Ks. A merge of fewer than N shards is
/// allowed (a shard may have failed) but said on stderr.
fn check_shards(inputs: &[Input]) -> Result<(), MergeError> {
    let shards: Vec<(&str, Shard)> = inputs
        .iter()
        .filter_map(|i| Some((i.name.as_str(), i.report.shard.as_ref()?.parse().ok()?)))
        .collect();
    if shards.iter().any(|(_, s)| s.count() != shards[0].1.count()) {
        let values = shards.iter().map(|(f, s)| (f.to_string(), s.to_string()));
        return Err(MergeError::Mismatch {
            field: "shard count",
            values: values.collect(),
        });
    }
    let mut seen: BTreeMap<u64, &str> = BTreeMap::new();
    for (file, s) in &shards {
        if let Some(other) = seen.insert(s.index(), file) {
            let clash = format!("shard {s} in {other} and {file}");
            return Err(MergeError::Overlap(vec![clash]));
        }
    }
    if let Some((_, s)) = shards.first() {
        let n = s.count();
        let missing: Vec<String> = (1..=n)
            .filter(|k| !seen.contains_key(k))
            .map(|k| format!("{k}/{n}"))
            .collect();
        if !missing.is_empty() {
            tracing::warn!(
                "merging {} of {n} shards: shard(s) {} missing, so the merged report does not \
                 cover the whole run",
                seen.len(),
                missing.join(", ")
            );
        }
    }
    Ok(())
}

/// The earlier (`earliest`) or later instant of two RFC 3339 texts; one that does not parse
/// gives way to one that does.
fn pick_time(a: String, b: String, earliest: bool) -> String {
    let take_b = match (a.parse::<jiff::Timestamp>(), b.parse::<jiff::Timestamp>()) {
        (Ok(x), Ok(y)) => (y < x && earliest) || (y > x && !earliest),
        (Err(_), Ok(_)) => true,
        _ => false,
    };
    if take_b {
        b
    } else {
        a
    }
}

/// Merge the reports of one sharded run (see the module documentation).
pub fn merge(inputs: Vec<Input>) -> Result<Report, MergeError> {
    same(&inputs, "schema_version", |r| Some(r.schema_version))?;
    same(&inputs, "command", |r| {
        Some(format!("{:?}", r.command.as_str()))
    })?;
    check_shards(&inputs)?;
    check_overlap(&inputs)?;
    // Settings shown inside the totals; an input without those totals does not say.
    let price = same(&inputs, "price_per_gb_month", |r| {
        let s = &r.summary;
        let impacts = [&s.impact, &s.current_impact].into_iter().flatten();
        let unused = s.unused.iter().map(|u| u.price_per_gb_month);
        impacts.map(|i| i.price_per_gb_month).chain(unused).next()
    })?;
    let window = same(&inputs, "unused_after_days", |r| {
        Some(r.summary.unused.as_ref()?.unused_after_days)
    })?;
    let backup = same(&inputs, "backup_file", |r| {
        Some(format!("{:?}", r.backup_file))
    });
    if backup.is_err() {
        tracing::warn!("the inputs name different backup files: left out of the merged report");
    }

    let mut inputs = inputs.into_iter().map(|i| i.report);
    let mut out = inputs.next().expect("clap requires at least one file");
    out.shard = None;
    out.backup_file = out.backup_file.filter(|_| backup.is_ok());
    let mut regions_counted = out.summary.regions;
    for report in inputs {
        // Every field by name: a field added to the report needs its rule here.
        let Report {
            schema_version: _,
            command: _,
            started_at,
            finished_at,
            summary,
            repositories,
            skipped,
            regions,
            disabled_regions,
            notices,
            backup_file: _,
            shard: _,
        } = report;
        let Summary {
            accounts,
            inactive_accounts,
            regions: region_count,
            api_calls,
            api_retries,
            // Tallied from the rows below.
            disabled_regions: _,
            repositories: _,
            outcomes: _,
            skipped: _,
            applied: _,
            repositories_with_findings: _,
            findings: _,
            impact: _,
            current_impact: _,
            unused: _,
            // Settings, checked above; not serialized.
            unused_after_days: _,
            price_per_gb_month: _,
        } = summary;
        let s = &mut out.summary;
        s.accounts += accounts;
        s.inactive_accounts += inactive_accounts;
        s.api_retries += api_retries;
        for (operation, n) in api_calls {
            *s.api_calls.entry(operation).or_default() += n;
        }
        regions_counted = regions_counted.max(region_count);
        out.started_at = pick_time(out.started_at, started_at, true);
        out.finished_at = pick_time(out.finished_at, finished_at, false);
        out.repositories.extend(repositories);
        out.skipped.extend(skipped);
        out.regions.extend(regions);
        out.disabled_regions.extend(disabled_regions);
        out.notices.extend(notices);
    }
    // Sorted as a run sorts them; within one account-region, the order of the run.
    out.repositories
        .sort_unstable_by(|a, b| a.key().cmp(&b.key()));
    out.skipped
        .sort_by(|a, b| (&a.account_id, &a.region).cmp(&(&b.account_id, &b.region)));
    out.notices
        .sort_by(|a, b| (&a.account_id, &a.region).cmp(&(&b.account_id, &b.region)));
    out.disabled_regions.sort();
    out.summary.price_per_gb_month = price.unwrap_or_default();
    out.summary.unused_after_days = window.unwrap_or_default();
    out.tally();
    out.summary.regions = out.summary.regions.max(regions_counted);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DisabledRegion, Notice, Outcome, RepoResult, Skipped, Unused};
    use crate::report::{Command, Summary};

    /// A tallied report of one account: rows `b` (unchanged) and `a` (create) per region.
    fn report(account: &str, regions: &[&str]) -> Report {
        let row = |region: &&str, (name, outcome): (&str, Outcome)| {
            let mut row = RepoResult::new(account, region, name, Some("standard".into()));
            row.outcome = outcome;
            row
        };
        let rows = [("b", Outcome::Unchanged), ("a", Outcome::Create)];
        let skipped = Skipped {
            account_id: account.into(),
            region: Some("ap-south-1".into()),
            error: "x".into(),
        };
        let mut r = Report {
            schema_version: SCHEMA_VERSION,
            command: Command::Plan,
            started_at: "2026-11-22T10:00:00Z".into(),
            finished_at: "2026-11-22T10:00:09Z".into(),
            summary: Summary {
                accounts: 1,
                inactive_accounts: 1,
                api_calls: BTreeMap::from([("sts:GetCallerIdentity".into(), 1)]),
                api_retries: 2,
                ..Summary::default()
            },
            repositories: regions
                .iter()
                .flat_map(|g| rows.map(|x| row(g, x)))
                .collect(),
            skipped: vec![skipped],
            regions: regions.iter().map(|r| r.to_string()).collect(),
            disabled_regions: Vec::new(),
            notices: Vec::new(),
            backup_file: None,
            shard: None,
        };
        r.tally();
        r
    }

    fn merged(inputs: &[(&str, &Report)]) -> Result<Report, MergeError> {
        let parse = |(name, r): &(&str, &Report)| Input::parse(name, &r.to_json()).unwrap();
        merge(inputs.iter().map(parse).collect())
    }

    fn error(inputs: &[(&str, &Report)]) -> String {
        merged(inputs).unwrap_err().to_string()
    }

    #[test]
    fn one_report_merges_to_itself_byte_for_byte() {
        let mut r = report("111111111111", &["us-east-1", "eu-west-1"]);
        r.repositories.sort_by(|a, b| a.key().cmp(&b.key()));
        r.backup_file = Some("journal.jsonl".into());
        assert_eq!(merged(&[("a.json", &r)]).unwrap().to_json(), r.to_json());
    }

    #[test]
    fn sums_what_rows_cannot_tell_sorts_rows_and_spans_the_time() {
        let mut a = report("222222222222", &["us-east-1"]);
        let mut b = report("111111111111", &["eu-west-1", "us-east-1"]);
        (a.started_at, a.shard, a.backup_file) = (
            "2026-11-22T10:00:05Z".into(),
            Some("1/2".into()),
            Some("a".into()),
        );
        (b.finished_at, b.shard, b.backup_file) = (
            "2026-11-22T10:00:07Z".into(),
            Some("2/2".into()),
            Some("b".into()),
        );
        let m = merged(&[("a.json", &a), ("b.json", &b)]).unwrap();
        assert_eq!(m.started_at, "2026-11-22T10:00:00Z");
        assert_eq!(m.finished_at, "2026-11-22T10:00:09Z");
        assert_eq!((m.shard, m.backup_file), (None, None));
        let s = &m.summary;
        assert_eq!((s.accounts, s.inactive_accounts), (2, 2));
        assert_eq!((s.repositories, s.skipped, s.outcomes.create), (6, 2, 3));
        assert_eq!(
            (s.api_calls["sts:GetCallerIdentity"], s.api_retries),
            (2, 4)
        );
        // Shards that visit different regions: the union, counted once.
        assert_eq!(
            (m.regions.join(" "), s.regions),
            ("eu-west-1 us-east-1".into(), 2)
        );
        let keys: Vec<String> = m
            .repositories
            .iter()
            .map(|r| format!("{}/{}/{}", r.account_id, r.region, r.repository))
            .collect();
        assert_eq!(
            keys[..3],
            [
                "111111111111/eu-west-1/a",
                "111111111111/eu-west-1/b",
                "111111111111/us-east-1/a"
            ]
        );
        assert_eq!(keys[5], "222222222222/us-east-1/b");
        assert_eq!(m.skipped[0].account_id, "111111111111");
    }

    #[test]
    fn a_report_without_the_region_list_counts_at_least_its_own_regions() {
        let a = report("111111111111", &["us-east-1"]).to_json();
        let mut old: serde_json::Value =
            serde_json::from_str(&report("222222222222", &["eu-west-1", "us-east-1"]).to_json())
                .unwrap();
        old.as_object_mut().unwrap().remove("regions");
        let inputs = vec![
            Input::parse("a.json", &a).unwrap(),
            Input::parse("old.json", &old.to_string()).unwrap(),
        ];
        assert_eq!(merge(inputs).unwrap().summary.regions, 2);
    }

    #[test]
    fn overlapping_inputs_are_refused_naming_both_files() {
        let a = report("111111111111", &["us-east-1", "eu-west-1"]);
        let err = error(&[("a.json", &a), ("again.json", &a)]);
        assert!(
            err.contains("overlap")
                && err.contains("111111111111 eu-west-1 in a.json and again.json"),
            "{err}"
        );
        // A whole account that could not be entered overlaps each of its regions.
        let mut b = report("222222222222", &[]);
        b.skipped[0] = Skipped {
            account_id: "111111111111".into(),
            region: None,
            error: "AssumeRole".into(),
        };
        let err = error(&[("a.json", &a), ("b.json", &b)]);
        assert!(
            err.contains("111111111111 eu-west-1 in a.json and b.json"),
            "{err}"
        );
    }

    #[test]
    fn different_commands_versions_settings_or_shard_counts_are_refused() {
        let a = report("111111111111", &["us-east-1"]);
        let b = report("222222222222", &["us-east-1"]);
        let refused = |change: &dyn Fn(&mut Report, &mut Report), want: &str| {
            let (mut a, mut b) = (a.clone(), b.clone());
            change(&mut a, &mut b);
            let err = error(&[("a.json", &a), ("b.json", &b)]);
            assert!(err.contains(want), "{want}: {err}");
        };
        refused(
            &|_, b| b.command = Command::Audit,
            r#"command: "plan" in a.json, "audit" in b.json"#,
        );
        refused(
            &|_, b| b.schema_version = 2,
            "schema_version: 1 in a.json, 2 in b.json",
        );
        refused(
            &|a, b| (a.shard, b.shard) = (Some("1/2".into()), Some("2/3".into())),
            "shard count: 1/2 in a.json, 2/3 in b.json",
        );
        refused(
            &|a, b| (a.shard, b.shard) = (Some("1/2".into()), Some("1/2".into())),
            "shard 1/2 in a.json and b.json",
        );
        let price = |r: &mut Report, price| {
            r.summary.price_per_gb_month = price;
            r.repositories[0].impact = Some(Default::default());
            r.tally();
        };
        refused(
            &|a, b| (price(a, 0.1), price(b, 0.2)).1,
            "price_per_gb_month: 0.1 in a.json, 0.2 in b.json",
        );
    }

    #[test]
    fn malformed_inputs_name_file_and_field() {
        let good = report("111111111111", &["us-east-1"]).to_json();
        let changed = |from: &str, to: &str| good.replacen(from, to, 1);
        for (text, want) in [
            (
                "[]".to_string(),
                "x.json: not an ecr-fleet report of schema_version 1: (root): invalid length 0",
            ),
            (
                r#"{"schema_version": 1}"#.into(),
                "(root): missing field `command`",
            ),
            (
                changed(r#""account_id": "111111111111""#, r#""account_id": 1"#),
                "repositories[0].account_id: invalid type: integer `1`",
            ),
            (
                changed(r#""outcome": "create""#, r#""outcome": "deleted""#),
                "repositories[1].outcome: unknown variant `deleted`",
            ),
            (
                changed(r#""accounts": 1"#, r#""accounts": 1, "api_errors": 0"#),
                "summary.api_errors: unknown field `api_errors`",
            ),
            (
                changed(
                    r#""command": "plan""#,
                    r#""command": "plan", "shard": "0/2""#,
                ),
                r#"shard: "0/2": K must be between 1 and N"#,
            ),
            (
                r#"{"schema_version": 2, "rows": []}"#.into(),
                "x.json: not an ecr-fleet report of schema_version 1: schema_version: is 2",
            ),
        ] {
            let err = Input::parse("x.json", &text).err().expect(want).to_string();
            assert!(err.contains(want), "{want}: {err}");
        }
        let err = merge_files(&[PathBuf::from("/nonexistent/r.json")])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("/nonexistent/r.json: cannot read"), "{err}");
    }

    #[test]
    fn lists_by_account_region_are_joined_and_totals_tallied() {
        let with = |account: &str, region: &str, notes: &[&str]| {
            let mut r = report(account, &["us-east-1"]);
            r.disabled_regions.push(DisabledRegion {
                account_id: account.into(),
                region: region.into(),
            });
            let notice = |m: &&str| Notice {
                account_id: account.into(),
                region: "us-east-1".into(),
                message: m.to_string(),
            };
            r.notices = notes.iter().map(notice).collect();
            let mut unused = Unused::default();
            (unused.total.images, unused.total.bytes) = (3, 1 << 30);
            r.repositories[0].unused = Some(Box::new(unused));
            (r.summary.unused_after_days, r.summary.price_per_gb_month) = (90, 0.5);
            r.tally();
            r
        };
        let a = with("222222222222", "af-south-1", &["n3"]);
        let b = with("111111111111", "me-south-1", &["n2", "n1"]);
        let m = merged(&[("a.json", &a), ("b.json", &b)]).unwrap();
        assert_eq!(m.summary.disabled_regions, 2);
        assert_eq!(m.disabled_regions[0].account_id, "111111111111");
        let notices: Vec<&str> = m.notices.iter().map(|n| n.message.as_str()).collect();
        // Sorted by account, the order within one account-region kept.
        assert_eq!(notices, ["n2", "n1", "n3"]);
        let u = m.summary.unused.as_ref().unwrap();
        assert_eq!(
            (u.repositories, u.unused_after_days, u.totals.total.images),
            (2, 90, 6)
        );
        assert_eq!(
            u.totals.total.monthly_cost_usd, 1.0,
            "priced once at the shards' price"
        );
    }
}
