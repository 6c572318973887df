//! Merging reports: join the JSON reports of the shards of one run (`--shard
//! K/N`) into the report one unsharded run would have written: rows and skipped targets joined
//! and sorted, the summary summed.
//!
//! The merge works on the JSON, not on the report types, so it carries every field a report
//! has, including ones newer than this code, and keeps the key order of the first input, so
//! a merged report diffs cleanly against an unsharded one. Summary numbers are summed (every
//! count of a report is a sum over accounts), except `regions` (every shard visits the same
//! regions: the largest count) and `price_per_gb_month` (a setting: the first).
//!
//! What cannot equal one unsharded run: `started_at` is the earliest start, `finished_at` the
//! latest finish, and `api_calls`/`api_retries` are the shards' sums, which exceed one run's
//! by what every shard repeats (identifying the caller, listing the organization).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;

use serde::de::{MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Number;

use crate::model::Shard;

/// A JSON value that keeps the order of object keys (serde_json's `Value` sorts them unless
/// its `preserve_order` feature is on, which would change every other use of it).
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn get_mut(&mut self, key: &str) -> Option<&mut Json> {
        match self {
            Json::Object(fields) => fields.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn set(&mut self, key: &str, value: Json) {
        if let Json::Object(fields) = self {
            match fields.iter_mut().find(|(k, _)| k == key) {
                Some((_, v)) => *v = value,
                None => fields.push((key.to_string(), value)),
            }
        }
    }

    fn remove(&mut self, key: &str) {
        if let Json::Object(fields) = self {
            fields.retain(|(k, _)| k != key);
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::Number(_) => "a number",
            Json::String(_) => "a string",
            Json::Array(_) => "an array",
            Json::Object(_) => "an object",
        }
    }

    /// Pretty JSON with a final newline, formatted like every report ecr-fleet writes.
    pub fn to_pretty(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("JSON serializes");
        s.push('\n');
        s
    }
}

impl Serialize for Json {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Json::Null => s.serialize_unit(),
            Json::Bool(b) => s.serialize_bool(*b),
            Json::Number(n) => n.serialize(s),
            Json::String(t) => s.serialize_str(t),
            Json::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Json::Object(fields) => {
                let mut map = s.serialize_map(Some(fields.len()))?;
                for (k, v) in fields {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Json, D::Error> {
        struct JsonVisitor;
        impl<'de> Visitor<'de> for JsonVisitor {
            type Value = Json;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_unit<E>(self) -> Result<Json, E> {
                Ok(Json::Null)
            }
            fn visit_none<E>(self) -> Result<Json, E> {
                Ok(Json::Null)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Json, D::Error> {
                Json::deserialize(d)
            }
            fn visit_bool<E>(self, b: bool) -> Result<Json, E> {
                Ok(Json::Bool(b))
            }
            fn visit_u64<E>(self, n: u64) -> Result<Json, E> {
                Ok(Json::Number(n.into()))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Json, E> {
                Ok(Json::Number(n.into()))
            }
            fn visit_f64<E>(self, n: f64) -> Result<Json, E> {
                Ok(Number::from_f64(n).map_or(Json::Null, Json::Number))
            }
            fn visit_str<E>(self, s: &str) -> Result<Json, E> {
                Ok(Json::String(s.to_string()))
            }
            fn visit_string<E>(self, s: String) -> Result<Json, E> {
                Ok(Json::String(s))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Json::Array(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
                let mut fields: Vec<(String, Json)> = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Json>()? {
                    // A repeated key: the last one wins, as in serde_json.
                    fields.retain(|(old, _)| *old != k);
                    fields.push((k, v));
                }
                Ok(Json::Object(fields))
            }
        }
        d.deserialize_any(JsonVisitor)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("{file}: cannot read: {error}")]
    Read { file: String, error: std::io::Error },
    #[error("{file}: not JSON: {error}")]
    Parse {
        file: String,
        error: serde_json::Error,
    },
    #[error("{file}: not an ecr-fleet JSON report: {field} {problem}")]
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
    values
        .iter()
        .map(|(file, value)| format!("{value} in {file}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One input: its name (the file) and its JSON.
pub struct Input {
    pub name: String,
    pub report: Json,
}

/// Read and merge `files`; the merged report.
pub fn merge_files(files: &[PathBuf]) -> Result<Json, MergeError> {
    let mut inputs = Vec::new();
    for path in files {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|error| MergeError::Read {
            file: name.clone(),
            error,
        })?;
        let report: Json = serde_json::from_str(&text).map_err(|error| MergeError::Parse {
            file: name.clone(),
            error,
        })?;
        inputs.push(Input { name, report });
    }
    merge(inputs)
}

fn shape(file: &str, field: &str, problem: impl Into<String>) -> MergeError {
    MergeError::Shape {
        file: file.to_string(),
        field: field.to_string(),
        problem: problem.into(),
    }
}

/// The fields merge relies on, checked per input.
fn check(input: &Input) -> Result<(), MergeError> {
    let file = input.name.as_str();
    let r = &input.report;
    if !matches!(r, Json::Object(_)) {
        return Err(shape(file, "(root)", format!("is {}", r.kind())));
    }
    match r.get("schema_version") {
        Some(Json::Number(_)) => {}
        other => {
            return Err(shape(
                file,
                "schema_version",
                other.map_or("is missing".into(), |v| format!("is {}", v.kind())),
            ))
        }
    }
    for (field, want) in [
        ("command", "a string"),
        ("started_at", "a string"),
        ("finished_at", "a string"),
        ("summary", "an object"),
        ("repositories", "an array"),
        ("skipped", "an array"),
    ] {
        match r.get(field) {
            Some(v) if v.kind() == want => {}
            Some(v) => return Err(shape(file, field, format!("is {}, not {want}", v.kind()))),
            None => return Err(shape(file, field, "is missing")),
        }
    }
    if let Some(Json::Array(rows)) = r.get("repositories") {
        for (i, row) in rows.iter().enumerate() {
            for field in ["account_id", "region", "repository"] {
                if row.get(field).and_then(Json::as_str).is_none() {
                    return Err(shape(
                        file,
                        &format!("repositories[{i}].{field}"),
                        "is not a string",
                    ));
                }
            }
        }
    }
    if let Some(Json::Array(skipped)) = r.get("skipped") {
        for (i, s) in skipped.iter().enumerate() {
            if s.get("account_id").and_then(Json::as_str).is_none() {
                return Err(shape(
                    file,
                    &format!("skipped[{i}].account_id"),
                    "is not a string",
                ));
            }
            if !matches!(
                s.get("region"),
                None | Some(Json::Null) | Some(Json::String(_))
            ) {
                return Err(shape(
                    file,
                    &format!("skipped[{i}].region"),
                    "is neither a string nor null",
                ));
            }
        }
    }
    if let Some(shard) = r.get("shard") {
        let text = shard
            .as_str()
            .ok_or_else(|| shape(file, "shard", format!("is {}, not a string", shard.kind())))?;
        text.parse::<Shard>()
            .map_err(|e| shape(file, "shard", format!("{text:?}: {e}")))?;
    }
    Ok(())
}

/// Every input must agree on `field`.
fn same(inputs: &[Input], field: &'static str) -> Result<(), MergeError> {
    let values: Vec<(String, String)> = inputs
        .iter()
        .map(|i| {
            let v = i.report.get(field).cloned().unwrap_or(Json::Null);
            (i.name.clone(), serde_json::to_string(&v).expect("JSON"))
        })
        .collect();
    let distinct: BTreeSet<&String> = values.iter().map(|(_, v)| v).collect();
    if distinct.len() > 1 {
        return Err(MergeError::Mismatch { field, values });
    }
    Ok(())
}

/// The account-regions an input covers: every row's, and every skipped target (`None` for a
/// whole account that could not be entered).
fn coverage(report: &Json) -> BTreeSet<(String, Option<String>)> {
    let mut keys = BTreeSet::new();
    if let Some(Json::Array(rows)) = report.get("repositories") {
        for r in rows {
            if let (Some(a), Some(g)) = (
                r.get("account_id").and_then(Json::as_str),
                r.get("region").and_then(Json::as_str),
            ) {
                keys.insert((a.to_string(), Some(g.to_string())));
            }
        }
    }
    if let Some(Json::Array(skipped)) = report.get("skipped") {
        for s in skipped {
            if let Some(a) = s.get("account_id").and_then(Json::as_str) {
                let region = s.get("region").and_then(Json::as_str).map(str::to_string);
                keys.insert((a.to_string(), region));
            }
        }
    }
    keys
}

fn check_overlap(inputs: &[Input]) -> Result<(), MergeError> {
    // account -> (region or whole account, input index)
    let mut by_account: BTreeMap<String, Vec<(Option<String>, usize)>> = BTreeMap::new();
    for (i, input) in inputs.iter().enumerate() {
        for (account, region) in coverage(&input.report) {
            by_account.entry(account).or_default().push((region, i));
        }
    }
    let mut overlaps = Vec::new();
    for (account, entries) in &by_account {
        for (n, (ra, ia)) in entries.iter().enumerate() {
            for (rb, ib) in &entries[n + 1..] {
                if ia == ib {
                    continue;
                }
                let clash = match (ra, rb) {
                    (Some(a), Some(b)) => a == b,
                    // A whole account in one input clashes with any of its regions in another.
                    _ => true,
                };
                if clash {
                    let region = ra.as_deref().or(rb.as_deref()).unwrap_or("(whole account)");
                    overlaps.push(format!(
                        "{account} {region} in {} and {}",
                        inputs[*ia].name, inputs[*ib].name
                    ));
                }
            }
        }
    }
    if overlaps.is_empty() {
        return Ok(());
    }
    const SHOWN: usize = 5;
    let more = overlaps.len().saturating_sub(SHOWN);
    overlaps.truncate(SHOWN);
    if more > 0 {
        overlaps.push(format!("and {more} more"));
    }
    Err(MergeError::Overlap(overlaps))
}

/// Shard fields, where present, must be of one N with distinct Ks. A merge of fewer than N
/// shards is allowed (a shard may have failed) but said on stderr.
fn check_shards(inputs: &[Input]) -> Result<(), MergeError> {
    let shards: Vec<(String, Shard)> = inputs
        .iter()
        .filter_map(|i| {
            let s = i.report.get("shard")?.as_str()?.parse::<Shard>().ok()?;
            Some((i.name.clone(), s))
        })
        .collect();
    let counts: BTreeSet<u64> = shards.iter().map(|(_, s)| s.count()).collect();
    if counts.len() > 1 {
        return Err(MergeError::Mismatch {
            field: "shard count",
            values: shards
                .iter()
                .map(|(f, s)| (f.clone(), s.to_string()))
                .collect(),
        });
    }
    let mut seen: BTreeMap<u64, &str> = BTreeMap::new();
    for (file, s) in &shards {
        if let Some(other) = seen.insert(s.index(), file) {
            return Err(MergeError::Overlap(vec![format!(
                "shard {s} in {other} and {file}"
            )]));
        }
    }
    if let Some(&n) = counts.first() {
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

/// Merge reports of one sharded run (see the module documentation).
pub fn merge(inputs: Vec<Input>) -> Result<Json, MergeError> {
    for input in &inputs {
        check(input)?;
    }
    same(&inputs, "schema_version")?;
    same(&inputs, "command")?;
    check_shards(&inputs)?;
    check_overlap(&inputs)?;

    let mut inputs = inputs.into_iter();
    let first = inputs.next().expect("clap requires at least one file");
    let mut merged = first.report;
    let mut names = vec![first.name];
    let mut dropped = BTreeSet::new();
    for input in inputs {
        merge_report(
            &mut merged,
            &input.report,
            &names,
            &input.name,
            &mut dropped,
        );
        names.push(input.name);
    }
    for key in &dropped {
        merged.remove(key);
    }
    // The merged report is no longer one shard's.
    merged.remove("shard");
    finish(&mut merged);
    Ok(merged)
}

fn time_of(v: Option<&Json>) -> Option<jiff::Timestamp> {
    v.and_then(Json::as_str)?.parse().ok()
}

fn merge_report(
    acc: &mut Json,
    other: &Json,
    earlier: &[String],
    name: &str,
    dropped: &mut BTreeSet<String>,
) {
    let Json::Object(other_fields) = other else {
        return;
    };
    for (key, value) in other_fields {
        if acc.get(key).is_none() && !dropped.contains(key) && key != "shard" {
            if let Json::Object(mine) = acc {
                insert_near(mine, key, value.clone(), other_fields);
            }
            continue;
        }
        match key.as_str() {
            "schema_version" | "command" | "shard" => {}
            "started_at" | "finished_at" => {
                let (mine, theirs) = (time_of(acc.get(key)), time_of(Some(value)));
                let take = match (mine, theirs) {
                    (Some(a), Some(b)) if key == "started_at" => b < a,
                    (Some(a), Some(b)) => b > a,
                    (None, Some(_)) => true,
                    _ => false,
                };
                if take {
                    acc.set(key, value.clone());
                }
            }
            "summary" => {
                if let Some(summary) = acc.get_mut("summary") {
                    sum_into(summary, value, "summary");
                }
            }
            _ if dropped.contains(key) => {}
            // Per account-region lists (rows, skipped targets, notices): joined, sorted later.
            _ if matches!(
                (acc.get(key), value),
                (Some(Json::Array(_)), Json::Array(_))
            ) =>
            {
                if let (Some(Json::Array(mine)), Json::Array(theirs)) = (acc.get_mut(key), value) {
                    mine.extend(theirs.iter().cloned());
                }
            }
            _ => match acc.get(key) {
                None => {}
                Some(mine) if mine == value => {}
                Some(_) => {
                    // Per-run facts such as apply's backup_file: each shard has its own, and
                    // one report cannot name several; the shard reports keep them.
                    tracing::warn!(
                        "{key} differs between {} and {name}: left out of the merged report",
                        earlier.join(", ")
                    );
                    dropped.insert(key.clone());
                }
            },
        }
    }
}

/// Insert `key` (missing from `fields`) after the nearest key that precedes it in `order` and
/// is present, so a field only a later input has lands where an unsharded report has it.
fn insert_near(fields: &mut Vec<(String, Json)>, key: &str, value: Json, order: &[(String, Json)]) {
    let before = order
        .iter()
        .position(|(k, _)| k == key)
        .map_or(&order[..0], |at| &order[..at]);
    let at = before
        .iter()
        .rev()
        .find_map(|(k, _)| fields.iter().position(|(f, _)| f == k))
        .map_or(0, |i| i + 1);
    fields.insert(at, (key.to_string(), value));
}

/// Add the numbers of `other` into `acc`, recursively; lists are joined. Missing keys are
/// taken over.
fn sum_into(acc: &mut Json, other: &Json, path: &str) {
    let key = path.rsplit('.').next().unwrap_or(path);
    match (&mut *acc, other) {
        (Json::Object(mine), Json::Object(theirs)) => {
            for (k, v) in theirs {
                let child = format!("{path}.{k}");
                match mine.iter_mut().find(|(mk, _)| mk == k) {
                    Some((_, m)) => sum_into(m, v, &child),
                    None => insert_near(mine, k, v.clone(), theirs),
                }
            }
        }
        (Json::Number(a), Json::Number(b)) => {
            let combined = match key {
                // Every shard visits the same regions.
                "regions" => max(a, b),
                // Settings, not counts.
                "price_per_gb_month" | "unused_after_days" => a.clone(),
                _ => add(a, b, key.ends_with("_usd")),
            };
            *a = combined;
        }
        (Json::Array(mine), Json::Array(theirs)) => mine.extend(theirs.iter().cloned()),
        (Json::Null, v) => *acc = v.clone(),
        // Anything else (text, flags) is kept as the first input has it.
        _ => {}
    }
}

fn max(a: &Number, b: &Number) -> Number {
    match (a.as_u64(), b.as_u64()) {
        (Some(x), Some(y)) => x.max(y).into(),
        _ => {
            let (x, y) = (a.as_f64().unwrap_or(0.0), b.as_f64().unwrap_or(0.0));
            Number::from_f64(x.max(y)).unwrap_or_else(|| a.clone())
        }
    }
}

fn add(a: &Number, b: &Number, money: bool) -> Number {
    if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
        return x.saturating_add(y).into();
    }
    let mut sum = a.as_f64().unwrap_or(0.0) + b.as_f64().unwrap_or(0.0);
    if money {
        // Reports round money to cents; so does the sum.
        sum = (sum * 100.0).round() / 100.0;
    }
    Number::from_f64(sum).unwrap_or_else(|| a.clone())
}

/// Sort rows and skipped targets as a report does, and make the counts match them.
fn finish(report: &mut Json) {
    let text = |v: &Json, k: &str| v.get(k).and_then(Json::as_str).unwrap_or("").to_string();
    if let Some(Json::Array(rows)) = report.get_mut("repositories") {
        rows.sort_by_cached_key(|r| {
            (
                text(r, "account_id"),
                text(r, "region"),
                text(r, "repository"),
            )
        });
    }
    // Other lists of account-region items (skipped targets, notices): by account and region
    // (a whole account first), keeping the order within one account-region, as a run does.
    if let Json::Object(fields) = report {
        for (key, value) in fields.iter_mut() {
            if let (false, Json::Array(items)) = (key == "repositories", value) {
                if items.iter().all(|i| i.get("account_id").is_some()) {
                    items.sort_by_cached_key(|s| {
                        (
                            text(s, "account_id"),
                            s.get("region").and_then(Json::as_str).map(str::to_string),
                        )
                    });
                }
            }
        }
    }
    let len = |k: &str| match report.get(k) {
        Some(Json::Array(a)) => a.len() as u64,
        _ => 0,
    };
    let (rows, skipped) = (len("repositories"), len("skipped"));
    if let Some(summary) = report.get_mut("summary") {
        summary.set("repositories", Json::Number(rows.into()));
        summary.set("skipped", Json::Number(skipped.into()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(name: &str, text: &str) -> Input {
        Input {
            name: name.into(),
            report: serde_json::from_str(text).unwrap(),
        }
    }

    fn report(shard: Option<&str>, account: &str, started: &str, finished: &str) -> String {
        let shard = shard.map_or(String::new(), |s| format!(r#""shard": "{s}","#));
        format!(
            r#"{{
  "schema_version": 1,
  "command": "plan",
  "started_at": "{started}",
  "finished_at": "{finished}",
  {shard}
  "summary": {{
    "accounts": 1, "inactive_accounts": 1, "regions": 2, "repositories": 2,
    "outcomes": {{"create": 1, "update": 0, "unchanged": 1}},
    "skipped": 1,
    "api_calls": {{"ecr:GetLifecyclePolicy": 2, "sts:GetCallerIdentity": 1}},
    "api_retries": 0,
    "impact": {{"repositories": 1, "monthly_saving_usd": 0.015, "price_per_gb_month": 0.1}}
  }},
  "repositories": [
    {{"account_id": "{account}", "region": "us-east-1", "repository": "b", "outcome": "create"}},
    {{"account_id": "{account}", "region": "eu-west-1", "repository": "a", "outcome": "unchanged"}}
  ],
  "skipped": [{{"account_id": "{account}", "region": "ap-south-1", "error": "x"}}]
}}"#
        )
    }

    #[test]
    fn one_report_merges_to_itself_byte_for_byte() {
        let text = report(
            None,
            "111111111111",
            "2026-11-22T10:00:00Z",
            "2026-11-22T10:00:09Z",
        );
        let once = merge(vec![input("a.json", &text)]).unwrap().to_pretty();
        // Same keys in the same order, same numbers; only sorting of rows may differ.
        let reparsed: Json = serde_json::from_str(&once).unwrap();
        assert_eq!(reparsed.get("command"), Some(&Json::String("plan".into())));
        let keys: Vec<&str> = match &reparsed {
            Json::Object(f) => f.iter().map(|(k, _)| k.as_str()).collect(),
            _ => unreachable!(),
        };
        assert_eq!(
            keys,
            [
                "schema_version",
                "command",
                "started_at",
                "finished_at",
                "summary",
                "repositories",
                "skipped"
            ]
        );
        let again = merge(vec![input("m.json", &once)]).unwrap().to_pretty();
        assert_eq!(once, again);
    }

    #[test]
    fn sums_counts_sorts_rows_and_spans_the_time() {
        let a = report(
            Some("1/2"),
            "222222222222",
            "2026-11-22T10:00:05Z",
            "2026-11-22T10:00:09Z",
        );
        let b = report(
            Some("2/2"),
            "111111111111",
            "2026-11-22T10:00:00Z",
            "2026-11-22T10:00:07Z",
        );
        let m = merge(vec![input("a.json", &a), input("b.json", &b)]).unwrap();
        let v: serde_json::Value = serde_json::from_str(&m.to_pretty()).unwrap();
        assert_eq!(v["started_at"], "2026-11-22T10:00:00Z");
        assert_eq!(v["finished_at"], "2026-11-22T10:00:09Z");
        assert!(v.get("shard").is_none());
        let s = &v["summary"];
        assert_eq!(s["accounts"], 2);
        assert_eq!(s["inactive_accounts"], 2);
        assert_eq!(s["regions"], 2, "the same regions, not twice as many");
        assert_eq!(s["repositories"], 4);
        assert_eq!(s["skipped"], 2);
        assert_eq!(s["outcomes"]["create"], 2);
        assert_eq!(s["outcomes"]["unchanged"], 2);
        assert_eq!(s["api_calls"]["sts:GetCallerIdentity"], 2);
        assert_eq!(s["impact"]["repositories"], 2);
        assert_eq!(s["impact"]["monthly_saving_usd"], 0.03);
        assert_eq!(s["impact"]["price_per_gb_month"], 0.1);
        let keys: Vec<String> = v["repositories"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                format!("{}/{}/{}", r["account_id"], r["region"], r["repository"]).replace('"', "")
            })
            .collect();
        assert_eq!(
            keys,
            [
                "111111111111/eu-west-1/a",
                "111111111111/us-east-1/b",
                "222222222222/eu-west-1/a",
                "222222222222/us-east-1/b"
            ]
        );
        assert_eq!(v["skipped"][0]["account_id"], "111111111111");
    }

    #[test]
    fn overlapping_inputs_are_refused_naming_both_files() {
        let a = report(
            None,
            "111111111111",
            "2026-11-22T10:00:00Z",
            "2026-11-22T10:00:09Z",
        );
        let err = merge(vec![input("a.json", &a), input("again.json", &a)])
            .unwrap_err()
            .to_string();
        assert!(err.contains("overlap"), "{err}");
        assert!(
            err.contains("111111111111 eu-west-1 in a.json and again.json"),
            "{err}"
        );
    }

    #[test]
    fn a_whole_skipped_account_overlaps_its_regions() {
        let a = report(
            None,
            "111111111111",
            "2026-11-22T10:00:00Z",
            "2026-11-22T10:00:09Z",
        );
        let b = r#"{"schema_version": 1, "command": "plan", "started_at": "x", "finished_at": "y",
            "summary": {}, "repositories": [],
            "skipped": [{"account_id": "111111111111", "region": null, "error": "AssumeRole"}]}"#;
        let err = merge(vec![input("a.json", &a), input("b.json", b)])
            .unwrap_err()
            .to_string();
        assert!(err.contains("in a.json and b.json"), "{err}");
    }

    #[test]
    fn different_commands_versions_or_shard_counts_are_refused() {
        let a = report(
            None,
            "111111111111",
            "2026-11-22T10:00:00Z",
            "2026-11-22T10:00:09Z",
        );
        let b = report(
            None,
            "222222222222",
            "2026-11-22T10:00:00Z",
            "2026-11-22T10:00:09Z",
        );
        let audit = b.replace(r#""command": "plan""#, r#""command": "audit""#);
        let err = merge(vec![input("a.json", &a), input("b.json", &audit)])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(r#"command: "plan" in a.json, "audit" in b.json"#),
            "{err}"
        );
        let v2 = b.replace(r#""schema_version": 1"#, r#""schema_version": 2"#);
        let err = merge(vec![input("a.json", &a), input("b.json", &v2)])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("schema_version: 1 in a.json, 2 in b.json"),
            "{err}"
        );
        let a = report(
            Some("1/2"),
            "111111111111",
            "2026-11-22T10:00:00Z",
            "2026-11-22T10:00:09Z",
        );
        let b = report(
            Some("2/3"),
            "222222222222",
            "2026-11-22T10:00:00Z",
            "2026-11-22T10:00:09Z",
        );
        let err = merge(vec![input("a.json", &a), input("b.json", &b)])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("shard count: 1/2 in a.json, 2/3 in b.json"),
            "{err}"
        );
        let b = report(
            Some("1/2"),
            "222222222222",
            "2026-11-22T10:00:00Z",
            "2026-11-22T10:00:09Z",
        );
        let err = merge(vec![input("a.json", &a), input("b.json", &b)])
            .unwrap_err()
            .to_string();
        assert!(err.contains("shard 1/2 in a.json and b.json"), "{err}");
    }

    #[test]
    fn malformed_inputs_name_file_and_field() {
        for (text, want) in [
            (
                "[]",
                "x.json: not an ecr-fleet JSON report: (root) is an array",
            ),
            (
                r#"{"schema_version": 1}"#,
                "x.json: not an ecr-fleet JSON report: command is missing",
            ),
            (
                r#"{"schema_version": 1, "command": "plan", "started_at": "", "finished_at": "", "summary": {}, "repositories": [{"account_id": 1}], "skipped": []}"#,
                "repositories[0].account_id is not a string",
            ),
            (
                r#"{"schema_version": 1, "command": "plan", "started_at": "", "finished_at": "", "summary": {}, "repositories": [], "skipped": [], "shard": "0/2"}"#,
                "shard \"0/2\": K must be between 1 and N",
            ),
        ] {
            let err = merge(vec![input("x.json", text)]).unwrap_err().to_string();
            assert!(err.contains(want), "{text}: {err}");
        }
        let err = merge_files(&[PathBuf::from("/nonexistent/r.json")])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("/nonexistent/r.json: cannot read"), "{err}");
    }

    #[test]
    fn disabled_regions_and_unused_images_add_up_by_account() {
        let with = |account: &str| {
            report(None, account, "2026-11-22T10:00:00Z", "2026-11-22T10:00:09Z")
                .replace(
                    r#""api_retries": 0"#,
                    r#""api_retries": 0, "disabled_regions": 1,
                       "unused": {"repositories": 2, "unused_after_days": 90, "total": {"images": 3, "monthly_cost_usd": 0.25}}"#,
                )
                .replace(
                    r#""error": "x"}]"#,
                    &format!(
                        r#""error": "x"}}], "disabled_regions": [{{"account_id": "{account}", "region": "af-south-1"}}]"#
                    ),
                )
        };
        let m = merge(vec![
            input("a.json", &with("222222222222")),
            input("b.json", &with("111111111111")),
        ])
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&m.to_pretty()).unwrap();
        let s = &v["summary"];
        assert_eq!(s["disabled_regions"], 2);
        assert_eq!(v["disabled_regions"].as_array().unwrap().len(), 2);
        assert_eq!(v["disabled_regions"][0]["account_id"], "111111111111");
        assert_eq!(s["unused"]["repositories"], 4);
        assert_eq!(
            s["unused"]["unused_after_days"], 90,
            "a setting, not summed"
        );
        assert_eq!(s["unused"]["total"]["images"], 6);
        assert_eq!(s["unused"]["total"]["monthly_cost_usd"], 0.5);
    }

    #[test]
    fn other_lists_are_joined_and_late_fields_land_in_order() {
        let a = report(
            None,
            "222222222222",
            "2026-11-22T10:00:00Z",
            "2026-11-22T10:00:09Z",
        );
        let b = report(None, "111111111111", "2026-11-22T10:00:00Z", "2026-11-22T10:00:09Z")
            .replace(
                r#""skipped": [{"account_id": "111111111111", "region": "ap-south-1", "error": "x"}]"#,
                r#""skipped": [{"account_id": "111111111111", "region": "ap-south-1", "error": "x"}],
                   "notices": [{"account_id": "111111111111", "region": "us-east-1", "message": "n2"},
                               {"account_id": "111111111111", "region": "us-east-1", "message": "n1"}]"#,
            )
            .replace(r#""api_retries": 0"#, r#""api_retries": 0, "disabled_regions": 3"#);
        let c = report(None, "000000000001", "2026-11-22T10:00:00Z", "2026-11-22T10:00:09Z")
            .replace(
                r#""skipped": [{"account_id": "000000000001", "region": "ap-south-1", "error": "x"}]"#,
                r#""skipped": [], "notices": [{"account_id": "000000000001", "region": "eu-west-1", "message": "n0"}]"#,
            );
        let m = merge(vec![
            input("a.json", &a),
            input("b.json", &b),
            input("c.json", &c),
        ])
        .unwrap();
        let Json::Object(fields) = &m else {
            unreachable!()
        };
        let keys: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "schema_version",
                "command",
                "started_at",
                "finished_at",
                "summary",
                "repositories",
                "skipped",
                "notices"
            ]
        );
        let v: serde_json::Value = serde_json::from_str(&m.to_pretty()).unwrap();
        let notices: Vec<&str> = v["notices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["message"].as_str().unwrap())
            .collect();
        // Sorted by account, the order within one account-region kept.
        assert_eq!(notices, ["n0", "n2", "n1"]);
        assert_eq!(v["summary"]["disabled_regions"], 3);
        assert_eq!(v["summary"]["skipped"], 2);
        let Some(Json::Object(summary)) = m.get("summary") else {
            unreachable!()
        };
        let at = |k: &str| summary.iter().position(|(f, _)| f == k).unwrap();
        assert_eq!(at("disabled_regions"), at("api_retries") + 1);
    }

    #[test]
    fn differing_per_run_fields_are_dropped() {
        let a = report(
            None,
            "111111111111",
            "2026-11-22T10:00:00Z",
            "2026-11-22T10:00:09Z",
        )
        .replace(
            r#""command": "plan","#,
            r#""command": "apply", "backup_file": "a","#,
        );
        let b = report(
            None,
            "222222222222",
            "2026-11-22T10:00:00Z",
            "2026-11-22T10:00:09Z",
        )
        .replace(
            r#""command": "plan","#,
            r#""command": "apply", "backup_file": "b","#,
        );
        let m = merge(vec![input("a.json", &a), input("b.json", &b)]).unwrap();
        assert_eq!(m.get("backup_file"), None);
    }
}
