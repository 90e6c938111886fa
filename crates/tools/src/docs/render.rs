//! What `search_docs` answers: ranked hits, or a cause's runbook section, as bounded
//! excerpts. Pure text.

use super::*;

pub(super) fn render_hits(query: &str, hits: &[Hit], hybrid: bool) -> String {
    let q = cut(query, ECHO_BYTES);
    if hits.is_empty() {
        return format!(
            "No runbook or document matches {q:?}. Try the exact error message, the resource kind, or fewer words."
        );
    }
    let how = if hybrid {
        "BM25 fused with embeddings"
    } else {
        "BM25"
    };
    let mut out = format!(
        "{} best-matching documents for {q:?} ({how}, best first):\n",
        hits.len()
    );
    for (i, h) in hits.iter().enumerate() {
        let budget = if i == 0 {
            FIRST_EXCERPT_BYTES
        } else {
            EXCERPT_BYTES
        };
        out.push_str(&format!(
            "\n{}. {} § {}\n   source: {} | causes: {} | score: {:.3}\n{}\n",
            i + 1,
            h.title,
            heading_or_intro(&h.heading),
            h.source,
            if h.causes.is_empty() {
                "-".to_string()
            } else {
                h.causes.join(", ")
            },
            h.score,
            indent(&excerpt(&h.text, budget)),
        ));
    }
    out.push_str("\nCite a document you use as `<source> § <section>`.");
    out
}

/// A cause's runbook sections. One section (what pre-gathering asks for) is fitted whole
/// into [`PREGATHER_RUNBOOK_BYTES`]; several get [`FIRST_EXCERPT_BYTES`] each.
pub(super) fn render_cause(code: &str, hits: &[Hit]) -> String {
    let header = |h: &Hit| {
        format!(
            "Runbook for cause {}: {} ({})\n",
            cut(code, ECHO_BYTES),
            h.title,
            h.source
        )
    };
    let cite = |h: &Hit| {
        format!(
            "Cite it as `{} § {}`.",
            h.source,
            heading_or_intro(&h.heading)
        )
    };
    let mut out = String::new();
    for (i, h) in hits.iter().enumerate() {
        if i == 0 || hits[i - 1].source != h.source {
            out.push_str(&header(h));
        }
        let section = format!("§ {}\n", heading_or_intro(&h.heading));
        let budget = if hits.len() == 1 {
            let fixed = header(h).len() + section.len() + cite(h).len() + 1;
            PREGATHER_RUNBOOK_BYTES.saturating_sub(fixed)
        } else {
            FIRST_EXCERPT_BYTES
        };
        out.push_str(&section);
        out.push_str(&excerpt(&h.text, budget));
        out.push('\n');
    }
    if let Some(h) = hits.first() {
        out.push_str(&cite(h));
    }
    out
}

pub(super) fn heading_or_intro(h: &str) -> &str {
    if h.is_empty() {
        "Introduction"
    } else {
        h
    }
}

pub(super) fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("   {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// At most `max` bytes of `text`, cut after the last whole line (or word) that fits, with
/// a marker saying more exists.
pub fn excerpt(text: &str, max: usize) -> String {
    let text = text.trim();
    if text.len() <= max {
        return text.to_string();
    }
    const MARK: &str = " […]";
    let head = cut(text, max.saturating_sub(MARK.len()));
    let end = head
        .rfind('\n')
        .filter(|&i| i > head.len() / 2)
        .or_else(|| head.rfind(' ').filter(|&i| i > head.len() / 2))
        .unwrap_or(head.len());
    format!("{}{MARK}", head[..end].trim_end())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_end_at_a_line_or_word_with_a_marker() {
        assert_eq!(excerpt("short", 100), "short");
        let long = "line one is here\nline two is here\nline three is longer than that";
        let e = excerpt(long, 40);
        assert!(e.len() <= 40, "{e}");
        assert!(e.ends_with(" […]"), "{e}");
        assert!(e.starts_with("line one is here\nline two"), "{e}");
        let e = excerpt(&"é".repeat(100), 21);
        assert!(e.len() <= 21 && e.ends_with("[…]"), "{e}");
    }
}
