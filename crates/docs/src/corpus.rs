//! Documents: the built-in runbooks, front matter, and markdown-aware chunking.

use serde::{Deserialize, Serialize};
use serde_yaml::Value;

include!(concat!(env!("OUT_DIR"), "/runbooks.rs"));

/// Where built-in runbooks live in kai's repository; a built-in chunk's `source` is
/// `docs/runbooks/<slug>.md`.
pub const BUILTIN_PREFIX: &str = "docs/runbooks/";

/// Sections longer than this many bytes are split further at paragraph boundaries, so a
/// search result (and the text handed to a model) stays short.
pub const MAX_CHUNK_BYTES: usize = 1500;

/// A document as indexed: its metadata and its chunks.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Doc {
    pub source: String,
    pub builtin: bool,
    pub title: String,
    pub causes: Vec<String>,
    pub tags: Vec<String>,
    pub chunks: Vec<Chunk>,
}

/// One section (or part of a long section) of a document.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Chunk {
    /// The section's heading text ("Fix"); empty for text before the first heading.
    pub heading: String,
    /// The section's markdown, without its heading line.
    pub text: String,
    /// Embedding of the chunk, when hybrid search computed one.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "vector_b64")]
    pub vector: Option<Vec<f32>>,
}

/// The built-in runbooks as (source, markdown) pairs, in file-name order.
pub(crate) fn builtin_files() -> impl Iterator<Item = (String, &'static str)> {
    RUNBOOKS
        .iter()
        .map(|(name, text)| (format!("{BUILTIN_PREFIX}{name}"), *text))
}

/// Front matter as read: every key optional, lenient about types.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct FrontMatter {
    pub title: Option<String>,
    pub causes: Vec<String>,
    pub tags: Vec<String>,
}

/// Splits a leading `---` … `---` block from `text`. Returns (front matter, body, warning).
/// A block that is not a YAML mapping is not front matter: the whole text is the body and
/// the warning says why.
pub(crate) fn split_front_matter(text: &str) -> (FrontMatter, &str, Option<String>) {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let Some(first_end) = text.find('\n') else {
        return (FrontMatter::default(), text, None);
    };
    if text[..first_end].trim_end() != "---" {
        return (FrontMatter::default(), text, None);
    }
    let mut pos = first_end + 1;
    let mut close = None;
    while pos < text.len() {
        let end = text[pos..].find('\n').map_or(text.len(), |i| pos + i);
        let line = text[pos..end].trim_end();
        if line == "---" || line == "..." {
            close = Some((pos, (end + 1).min(text.len())));
            break;
        }
        pos = end + 1;
    }
    let Some((yaml_end, body_start)) = close else {
        return (FrontMatter::default(), text, None);
    };
    let yaml = &text[first_end + 1..yaml_end];
    match serde_yaml::from_str::<Value>(yaml) {
        Ok(Value::Mapping(m)) => {
            let get = |k: &str| m.get(Value::String(k.to_string()));
            let fm = FrontMatter {
                title: get("title")
                    .and_then(scalar_string)
                    .filter(|t| !t.is_empty()),
                causes: get("causes").map(string_list).unwrap_or_default(),
                tags: get("tags").map(string_list).unwrap_or_default(),
            };
            (fm, &text[body_start..], None)
        }
        Ok(Value::Null) => (FrontMatter::default(), &text[body_start..], None),
        Ok(_) => (
            FrontMatter::default(),
            text,
            Some("front matter is not a YAML mapping; indexed without it".to_string()),
        ),
        Err(e) => (
            FrontMatter::default(),
            text,
            Some(format!(
                "front matter is not valid YAML ({e}); indexed without it"
            )),
        ),
    }
}

fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A YAML list of scalars, or one comma-separated string.
fn string_list(v: &Value) -> Vec<String> {
    let items: Vec<String> = match v {
        Value::Sequence(s) => s.iter().filter_map(scalar_string).collect(),
        other => scalar_string(other)
            .map(|s| s.split(',').map(|p| p.trim().to_string()).collect())
            .unwrap_or_default(),
    };
    items.into_iter().filter(|s| !s.is_empty()).collect()
}

/// Parses a markdown (or plain text) file into a document. `source` names it in results;
/// `file_name` gives the fallback title. Returns the document and an optional warning
/// (bad front matter).
pub(crate) fn parse_document(
    source: &str,
    file_name: &str,
    builtin: bool,
    text: &str,
) -> (Doc, Option<String>) {
    let (fm, body, warning) = split_front_matter(text);
    let sections = sections(body);
    let h1 = sections.h1.clone();
    let title = fm
        .title
        .or(h1)
        .unwrap_or_else(|| title_from_file_name(file_name));
    let mut chunks = Vec::new();
    for (heading, text) in sections.sections {
        for part in split_long(&text, MAX_CHUNK_BYTES) {
            chunks.push(Chunk {
                heading: heading.clone(),
                text: part,
                vector: None,
            });
        }
    }
    let doc = Doc {
        source: source.to_string(),
        builtin,
        title,
        causes: fm.causes,
        tags: fm.tags,
        chunks,
    };
    (doc, warning)
}

