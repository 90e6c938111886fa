//! The documents an answer cites: only ones kai showed the model in this process.

use super::*;

/// A document an answer cites.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Citation {
    /// `docs/runbooks/<slug>.md` or the user file's path.
    pub source: String,
    pub title: String,
    /// The section cited, when the answer names one of the document's sections.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heading: Option<String>,
}

/// A document kai showed the model, for validating citations.
#[derive(Debug, Clone)]
struct Known {
    title: String,
    headings: Vec<String>,
}

/// User documents `search_docs` returned in this process (built-in runbooks are known
/// anyway). Citations are checked against them, so a path the model made up is never
/// listed as a source. Process-wide because the front ends that print citations (one-shot,
/// REPL) share no state with the tool but the process.
fn surfaced() -> &'static Mutex<BTreeMap<String, Known>> {
    static SURFACED: OnceLock<Mutex<BTreeMap<String, Known>>> = OnceLock::new();
    SURFACED.get_or_init(|| Mutex::new(BTreeMap::new()))
}

pub(super) fn remember(hits: &[Hit]) {
    let Ok(mut map) = surfaced().lock() else {
        return;
    };
    for h in hits
        .iter()
        .filter(|h| !h.source.starts_with(kai_docs::BUILTIN_PREFIX))
    {
        let k = map.entry(h.source.clone()).or_insert_with(|| Known {
            title: h.title.clone(),
            headings: Vec::new(),
        });
        if !k.headings.contains(&h.heading) {
            k.headings.push(h.heading.clone());
        }
    }
}

/// The documents `answer` cites, in the order it first mentions them: every built-in
/// runbook path (`docs/runbooks/<slug>.md`) and every user document kai returned in this
/// process, with the section when the path is followed by `§ Section` or `#section`.
pub fn citations(answer: &str) -> Vec<Citation> {
    let mut known: Vec<(String, Known)> = kai_docs::builtin_runbooks()
        .into_iter()
        .map(|r| {
            (
                r.source,
                Known {
                    title: r.title,
                    headings: r.headings,
                },
            )
        })
        .collect();
    if let Ok(map) = surfaced().lock() {
        known.extend(map.iter().map(|(s, k)| (s.clone(), k.clone())));
    }
    // Longest paths first, and matched text masked: a user file
    // `/srv/docs/runbooks/oom-killed.md` must not also count as the built-in one.
    known.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(&b.0)));
    let mut masked = answer.to_string();
    let mut found: Vec<(usize, Citation)> = Vec::new();
    for (source, k) in &known {
        let mut from = 0;
        while let Some(pos) = masked[from..].find(source.as_str()).map(|p| p + from) {
            let end = pos + source.len();
            // Part of a longer path (`/srv/x/docs/runbooks/a.md`) is not this document.
            let inside_path = masked[..pos]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || matches!(c, '/' | '.' | '-' | '_' | '~'));
            if inside_path {
                from = end;
                continue;
            }
            let heading = cited_heading(&masked[end..], &k.headings);
            let c = Citation {
                source: source.clone(),
                title: k.title.clone(),
                heading,
            };
            if !found.iter().any(|(_, f)| *f == c) {
                found.push((pos, c));
            }
            // Same length, so positions found later stay valid.
            masked.replace_range(pos..end, &"\u{1}".repeat(source.len()));
            from = end;
        }
    }
    found.sort_by_key(|(pos, _)| *pos);
    found.into_iter().map(|(_, c)| c).collect()
}

/// The section named right after a cited path (`#how-to-confirm`, ` § Fix`), if it is
/// one of `headings` (the longest that the text starts with, ignoring case).
fn cited_heading(after: &str, headings: &[String]) -> Option<String> {
    let norm = |s: &str| -> String {
        s.chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect()
    };
    if let Some(anchor) = after.strip_prefix('#') {
        let anchor = anchor
            .split(|c: char| {
                c.is_whitespace() || matches!(c, ')' | ']' | '`' | ',' | ';' | '"' | '*')
            })
            .next()
            .unwrap_or("");
        let want = norm(anchor.trim_end_matches('.'));
        return (!want.is_empty())
            .then(|| headings.iter().find(|h| norm(h) == want).cloned())
            .flatten();
    }
    let t = after.trim_start_matches([' ', '\u{a0}', ':']);
    let t = t.strip_prefix('§')?.trim_start();
    let mut by_len: Vec<&String> = headings.iter().filter(|h| !h.is_empty()).collect();
    by_len.sort_by_key(|h| std::cmp::Reverse(h.len()));
    by_len
        .into_iter()
        .find(|h| {
            t.get(..h.len()).is_some_and(|p| p.eq_ignore_ascii_case(h))
                && !t[h.len()..].starts_with(|c: char| c.is_alphanumeric())
        })
        .cloned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn citations_are_known_documents_with_their_cited_section() {
        let a = "**Cause:** crash loop.\n\nRunbook: docs/runbooks/crash-loop-app-error.md § Fix. \
See also `docs/runbooks/oom-killed.md#how-to-confirm` and docs/runbooks/made-up.md, \
and again docs/runbooks/crash-loop-app-error.md § Fix.";
        let c = citations(a);
        assert_eq!(c.len(), 2, "{c:?}");
        assert_eq!(c[0].source, "docs/runbooks/crash-loop-app-error.md");
        assert_eq!(c[0].heading.as_deref(), Some("Fix"));
        assert!(!c[0].title.is_empty());
        assert_eq!(c[1].source, "docs/runbooks/oom-killed.md");
        assert_eq!(c[1].heading.as_deref(), Some("How to confirm"));
        assert!(citations("no sources here").is_empty());
        let c = citations("see docs/runbooks/oom-killed.md § Nonsense");
        assert_eq!(c[0].heading, None);
    }

    #[test]
    fn a_user_document_is_cited_only_once_kai_returned_it() {
        let src = "/srv/team/docs/runbooks/oom-killed.md";
        assert!(citations(&format!("per {src} § Fix")).is_empty());
        remember(&[Hit {
            source: src.into(),
            title: "Team OOM".into(),
            heading: "Fix".into(),
            causes: vec![],
            score: 1.0,
            snippet: String::new(),
            text: String::new(),
        }]);
        let c = citations(&format!("per {src} § Fix"));
        assert_eq!(
            c.len(),
            1,
            "the built-in path inside it is not cited: {c:?}"
        );
        assert_eq!(c[0].title, "Team OOM");
        assert_eq!(c[0].heading.as_deref(), Some("Fix"));
    }
}
