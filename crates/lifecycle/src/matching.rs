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
    TagMatcher::new(selection).matches(tags)
}

/// A selection's tag requirements prepared once, so that matching many images does not
/// re-parse the patterns for every tag.
pub(crate) struct TagMatcher<'a> {
    status: TagStatus,
    entries: Vec<Entry<'a>>,
}

impl<'a> TagMatcher<'a> {
    pub(crate) fn new(selection: &'a Selection) -> TagMatcher<'a> {
        let mut entries = Vec::new();
        if selection.tag_status == TagStatus::Tagged {
            let prefixes = selection.tag_prefix_list.iter().flatten();
            entries.extend(prefixes.map(|prefix| Entry::prefix(prefix)));
            let patterns = selection.tag_pattern_list.iter().flatten();
            entries.extend(patterns.map(|pattern| Entry::pattern(fold(pattern))));
        }
        TagMatcher {
            status: selection.tag_status,
            entries,
        }
    }

    pub(crate) fn matches(&self, tags: &[String]) -> bool {
        match self.status {
            TagStatus::Any => true,
            TagStatus::Untagged => tags.is_empty(),
            TagStatus::Tagged => {
                !tags.is_empty()
                    && self
                        .entries
                        .iter()
                        .all(|entry| tags.iter().any(|tag| entry.matches(fold(tag).as_ref())))
            }
        }
    }
}

/// Lowercases for case-insensitive matching; free when matching is case-sensitive.
fn fold(text: &str) -> Cow<'_, str> {
    if TAG_MATCH_CASE_SENSITIVE {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(text.to_lowercase())
    }
}

/// One list entry, already folded.
struct Entry<'a> {
    text: Cow<'a, str>,
    shape: Shape,
}

enum Shape {
    /// The tag starts with the text.
    Prefix,
    /// The tag equals the text (a pattern without `*`).
    Exact,
    /// A pattern with at least one `*`, at these byte positions.
    Glob { first_star: usize, last_star: usize },
}

impl<'a> Entry<'a> {
    /// A `tagPrefixList` entry.
    fn prefix(prefix: &'a str) -> Entry<'a> {
        if PREFIX_STAR_IS_LITERAL {
            Entry {
                text: fold(prefix),
                shape: Shape::Prefix,
            }
        } else {
            // A prefix with wildcards behaves like the pattern `prefix*`.
            Entry::pattern(Cow::Owned(format!("{}*", fold(prefix))))
        }
    }

    /// A `tagPatternList` entry: the whole tag must match, `*` standing for any run of
    /// characters (including none); every other character is literal.
    fn pattern(text: Cow<'a, str>) -> Entry<'a> {
        let shape = match (text.find('*'), text.rfind('*')) {
            (Some(first_star), Some(last_star)) => Shape::Glob {
                first_star,
                last_star,
            },
            _ => Shape::Exact,
        };
        Entry { text, shape }
    }

    fn matches(&self, tag: &str) -> bool {
        let text: &str = &self.text;
        match self.shape {
            Shape::Prefix => starts_with(tag, text),
            Shape::Exact => tag == text,
            Shape::Glob {
                first_star,
                last_star,
            } => glob_match(
                &text[..first_star],
                &text[(first_star + 1).min(last_star)..last_star],
                &text[last_star + 1..],
                tag,
            ),
        }
    }
}

/// `str::starts_with` with a first-byte check in front: most tags differ from a prefix at
/// once, and this avoids a `memcmp` call for them.
fn starts_with(tag: &str, prefix: &str) -> bool {
    let (tag, prefix) = (tag.as_bytes(), prefix.as_bytes());
    match prefix.first() {
        None => true,
        Some(first) => tag.first() == Some(first) && tag.starts_with(prefix),
    }
}

/// Whole-string match of a `*`-only glob, given as the literal text before its first star,
/// between its first and last star (still containing the inner stars), and after its last star.
///
/// Linear time: the first piece is anchored at the start, the last at the end, and each middle
/// piece is taken at its leftmost occurrence after the previous one. The leftmost choice is
/// always safe because `*` can absorb anything, so no backtracking is needed.
fn glob_match(first: &str, middle: &str, last: &str, tag: &str) -> bool {
    if tag.len() < first.len() + last.len() || !starts_with(tag, first) || !tag.ends_with(last) {
        return false;
    }
    // Search the middle pieces only between the anchored ends so they cannot overlap them.
    let mut window = &tag[first.len()..tag.len() - last.len()];
    for piece in middle.split('*').filter(|piece| !piece.is_empty()) {
        match window.find(piece) {
            Some(at) => window = &window[at + piece.len()..],
            None => return false,
        }
    }
    true
}

/// A `tagPrefixList` entry against one tag (for tests and the property checks).
#[cfg(test)]
fn prefix_matches(prefix: &str, tag: &str) -> bool {
    Entry::prefix(prefix).matches(fold(tag).as_ref())
}

/// A `tagPatternList` entry against one tag.
#[cfg(test)]
fn pattern_matches(pattern: &str, tag: &str) -> bool {
    Entry::pattern(fold(pattern)).matches(fold(tag).as_ref())
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
        let untagged = Selection {
            tag_status: TagStatus::Untagged,
            ..tagged(None, None)
        };
        assert!(tag_selected(&untagged, &[]));
        assert!(!tag_selected(&untagged, &tags(&["a"])));
        let any = Selection {
            tag_status: TagStatus::Any,
            ..tagged(None, None)
        };
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
