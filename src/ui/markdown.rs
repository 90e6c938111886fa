//! Markdown on a terminal: each whole line of the answer is styled (headings, bold,
//! inline code, bullets, fenced code), remembering whether a fence is open. The human
//! sink buffers the streamed deltas into whole, sanitised lines first. Piped output
//! bypasses this and stays plain.

const BOLD: &str = "\x1b[1m";
const CYAN: &str = "\x1b[36m";
const DIM: &str = "\x1b[2m";
const RESET: &str = "\x1b[0m";

#[derive(Default)]
pub struct MarkdownStream {
    in_fence: bool,
}

impl MarkdownStream {
    /// Style one whole line (without its newline). The line must already be safe for a
    /// terminal ([`crate::ui::term::LineGate`] hands out such lines): the escape codes
    /// added here are then the only ones in the output.
    pub fn line(&mut self, line: &str) -> String {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") {
            self.in_fence = !self.in_fence;
            return format!("{DIM}{line}{RESET}");
        }
        if self.in_fence {
            return format!("{CYAN}{line}{RESET}");
        }
        if let Some(h) = trimmed.strip_prefix('#') {
            let text = h.trim_start_matches('#').trim();
            return format!("{BOLD}{text}{RESET}");
        }
        let (indent, body) = line.split_at(line.len() - trimmed.len());
        let body = if let Some(rest) = body.strip_prefix("- ").or_else(|| body.strip_prefix("* ")) {
            format!("• {}", inline(rest))
        } else {
            inline(body)
        };
        format!("{indent}{body}")
    }
}

/// `**bold**` and `` `code` `` within a line.
pub fn inline(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    let mut rest = s;
    loop {
        let bold = rest.find("**");
        let code = rest.find('`');
        let styled = match (bold, code) {
            (Some(b), c) if c.is_none_or(|c| b < c) => styled(&mut out, rest, b, "**", BOLD),
            (_, Some(c)) => styled(&mut out, rest, c, "`", CYAN),
            _ => None,
        };
        match styled {
            Some(after) => rest = after,
            None => {
                out.push_str(rest);
                break;
            }
        }
    }
    out
}

/// The span of `rest` that `delim` opens at `at` and the next `delim` closes, written to
/// `out` in `style` after the text before it; what follows the span. None when the span
/// is not closed (then nothing is written).
fn styled<'a>(
    out: &mut String,
    rest: &'a str,
    at: usize,
    delim: &str,
    style: &str,
) -> Option<&'a str> {
    let inner = at + delim.len();
    let end = inner + rest[inner..].find(delim)?;
    out.push_str(&rest[..at]);
    out.push_str(style);
    out.push_str(&rest[inner..end]);
    out.push_str(RESET);
    Some(&rest[end + delim.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(text: &str) -> String {
        let mut m = MarkdownStream::default();
        text.lines().map(|l| m.line(l) + "\n").collect()
    }

    #[test]
    fn bold_in_a_line() {
        let mut m = MarkdownStream::default();
        assert_eq!(
            m.line("**Cause:** boom"),
            format!("{BOLD}Cause:{RESET} boom")
        );
        assert_eq!(m.line("next"), "next");
    }

    #[test]
    fn headings_bullets_code_and_fences() {
        let out = render("## Fix\n- run `kubectl get po`\n```\nx\n```\nafter");
        assert!(out.contains(&format!("{BOLD}Fix{RESET}")));
        assert!(out.contains(&format!("• run {CYAN}kubectl get po{RESET}")));
        assert!(out.contains(&format!("{CYAN}x{RESET}")));
        assert!(out.ends_with("after\n"), "the fence closed: {out:?}");
    }

    #[test]
    fn sanitised_text_keeps_its_visible_escapes_and_gets_kais_styles() {
        let line = crate::ui::term::sanitize("**title \x1b]0;pwned\x07**").into_owned();
        let out = MarkdownStream::default().line(&line);
        assert_eq!(out, format!("{BOLD}title ^[]0;pwned^G{RESET}"));
    }

    #[test]
    fn unbalanced_markers_stay_literal() {
        assert_eq!(inline("a ** b"), "a ** b");
        assert_eq!(inline("a ` b"), "a ` b");
    }
}