/// "pvc-no-storage-class.md" → "pvc no storage class".
fn title_from_file_name(name: &str) -> String {
    let stem = name.rsplit_once('.').map_or(name, |(s, _)| s);
    let t = stem.replace(['-', '_'], " ");
    let t = t.trim();
    if t.is_empty() {
        name.to_string()
    } else {
        t.to_string()
    }
}

struct Sections {
    /// The first level-1 heading, when it comes before any other section heading.
    h1: Option<String>,
    /// (heading, markdown without the heading line), in order, empty ones dropped.
    sections: Vec<(String, String)>,
}

/// An ATX heading line (`## Fix`): (level, text). Up to three spaces of indent, like
/// CommonMark; `#hashtag` is not a heading.
fn heading(line: &str) -> Option<(usize, &str)> {
    let indent = line.len() - line.trim_start_matches(' ').len();
    if indent > 3 {
        return None;
    }
    let t = &line[indent..];
    let level = t.len() - t.trim_start_matches('#').len();
    if level == 0 || level > 6 {
        return None;
    }
    let rest = &t[level..];
    if !(rest.is_empty() || rest.starts_with(' ') || rest.starts_with('\t')) {
        return None;
    }
    let text = rest.trim().trim_end_matches('#').trim_end();
    Some((level, text))
}

/// Tracks fenced code blocks (``` and ~~~) so their lines are never taken for headings.
#[derive(Default)]
struct Fence {
    open: Option<(char, usize)>,
}

impl Fence {
    /// Feeds one line; returns true when the line is inside a fence or is a fence line.
    fn step(&mut self, line: &str) -> bool {
        let t = line.trim_start();
        let marker = t.chars().next().filter(|c| *c == '`' || *c == '~');
        let run = marker.map_or(0, |m| t.len() - t.trim_start_matches(m).len());
        match (self.open, marker) {
            (None, Some(m)) if run >= 3 => {
                self.open = Some((m, run));
                true
            }
            (Some((om, olen)), Some(m)) if m == om && run >= olen && t[run..].trim().is_empty() => {
                self.open = None;
                true
            }
            (Some(_), _) => true,
            _ => false,
        }
    }
}

/// One section per level-1 or level-2 heading; deeper headings stay inside their section.
fn sections(body: &str) -> Sections {
    let mut fence = Fence::default();
    let mut h1 = None;
    let mut out: Vec<(String, String)> = Vec::new();
    let mut heading_text = String::new();
    let mut buf = String::new();
    let mut seen_section = false;
    for line in body.lines() {
        if !fence.step(line) {
            if let Some((level, text)) = heading(line) {
                if level <= 2 {
                    if level == 1 && h1.is_none() && !seen_section && !text.is_empty() {
                        // The document's title line: kept as the title, not as a section,
                        // but text under it (before the first `##`) is still indexed.
                        h1 = Some(text.to_string());
                        continue;
                    }
                    push_section(&mut out, &heading_text, &buf);
                    heading_text = text.to_string();
                    buf.clear();
                    seen_section = true;
                    continue;
                }
            }
        }
        buf.push_str(line);
        buf.push('\n');
    }
    push_section(&mut out, &heading_text, &buf);
    Sections { h1, sections: out }
}

fn push_section(out: &mut Vec<(String, String)>, heading: &str, text: &str) {
    let t = text.trim_matches(|c| c == '\n' || c == '\r');
    if t.trim().is_empty() {
        return;
    }
    out.push((heading.to_string(), t.trim_end().to_string()));
}

