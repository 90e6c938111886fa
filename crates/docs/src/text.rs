//! Text analysis shared by indexing and querying: words, camelCase parts, stop words,
//! Snowball (English) stemming, a small documented synonym list of Kubernetes jargon, and
//! plain-text snippets.
//!
//! Tokenising here (rather than handing user text to a query parser) is what makes a query
//! unable to fail: quotes, colons, brackets and braces pasted from kubectl output are
//! separators like any other punctuation.

use rust_stemmers::{Algorithm, Stemmer};
use std::collections::HashSet;

/// Longest token kept; longer runs (base64, hashes) carry no meaning for search.
const MAX_TOKEN_CHARS: usize = 40;

/// Common English words that say nothing about a problem. Question words are here because
/// queries are typed as questions ("why are my pods pending"). Negations ("no", "not") are
/// dropped too: BM25 scores words, not phrases, so "not found" is matched by "found".
const STOP_WORDS: &[&str] = &[
    "a", "about", "after", "again", "all", "am", "an", "and", "any", "are", "as", "at", "be",
    "been", "being", "but", "by", "can", "could", "did", "do", "does", "doing", "for", "from",
    "had", "has", "have", "having", "he", "her", "here", "him", "his", "how", "i", "if", "in",
    "into", "is", "it", "its", "just", "me", "my", "no", "nor", "not", "of", "on", "or", "our",
    "ours", "she", "should", "so", "some", "such", "than", "that", "the", "their", "them", "then",
    "there", "these", "they", "this", "those", "to", "too", "very", "was", "we", "were", "what",
    "when", "where", "which", "while", "who", "whom", "why", "will", "with", "would", "you",
    "your",
];

/// Query-time expansions: Kubernetes shorthand and jargon people type, mapped to the words
/// the runbooks (and most documentation) use. One direction only: a query word on the left
/// also searches the words on the right. Keys and values are plain lowercase words; they go
/// through the same stemming as everything else.
const SYNONYMS: &[(&str, &[&str])] = &[
    ("crashloop", &["crashloopbackoff"]),
    ("crashlooping", &["crashloopbackoff"]),
    ("crashloops", &["crashloopbackoff"]),
    ("oom", &["oomkilled", "memory"]),
    ("pvc", &["persistentvolumeclaim"]),
    ("pvcs", &["persistentvolumeclaim"]),
    ("pv", &["persistentvolume"]),
    ("hpa", &["horizontalpodautoscaler", "autoscaler"]),
    ("autoscaling", &["hpa"]),
    ("pdb", &["poddisruptionbudget"]),
    ("netpol", &["networkpolicy"]),
    ("sa", &["serviceaccount"]),
    ("sts", &["statefulset"]),
    ("svc", &["service"]),
    ("ns", &["namespace"]),
    ("cm", &["configmap"]),
    ("deploy", &["deployment"]),
    ("cj", &["cronjob"]),
    ("k8s", &["kubernetes"]),
    ("cert", &["certificate"]),
    ("certs", &["certificate"]),
    ("x509", &["certificate"]),
    ("403", &["forbidden"]),
    ("401", &["unauthorized"]),
    ("429", &["toomanyrequests"]),
];

/// Analyzer: turns text into index terms.
pub(crate) struct Analyzer {
    stemmer: Stemmer,
    stop: HashSet<&'static str>,
}

impl Default for Analyzer {
    fn default() -> Self {
        Analyzer {
            stemmer: Stemmer::create(Algorithm::English),
            stop: STOP_WORDS.iter().copied().collect(),
        }
    }
}

impl std::fmt::Debug for Analyzer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Analyzer")
    }
}

/// One word of the input: its lowercase surface form and its index term (stem).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Term {
    pub surface: String,
    pub stem: String,
}

impl Analyzer {
    /// Index terms of `text`, in order (repeats kept: BM25 counts them).
    #[cfg(test)]
    pub fn terms(&self, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        self.each_term(text, |t| out.push(t.stem));
        out
    }

