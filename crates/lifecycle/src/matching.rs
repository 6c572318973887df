//! Tag selection (5.4): which images a rule's `selection` looks at, judged by tags alone.

use std::borrow::Cow;

use crate::assumptions::{PREFIX_STAR_IS_LITERAL, TAG_MATCH_CASE_SENSITIVE};
use crate::model::{Selection, TagStatus};

/// Whether an image with these tags satisfies the tagging requirements of `selection`.
///
/// `untagged` wants no tags, `any` takes everything, `tagged` wants at least one tag and, for
/// every entry of the prefix or pattern list, some tag satisfying that entry (entries are ANDed,
/// 6.1; one tag may satisfy several entries). Storage class is not considered here.
pub fn tag_selected(selection: &Selection, tags: &[String]) -> bool {
    match selection.tag_status {
        TagStatus::Any => true,
        TagStatus::Untagged => tags.is_empty(),
        TagStatus::Tagged => {
            if tags.is_empty() {
                return false;
            }
            let prefixes_ok = selection.tag_prefix_list.as_deref().unwrap_or_default().iter().all(
                |entry| tags.iter().any(|tag| prefix_matches(entry, tag)),
            );
            prefixes_ok
                && selection
                    .tag_pattern_list
                    .as_deref()
                    .unwrap_or_default()
                    .iter()
                    .all(|entry| tags.iter().any(|tag| pattern_matches(entry, tag)))
        }
    }
}

fn fold(text: &str) -> Cow<'_, str> {
    if TAG_MATCH_CASE_SENSITIVE {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(text.to_lowercase())
    }
}

/// A `tagPrefixList` entry: the tag starts with it.
pub(crate) fn prefix_matches(prefix: &str, tag: &str) -> bool {
    if PREFIX_STAR_IS_LITERAL {
        fold(tag).starts_with(fold(prefix).as_ref())
    } else {
        // A prefix with wildcards behaves like the pattern `prefix*`.
        pattern_matches(&format!("{prefix}*"), tag)
    }
}

/// A `tagPatternList` entry: the whole tag matches, `*` standing for any run of characters
/// (including none); every other character is literal.
pub(crate) fn pattern_matches(pattern: &str, tag: &str) -> bool {
    glob_match(fold(pattern).as_ref(), fold(tag).as_ref())
}

