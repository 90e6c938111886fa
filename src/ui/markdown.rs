//! Streaming Markdown to a terminal: text arrives in deltas, is buffered to whole lines,
//! and each line is styled (headings, bold, inline code, bullets, fenced code). Piped
//! output bypasses this and stays plain.

const BOLD: &str = "\x1b[1m";
const CYAN: &str = "\x1b[36m";
const DIM: &str = "\x1b[2m";
const RESET: &str = "\x1b[0m";

#[derive(Default)]
pub struct MarkdownStream {
    buf: String,
    in_fence: bool,
}

impl MarkdownStream {
    /// Feed a delta; returns the styled text of every line it completed.
    pub fn push(&mut self, delta: &str) -> String {
        self.buf.push_str(delta);
        let mut out = String::new();
        while let Some(pos) = self.buf.find('\n') {
            let line: String = self.buf.drain(..=pos).collect();
            out.push_str(&self.style_line(line.trim_end_matches('\n')));
            out.push('\n');
        }
        out
    }

    /// Styled rest of the stream (a last line without newline).
    pub fn finish(&mut self) -> String {
        if self.buf.is_empty() {
            return String::new();
        }
        let line = std::mem::take(&mut self.buf);
        let mut s = self.style_line(&line);
        s.push('\n');
        s
    }

    fn style_line(&mut self, line: &str) -> String {
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
        match (bold, code) {
            (Some(b), c) if c.is_none_or(|c| b < c) => {
                if let Some(end) = rest[b + 2..].find("**") {
                    out.push_str(&rest[..b]);
                    out.push_str(BOLD);
                    out.push_str(&rest[b + 2..b + 2 + end]);
                    out.push_str(RESET);
                    rest = &rest[b + 2 + end + 2..];
                } else {
                    out.push_str(rest);
                    break;
                }
            }
            (_, Some(c)) => {
                if let Some(end) = rest[c + 1..].find('`') {
                    out.push_str(&rest[..c]);
                    out.push_str(CYAN);
                    out.push_str(&rest[c + 1..c + 1 + end]);
                    out.push_str(RESET);
                    rest = &rest[c + 1 + end + 1..];
                } else {
                    out.push_str(rest);
                    break;
                }
            }
            _ => {
                out.push_str(rest);
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_emitted_only_when_complete() {
        let mut m = MarkdownStream::default();
        assert_eq!(m.push("**Cau"), "");
        let out = m.push("se:** boom\nnext");
        assert_eq!(out, format!("{BOLD}Cause:{RESET} boom\n"));
        assert_eq!(m.finish(), "next\n");
    }

    #[test]
    fn headings_bullets_code_and_fences() {
        let mut m = MarkdownStream::default();
        let out = m.push("## Fix\n- run `kubectl get po`\n```\nx\n```\n");
        assert!(out.contains(&format!("{BOLD}Fix{RESET}")));
        assert!(out.contains(&format!("• run {CYAN}kubectl get po{RESET}")));
        assert!(out.contains(&format!("{CYAN}x{RESET}")));
    }

    #[test]
    fn unbalanced_markers_stay_literal() {
        assert_eq!(inline("a ** b"), "a ** b");
        assert_eq!(inline("a ` b"), "a ` b");
    }
}