    /// Calls `f` for every term of `text`: each word, and for a camelCase word
    /// (`CrashLoopBackOff`, `OOMKilled`) also its parts, so "crash loop" finds it.
    pub fn each_term(&self, text: &str, mut f: impl FnMut(Term)) {
        for word in words(text) {
            let parts = camel_parts(word);
            self.push_word(word, &mut f);
            if parts.len() > 1 {
                for p in parts {
                    self.push_word(p, &mut f);
                }
            }
        }
    }

    fn push_word(&self, word: &str, f: &mut impl FnMut(Term)) {
        let count = word.chars().count();
        if !(2..=MAX_TOKEN_CHARS).contains(&count) {
            return;
        }
        let lower = word.to_lowercase();
        if self.stop.contains(lower.as_str()) {
            return;
        }
        let stem = self.stemmer.stem(&lower).into_owned();
        f(Term {
            surface: lower,
            stem,
        });
    }

    /// Query terms: the terms of `query` plus the synonym expansions of its words.
    /// Returns (term, surface form) pairs; expansions carry an empty surface so spelling
    /// correction never applies to them.
    pub fn query_terms(&self, query: &str, synonyms: bool) -> Vec<Term> {
        let mut out = Vec::new();
        self.each_term(query, |t| {
            let expansions = SYNONYMS
                .iter()
                .filter(|_| synonyms)
                .find(|(k, _)| *k == t.surface)
                .map(|(_, v)| *v)
                .unwrap_or(&[]);
            out.push(t);
            for e in expansions {
                out.push(Term {
                    surface: String::new(),
                    stem: self.stemmer.stem(e).into_owned(),
                });
            }
        });
        out
    }
}

/// Maximal runs of alphanumeric characters: every other character separates words.
pub(crate) fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
}

/// Splits a camelCase or PascalCase word at lower→upper transitions and before the last
/// capital of an upper-case run followed by lower case (`OOMKilled` → `OOM`, `Killed`).
/// Digits stay attached (`x509`, `v1beta1`). Returns one part for a word with no boundary.
pub(crate) fn camel_parts(word: &str) -> Vec<&str> {
    let chars: Vec<(usize, char)> = word.char_indices().collect();
    let mut parts = Vec::new();
    let mut start = 0;
    for i in 1..chars.len() {
        let (pos, c) = chars[i];
        let prev = chars[i - 1].1;
        let next_lower = chars.get(i + 1).is_some_and(|(_, n)| n.is_lowercase());
        let boundary = (prev.is_lowercase() && c.is_uppercase())
            || (prev.is_uppercase() && c.is_uppercase() && next_lower);
        if boundary {
            parts.push(&word[start..pos]);
            start = pos;
        }
    }
    parts.push(&word[start..]);
    parts
}

/// Optimal string alignment distance, bounded: returns `None` as soon as the distance must
/// exceed `max`. Counts an adjacent transposition ("regsitry") as one edit.
pub(crate) fn bounded_osa(a: &[char], b: &[char], max: usize) -> Option<usize> {
    if a.len().abs_diff(b.len()) > max {
        return None;
    }
    let w = b.len() + 1;
    let mut prev2 = vec![0usize; w];
    let mut prev: Vec<usize> = (0..w).collect();
    let mut cur = vec![0usize; w];
    for i in 1..=a.len() {
        cur[0] = i;
        let mut row_min = cur[0];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(prev2[j - 2] + 1);
            }
            cur[j] = v;
            row_min = row_min.min(v);
        }
        if row_min > max {
            return None;
        }
        std::mem::swap(&mut prev2, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    let d = prev[b.len()];
    (d <= max).then_some(d)
}