/// Whole-string match of a `*`-only glob in linear time.
///
/// The literal pieces between stars must appear in order: the first piece anchored at the start,
/// the last at the end, and each middle piece at its leftmost occurrence after the previous one.
/// Taking the leftmost occurrence is always safe because `*` can absorb anything, so no
/// backtracking is needed.
fn glob_match(pattern: &str, text: &str) -> bool {
    let (Some(first_star), Some(last_star)) = (pattern.find('*'), pattern.rfind('*')) else {
        // No star at all: an exact match is required.
        return pattern == text;
    };
    let first = &pattern[..first_star];
    let last = &pattern[last_star + 1..];
    if text.len() < first.len() + last.len()
        || !text.starts_with(first)
        || !text.ends_with(last)
    {
        return false;
    }
    // Search the middle pieces only between the anchored ends so they cannot overlap them.
    let mut window = &text[first.len()..text.len() - last.len()];
    let middle = &pattern[first_star + 1..last_star.max(first_star + 1)];
    for piece in middle.split('*').filter(|piece| !piece.is_empty()) {
        match window.find(piece) {
            Some(at) => window = &window[at + piece.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CountType, StorageClass};

    fn tagged(prefixes: Option<&[&str]>, patterns: Option<&[&str]>) -> Selection {
        let own = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        Selection {
            tag_status: TagStatus::Tagged,
            tag_prefix_list: prefixes.map(own),
            tag_pattern_list: patterns.map(own),
            storage_class: StorageClass::Standard,
            count_type: CountType::ImageCountMoreThan,
            count_unit: None,
            count_number: 1,
        }
    }

    fn tags(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn glob_examples_from_the_docs() {
        // 5.4: `prod*` and `*prod*` examples.
        for tag in ["prod", "prod1", "production-team1"] {
            assert!(pattern_matches("prod*", tag), "{tag}");
        }
        for tag in ["repo-production", "prod-team"] {
            assert!(pattern_matches("*prod*", tag), "{tag}");
        }
        assert!(!pattern_matches("prod*", "preprod"));
        // No star: exact tag only.
        assert!(pattern_matches("latest", "latest"));
        assert!(!pattern_matches("latest", "latest1"));
    }

    #[test]
    fn glob_edge_cases() {
        assert!(pattern_matches("*", ""));
        assert!(pattern_matches("*", "anything"));
        assert!(pattern_matches("**", "x"));
        assert!(pattern_matches("a*b*c", "abc"));
        assert!(pattern_matches("a*b*c", "a-b-b-c"));
        assert!(!pattern_matches("a*b*c", "acb"));
        // Anchored ends must not overlap.
        assert!(!pattern_matches("ab*ba", "aba"));
        assert!(pattern_matches("ab*ba", "abba"));
        assert!(pattern_matches("*test*1*2*3", "xtest-1-2-3"));
        assert!(!pattern_matches("*test*1*2*3", "xtest-1-2-3-"));
        assert!(pattern_matches("v*.*.*", "v1.2.3"));
        assert!(pattern_matches("é*ü", "éaaü"));
        assert!(!pattern_matches("", "a"));
        assert!(pattern_matches("", ""));
    }

    #[test]
    fn glob_is_linear_on_adversarial_input() {
        let text = "a".repeat(100_000);
        let pattern = format!("*{}*b", "a".repeat(50));
        let started = std::time::Instant::now();
        assert!(!pattern_matches(&pattern, &text));
        assert!(started.elapsed().as_secs() < 2);
    }

    #[test]
    fn prefix_is_starts_with_and_star_literal() {
        assert!(prefix_matches("prod", "production"));
        assert!(!prefix_matches("prod", "preprod"));
        assert!(prefix_matches("", "x"));
        assert!(!prefix_matches("v*", "v1"));
        assert!(prefix_matches("v*", "v*1"));
    }

    #[test]
    fn status_selection() {
        let untagged = Selection { tag_status: TagStatus::Untagged, ..tagged(None, None) };
        assert!(tag_selected(&untagged, &[]));
        assert!(!tag_selected(&untagged, &tags(&["a"])));
        let any = Selection { tag_status: TagStatus::Any, ..tagged(None, None) };
        assert!(tag_selected(&any, &[]));
        assert!(tag_selected(&any, &tags(&["a"])));
        let prefixed = tagged(Some(&["a"]), None);
        assert!(!tag_selected(&prefixed, &[]));
    }

    #[test]
    fn list_entries_are_anded_6_1() {
        // People write ["latest","main","20*"] meaning OR; it is AND.
        let sel = tagged(None, Some(&["latest", "main", "20*"]));
        assert!(!tag_selected(&sel, &tags(&["latest"])));
        assert!(!tag_selected(&sel, &tags(&["main", "2024-01"])));
        assert!(tag_selected(&sel, &tags(&["latest", "main", "2024-01"])));
        let sel = tagged(Some(&["prod", "beta"]), None);
        assert!(!tag_selected(&sel, &tags(&["prod1"])));
        assert!(tag_selected(&sel, &tags(&["prod1", "beta1"])));
    }

    #[test]
    fn one_tag_may_satisfy_several_entries_and_extra_tags_do_not_matter() {
        let sel = tagged(Some(&["pro", "prod"]), None);
        assert!(tag_selected(&sel, &tags(&["prod-1"])));
        let sel = tagged(Some(&["prod"]), None);
        assert!(tag_selected(&sel, &tags(&["unrelated", "prod-1", "other"])));
    }
}