/// Splits `text` into parts of at most `max` bytes: at blank lines outside code fences
/// first, then at line ends, then at spaces (or anywhere on a char boundary) for a single
/// overlong line.
pub(crate) fn split_long(text: &str, max: usize) -> Vec<String> {
    if text.len() <= max {
        return vec![text.to_string()];
    }
    // Paragraphs: blank lines outside fences end them.
    let mut paras: Vec<String> = Vec::new();
    let mut fence = Fence::default();
    let mut cur = String::new();
    for line in text.lines() {
        let in_fence = fence.step(line);
        if !in_fence && line.trim().is_empty() {
            if !cur.trim().is_empty() {
                paras.push(std::mem::take(&mut cur));
            }
            cur.clear();
            continue;
        }
        cur.push_str(line);
        cur.push('\n');
    }
    if !cur.trim().is_empty() {
        paras.push(cur);
    }
    // Pieces no longer than `max`.
    let mut pieces: Vec<String> = Vec::new();
    for p in paras {
        let p = p.trim_end().to_string();
        if p.len() <= max {
            pieces.push(p);
            continue;
        }
        let mut acc = String::new();
        for line in p.lines() {
            for seg in split_line(line, max) {
                if !acc.is_empty() && acc.len() + 1 + seg.len() > max {
                    pieces.push(std::mem::take(&mut acc));
                }
                if !acc.is_empty() {
                    acc.push('\n');
                }
                acc.push_str(seg);
            }
        }
        if !acc.is_empty() {
            pieces.push(acc);
        }
    }
    // Greedy packing of pieces into parts, paragraphs separated by a blank line.
    let mut parts = Vec::new();
    let mut acc = String::new();
    for p in pieces {
        if !acc.is_empty() && acc.len() + 2 + p.len() > max {
            parts.push(std::mem::take(&mut acc));
        }
        if !acc.is_empty() {
            acc.push_str("\n\n");
        }
        acc.push_str(&p);
    }
    if !acc.trim().is_empty() {
        parts.push(acc);
    }
    parts
}

