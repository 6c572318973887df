//! Policy diffs: unified diffs of canonical forms, one shared copy per distinct text.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};

use ecr_lifecycle::canonical_pretty;

/// Unified diff of the canonical pretty forms (so key order and whitespace never show up).
/// `None` on either side means "no policy".
/// One copy of each distinct diff text for the whole run: across a fleet, most changes are
/// the same few (every `create` of a template has the same diff), and a 100,000-repository
/// run would otherwise hold tens of thousands of copies.
pub fn intern_diff(diff: String) -> Arc<str> {
    static DIFFS: OnceLock<Mutex<HashSet<Arc<str>>>> = OnceLock::new();
    let mut diffs = DIFFS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(known) = diffs.get(diff.as_str()) {
        return known.clone();
    }
    let diff: Arc<str> = diff.into();
    diffs.insert(diff.clone());
    diff
}

pub fn policy_diff(current: Option<&str>, target: Option<&str>) -> String {
    labelled_diff(current, target, "template")
}

/// [`policy_diff`] with another name for the new side (restore writes the previous policy).
pub fn labelled_diff(current: Option<&str>, target: Option<&str>, target_label: &str) -> String {
    let canon = |t: &str| canonical_pretty(t).unwrap_or_else(|_| format!("{}\n", t.trim_end()));
    let old = current.map(canon).unwrap_or_default();
    let new = target.map(canon).unwrap_or_default();
    similar::TextDiff::from_lines(&old, &new)
        .unified_diff()
        .context_radius(3)
        .header(
            if current.is_some() {
                "current"
            } else {
                "/dev/null"
            },
            if target.is_some() {
                target_label
            } else {
                "/dev/null"
            },
        )
        .to_string()
}
