//! Best-effort line numbers for paths in block-style YAML, without a second parser.
//!
//! serde's YAML value carries no positions, so a finding's path is looked up in the
//! document's text by indentation: a key is the next line, deeper than its parent, that
//! starts with `key:`; a list index counts the `- ` items under its key. Flow style and
//! other exotic layouts fall back to the deepest part of the path found (at worst the
//! document's first line): a line number is a convenience, the path is the truth.

use crate::path::{Path, Seg};

/// A line's content column after its indentation and any `- ` list markers, the column
/// of the first dash if any, and the content.
fn split_line(line: &str) -> (usize, Option<usize>, &str) {
    let b = line.as_bytes();
    let mut i = 0;
    let mut dash = None;
    loop {
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        if i < b.len() && b[i] == b'-' && (i + 1 == b.len() || b[i + 1] == b' ') {
            dash.get_or_insert(i);
            i += 1;
            continue;
        }
        break;
    }
    (i, dash, &line[i..])
}

fn is_blank(line: &str) -> bool {
    let t = line.trim();
    t.is_empty() || t.starts_with('#')
}

/// A line that holds content (not blank, not a comment), split as [`split_line`] does.
struct Line<'a> {
    /// 0-based line number.
    i: usize,
    col: usize,
    dash: Option<usize>,
    content: &'a str,
}

impl Line<'_> {
    /// Where the line starts: its first dash, else its content.
    fn outer(&self) -> usize {
        self.dash.unwrap_or(self.col)
    }
}

/// The lines from `start` on that hold content.
fn content_lines<'a>(lines: &'a [&'a str], start: usize) -> impl Iterator<Item = Line<'a>> {
    lines
        .iter()
        .enumerate()
        .skip(start)
        .filter(|(_, line)| !is_blank(line))
        .map(|(i, line)| {
            let (col, dash, content) = split_line(line);
            Line {
                i,
                col,
                dash,
                content,
            }
        })
}

fn starts_with_key(content: &str, key: &str) -> bool {
    for quoted in [key.to_string(), format!("\"{key}\""), format!("'{key}'")] {
        if let Some(r) = content.strip_prefix(quoted.as_str()) {
            let r = r.trim_start_matches(' ');
            if r.starts_with(':') && (r.len() == 1 || r[1..].starts_with([' ', '\t', '\r'])) {
                return true;
            }
        }
    }
    false
}

/// The 0-based line of `path` within `text`.
pub fn line_in(text: &str, path: &Path) -> usize {
    let lines: Vec<&str> = text.lines().collect();
    let root_col = content_lines(&lines, 0).next().map_or(0, |l| l.col);
    let mut found = 0usize;
    // Column of the enclosing key (content must be deeper); None at the top level.
    let mut parent: Option<usize> = None;
    // First line to look at, and whether that line itself may hold the key (right after
    // a list item's dash).
    let mut start = 0usize;
    let mut from_item = false;
    for seg in &path.0 {
        match seg {
            Seg::Key(k) => {
                let mut hit = None;
                for l in content_lines(&lines, start) {
                    // Back at the parent's column or left of it: its block ended (the
                    // item's own dash line excepted).
                    if !(from_item && l.i == start) && parent.is_some_and(|p| l.outer() <= p) {
                        break;
                    }
                    let deeper = match parent {
                        Some(p) => l.col > p,
                        None => l.col == root_col && l.dash.is_none(),
                    };
                    if deeper && starts_with_key(l.content, k) {
                        hit = Some((l.i, l.col));
                        break;
                    }
                }
                let Some((i, col)) = hit else { return found };
                found = i;
                parent = Some(col);
                start = i + 1;
                from_item = false;
            }
            Seg::Index(n) => {
                let mut count = 0usize;
                let mut item_col: Option<usize> = None;
                let mut hit = None;
                for l in content_lines(&lines, start) {
                    if parent.is_some_and(|p| l.outer() < p) {
                        break;
                    }
                    let Some(d) = l.dash else {
                        if item_col.is_some_and(|c| l.col <= c) {
                            break;
                        }
                        continue;
                    };
                    match item_col {
                        None => item_col = Some(d),
                        Some(c) if d < c => break,
                        Some(c) if d > c => continue,
                        Some(_) => {}
                    }
                    if count == *n {
                        hit = Some((l.i, d));
                        break;
                    }
                    count += 1;
                }
                let Some((i, d)) = hit else { return found };
                found = i;
                parent = Some(d);
                start = i;
                from_item = true;
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEPLOY: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  template:
    spec:
      containers:
      - name: a
        image: a:1
      # a comment
      - name: b
        image: b:latest
        ports:
          - containerPort: 80
          - containerPort: 81
      volumes:
      - name: v
";

    fn line(p: Path) -> usize {
        line_in(DEPLOY, &p) + 1
    }

    #[test]
    fn keys_and_indices_find_their_lines() {
        assert_eq!(line(Path::parse("spec.replicas")), 6);
        assert_eq!(line(Path::parse("metadata.name")), 4);
        let c = Path::parse("spec.template.spec.containers");
        assert_eq!(line(c.index(0).key("image")), 11);
        assert_eq!(line(c.index(1).key("name")), 13);
        assert_eq!(line(c.index(1).key("image")), 14);
        assert_eq!(line(c.index(1).key("ports").index(1)), 17);
        assert_eq!(line(Path::parse("spec.template.spec.volumes").index(0)), 19);
    }

    #[test]
    fn missing_parts_fall_back_to_the_deepest_found() {
        let c = Path::parse("spec.template.spec.containers");
        // containers[0] has no ports: the item's line.
        assert_eq!(line(c.index(0).key("ports")), 10);
        assert_eq!(line(Path::parse("status.replicas")), 1);
        // A key of the same name deeper in another block is not taken.
        assert_eq!(line(Path::parse("name")), 1);
    }
}