/// A single line cut into segments of at most `max` bytes, at spaces when possible.
fn split_line(line: &str, max: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = line;
    while rest.len() > max {
        let mut end = max;
        while end > 0 && !rest.is_char_boundary(end) {
            end -= 1;
        }
        if end == 0 {
            // max smaller than one char: take the char whole.
            end = rest.chars().next().map_or(rest.len(), char::len_utf8);
        }
        let cut = match rest[..end].rfind(' ') {
            Some(sp) if sp > 0 => sp,
            _ => end,
        };
        out.push(&rest[..cut]);
        rest = rest[cut..].trim_start_matches(' ');
    }
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

/// Vectors are stored as base64 of little-endian f32s: a quarter of the size of JSON
/// numbers and exact.
mod vector_b64 {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Vec<f32>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => {
                let bytes: Vec<u8> = v.iter().flat_map(|f| f.to_le_bytes()).collect();
                s.serialize_some(&STANDARD.encode(bytes))
            }
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<f32>>, D::Error> {
        let Some(s) = Option::<String>::deserialize(d)? else {
            return Ok(None);
        };
        let bytes = STANDARD
            .decode(s.as_bytes())
            .map_err(serde::de::Error::custom)?;
        if bytes.len() % 4 != 0 {
            return Err(serde::de::Error::custom(
                "vector length is not a multiple of 4 bytes",
            ));
        }
        Ok(Some(
            bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_corpus_is_compiled_in_without_readme_or_queries() {
        let files: Vec<(String, &str)> = builtin_files().collect();
        assert!(files.len() >= 40, "{} runbooks", files.len());
        assert!(files
            .iter()
            .all(|(s, _)| s.starts_with(BUILTIN_PREFIX) && s.ends_with(".md")));
        assert!(!files.iter().any(|(s, _)| s.ends_with("README.md")));
        assert!(files
            .iter()
            .any(|(s, _)| s == "docs/runbooks/oom-killed.md"));
    }

    #[test]
    fn front_matter_is_parsed() {
        let text = "---\ntitle: Pods stay Pending\ncauses: [unschedulable-taint]\ntags: [Pending, FailedScheduling, taint]\n---\n# Pods stay Pending\n\n## Fix\nAdd a toleration.\n";
        let (fm, body, warn) = split_front_matter(text);
        assert_eq!(warn, None);
        assert_eq!(fm.title.as_deref(), Some("Pods stay Pending"));
        assert_eq!(fm.causes, ["unschedulable-taint"]);
        assert_eq!(fm.tags, ["Pending", "FailedScheduling", "taint"]);
        assert!(body.starts_with("# Pods stay Pending"));
    }

    #[test]
    fn front_matter_is_lenient_about_types_and_extra_keys() {
        let text = "---\ntitle: 404\nauthor: me\ntags: a, b ,c\ncauses:\n  - x\n  - 7\n---\nbody\n";
        let (fm, body, warn) = split_front_matter(text);
        assert_eq!(warn, None);
        assert_eq!(fm.title.as_deref(), Some("404"));
        assert_eq!(fm.tags, ["a", "b", "c"]);
        assert_eq!(fm.causes, ["x", "7"]);
        assert_eq!(body, "body\n");
    }

    #[test]
    fn invalid_front_matter_is_a_warning_and_the_text_is_still_indexed() {
        let text = "---\ntitle: [unclosed\n---\n# Heading\ntext\n";
        let (doc, warn) = parse_document("/x/a.md", "a.md", false, text);
        assert!(warn.is_some_and(|w| w.contains("not valid YAML")));
        assert_eq!(doc.title, "Heading");
        assert!(!doc.chunks.is_empty());
    }

    #[test]
    fn unterminated_front_matter_is_just_text() {
        let (fm, body, warn) = split_front_matter("---\nno end\n");
        assert_eq!((fm, warn), (FrontMatter::default(), None));
        assert_eq!(body, "---\nno end\n");
    }

    #[test]
    fn document_without_front_matter_takes_its_title_from_the_h1_or_the_file_name() {
        // A user's file `/t/{name}`.
        let user_doc =
            |name: &str, text: &str| parse_document(&format!("/t/{name}"), name, false, text).0;
        let doc = user_doc(
            "x.md",
            "# Our DNS runbook\n\nintro text\n\n## Fix\nrestart coredns\n",
        );
        assert_eq!(doc.title, "Our DNS runbook");
        assert_eq!(doc.chunks.len(), 2);
        assert_eq!(doc.chunks[0].heading, "");
        assert_eq!(doc.chunks[0].text, "intro text");
        assert_eq!(doc.chunks[1].heading, "Fix");
        assert!(doc.causes.is_empty());

        let doc = user_doc("disk_full-notes.txt", "just some notes\n");
        assert_eq!(doc.title, "disk full notes");
        assert_eq!(doc.chunks.len(), 1);
    }

    #[test]
    fn one_chunk_per_section_and_fenced_hashes_are_not_headings() {
        let text = "---\ntitle: T\ncauses: [c]\ntags: [t]\n---\n# T\n\n## Symptoms\nsym\n\n## How to confirm\n```sh\n# not a heading\nkubectl get pods\n```\n### Sub heading stays inside\nmore\n\n## Fix\nfix it\n\n## Prevention\nprevent\n";
        let (doc, _) = parse_document("docs/runbooks/t.md", "t.md", true, text);
        let heads: Vec<&str> = doc.chunks.iter().map(|c| c.heading.as_str()).collect();
        assert_eq!(heads, ["Symptoms", "How to confirm", "Fix", "Prevention"]);
        assert!(doc.chunks[1].text.contains("# not a heading"));
        assert!(doc.chunks[1].text.contains("### Sub heading stays inside"));
        assert_eq!(doc.title, "T");
        assert_eq!(doc.causes, ["c"]);
    }

    #[test]
    fn long_sections_split_at_paragraphs_and_never_exceed_the_limit() {
        let para = "word ".repeat(60); // 300 bytes
        let text = (0..10)
            .map(|_| para.trim_end().to_string())
            .collect::<Vec<_>>()
            .join("\n\n");
        let parts = split_long(&text, 1000);
        assert!(parts.len() >= 3, "{}", parts.len());
        assert!(parts.iter().all(|p| p.len() <= 1000));
        // Nothing lost.
        let words: usize = parts.iter().map(|p| p.split_whitespace().count()).sum();
        assert_eq!(words, 600);
        // A single enormous line (minified JSON, a log dump) is cut too.
        let huge = "x".repeat(5000);
        let parts = split_long(&huge, 1500);
        assert!(parts.iter().all(|p| p.len() <= 1500));
        assert_eq!(parts.concat().len(), 5000);
    }

    #[test]
    fn a_fence_is_not_split_at_its_blank_lines() {
        let fence = format!("```\n{}\n\n{}\n```", "a ".repeat(100), "b ".repeat(100));
        let text = format!("{}\n\n{}\n\n{}", "p ".repeat(300), fence, "q ".repeat(300));
        let parts = split_long(&text, 700);
        assert!(
            parts
                .iter()
                .any(|p| p.contains("```\na a") && p.contains("b b")),
            "{parts:#?}"
        );
    }

    #[test]
    fn builtin_runbooks_chunk_into_their_four_sections() {
        for (source, text) in builtin_files() {
            let (doc, warn) = parse_document(&source, &source, true, text);
            assert_eq!(warn, None, "{source}");
            let heads: Vec<&str> = doc.chunks.iter().map(|c| c.heading.as_str()).collect();
            for h in ["Symptoms", "How to confirm", "Fix", "Prevention"] {
                assert!(heads.contains(&h), "{source}: {heads:?}");
            }
            assert!(doc.chunks.iter().all(|c| c.text.len() <= MAX_CHUNK_BYTES));
            assert!(!doc.tags.is_empty(), "{source}");
        }
    }

    #[test]
    fn vectors_round_trip_through_base64() {
        let c = Chunk {
            heading: "h".into(),
            text: "t".into(),
            vector: Some(vec![1.5, -0.25, 3e-7]),
        };
        let json = serde_json::to_string(&c).unwrap_or_default();
        let back: Chunk = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, c);
        let none = Chunk { vector: None, ..c };
        let json = serde_json::to_string(&none).unwrap_or_default();
        assert!(!json.contains("vector"));
    }
}