/// Plain text of a markdown fragment: no code fences, inline code marks, emphasis, heading
/// marks, list bullets or link targets; whitespace collapsed to single spaces.
pub(crate) fn plain_text(markdown: &str) -> String {
    let mut out = String::with_capacity(markdown.len());
    for line in markdown.lines() {
        let t = line.trim();
        if t.starts_with("```") || t.starts_with("~~~") {
            continue;
        }
        let t = t.trim_start_matches('#').trim_start();
        let t = strip_bullet(t);
        if !out.is_empty() {
            out.push(' ');
        }
        push_inline_plain(t, &mut out);
    }
    collapse_ws(&out)
}

fn strip_bullet(t: &str) -> &str {
    for b in ["- ", "* ", "+ ", "> ", "| "] {
        if let Some(rest) = t.strip_prefix(b) {
            return rest;
        }
    }
    let digits = t.chars().take_while(|c| c.is_ascii_digit()).count();
    if digits > 0 {
        if let Some(rest) = t[digits..].strip_prefix(". ") {
            return rest;
        }
    }
    t
}

/// Drops `` ` ``, `**`, `__` and turns `[text](target)` into `text`.
fn push_inline_plain(t: &str, out: &mut String) {
    let mut rest = t;
    while let Some(c) = rest.chars().next() {
        if c == '[' {
            if let Some(close) = rest.find("](") {
                if let Some(end) = rest[close..].find(')') {
                    let text = &rest[1..close];
                    if !text.contains('[') {
                        push_inline_plain(text, out);
                        rest = &rest[close + end + 1..];
                        continue;
                    }
                }
            }
        }
        if c == '`' || ((c == '*' || c == '_') && rest[1..].starts_with(c)) {
            rest = rest.trim_start_matches(c);
            continue;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
}

fn collapse_ws(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Cuts `s` to at most `max` bytes on a char boundary, preferring a word boundary, and
/// marks the cut with "…".
pub(crate) fn truncate_words(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let cut = kai_text::cut(s, max);
    let cut = match cut.rfind(' ') {
        Some(sp) if sp > max / 2 => &cut[..sp],
        _ => cut,
    };
    format!("{}…", cut.trim_end())
}

/// Blocks of a markdown fragment for snippets: paragraphs and list items (with their
/// wrapped continuation lines), each code line on its own; fence lines dropped.
fn blocks(markdown: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut in_fence = false;
    let flush = |cur: &mut String, out: &mut Vec<String>| {
        if !cur.trim().is_empty() {
            out.push(std::mem::take(cur));
        }
        cur.clear();
    };
    for line in markdown.lines() {
        let t = line.trim();
        if t.starts_with("```") || t.starts_with("~~~") {
            flush(&mut cur, &mut out);
            in_fence = !in_fence;
            continue;
        }
        if in_fence {
            flush(&mut cur, &mut out);
            cur.push_str(t);
            flush(&mut cur, &mut out);
            continue;
        }
        if t.is_empty() {
            flush(&mut cur, &mut out);
            continue;
        }
        if strip_bullet(t).len() != t.len() || t.starts_with('#') {
            flush(&mut cur, &mut out);
        }
        if !cur.is_empty() {
            cur.push('\n');
        }
        cur.push_str(t);
    }
    flush(&mut cur, &mut out);
    out
}

/// A short plain-text excerpt of `markdown` starting at the paragraph or list item that
/// matches the most distinct query stems (`query`, as analysed by `an`); the section's
/// beginning when nothing matches.
pub(crate) fn snippet(an: &Analyzer, markdown: &str, query: &[String], max: usize) -> String {
    let wanted: HashSet<&str> = query.iter().map(String::as_str).collect();
    let blocks = blocks(markdown);
    let mut best: Option<(usize, usize)> = None;
    for (i, block) in blocks.iter().enumerate() {
        let mut seen = HashSet::new();
        an.each_term(block, |t| {
            if wanted.contains(t.stem.as_str()) {
                seen.insert(t.stem);
            }
        });
        if !seen.is_empty() && best.is_none_or(|(_, n)| seen.len() > n) {
            best = Some((i, seen.len()));
        }
    }
    let start = best.map_or(0, |(i, _)| i);
    // The best block, then what follows it, until the excerpt is long enough.
    let mut text = String::new();
    for b in blocks.iter().skip(start) {
        if text.len() >= max {
            break;
        }
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(b);
    }
    truncate_words(&plain_text(&text), max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_on_every_punctuation_pasted_from_kubectl() {
        let w: Vec<&str> =
            words(r#"Error: secret "db-creds" not found {a:[1]} (x41 over 11m)"#).collect();
        assert_eq!(
            w,
            ["Error", "secret", "db", "creds", "not", "found", "a", "1", "x41", "over", "11m"]
        );
    }

    #[test]
    fn camel_case_words_are_split_into_parts() {
        assert_eq!(
            camel_parts("CrashLoopBackOff"),
            ["Crash", "Loop", "Back", "Off"]
        );
        assert_eq!(camel_parts("OOMKilled"), ["OOM", "Killed"]);
        assert_eq!(camel_parts("x509"), ["x509"]);
        assert_eq!(camel_parts("nodeSelector"), ["node", "Selector"]);
        assert_eq!(camel_parts("HTTP"), ["HTTP"]);
    }

    #[test]
    fn terms_are_stemmed_lowercase_without_stop_words_and_keep_camel_parts() {
        let an = Analyzer::default();
        assert_eq!(
            an.terms("Why are the Pods Pending? ImagePullBackOff"),
            [
                "pod",
                "pend",
                "imagepullbackoff",
                "imag",
                "pull",
                "back",
                "off"
            ]
        );
    }

    #[test]
    fn synonyms_expand_query_words_only() {
        let an = Analyzer::default();
        let q: Vec<String> = an
            .query_terms("backend crashlooping", true)
            .into_iter()
            .map(|t| t.stem)
            .collect();
        assert_eq!(q, ["backend", "crashloop", "crashloopbackoff"]);
        // Documents are not expanded.
        assert_eq!(an.terms("crashlooping"), ["crashloop"]);
    }

    #[test]
    fn osa_distance_counts_transpositions_and_stops_early() {
        let c = |s: &str| s.chars().collect::<Vec<_>>();
        assert_eq!(bounded_osa(&c("regsitry"), &c("registry"), 1), Some(1));
        assert_eq!(bounded_osa(&c("pendng"), &c("pending"), 1), Some(1));
        assert_eq!(bounded_osa(&c("terminting"), &c("terminating"), 1), Some(1));
        assert_eq!(bounded_osa(&c("ingress"), &c("ingress"), 1), Some(0));
        assert_eq!(bounded_osa(&c("secret"), &c("service"), 1), None);
        assert_eq!(bounded_osa(&c("a"), &c("abcdef"), 2), None);
    }

    #[test]
    fn plain_text_strips_markdown() {
        assert_eq!(
            plain_text("1. Run `kubectl get pods` and see [oom-killed](oom-killed.md).\n```sh\nls\n```\n- **bold** item"),
            "Run kubectl get pods and see oom-killed. ls bold item"
        );
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        let s = "é".repeat(100);
        let t = truncate_words(&s, 51);
        assert!(t.ends_with('…'));
        assert!(t.len() <= 51 + '…'.len_utf8());
        assert_eq!(truncate_words("short", 10), "short");
    }

    #[test]
    fn snippet_starts_at_the_best_matching_line() {
        let an = Analyzer::default();
        let md = "First line about nothing.\n\n- The pod was OOMKilled\n  with exit code 137.\n- More.\n```sh\nkubectl get pod\n```";
        let q = an.terms("exit code 137 oomkilled");
        let s = snippet(&an, md, &q, 200);
        assert_eq!(
            s,
            "The pod was OOMKilled with exit code 137. More. kubectl get pod"
        );
        // A match on a wrapped line starts the excerpt at its list item, not mid-sentence.
        let q = an.terms("exit code 137");
        assert!(snippet(&an, md, &q, 200).starts_with("The pod was"));
        // No match: the beginning.
        assert!(snippet(&an, md, &an.terms("zebra"), 200).starts_with("First line"));
    }
}
