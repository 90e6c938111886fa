//! Multi-document YAML into JSON values, each with the line it starts on.
//!
//! The input is held to kai's bounds first ([`kai_text::bounded`]: 1 MiB, 64 levels),
//! since it can come from the model or from anyone's repository. Documents are split on
//! their `---`/`...` markers by hand (a marker at column 0 always ends a document, even a
//! block scalar) so every document knows its first line, and a parse error or a finding
//! can point at a line of the file rather than of the document.

use serde::Deserialize;
use serde_json::Value;

use crate::path::Path;

/// One YAML document of a file.
#[derive(Debug, Clone)]
pub struct Doc {
    /// Where it came from: a file path, `-` for stdin, `draft` for the model's.
    pub file: String,
    /// 1-based position among the file's documents (empty ones counted).
    pub index: usize,
    /// The 1-based line of the file the document's text starts on.
    pub first_line: usize,
    /// The document's text, for locating paths.
    pub text: String,
    pub value: Value,
}

impl Doc {
    pub fn kind(&self) -> &str {
        self.value.get("kind").and_then(Value::as_str).unwrap_or("")
    }

    pub fn api_version(&self) -> &str {
        self.value
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    pub fn name(&self) -> &str {
        self.value
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    pub fn namespace(&self) -> Option<&str> {
        self.value
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
    }

    /// `Deployment/web`, as findings name the object.
    pub fn label(&self) -> String {
        let name = if self.name().is_empty() {
            "(unnamed)"
        } else {
            self.name()
        };
        let kind = if self.kind().is_empty() {
            "(no kind)"
        } else {
            self.kind()
        };
        format!("{kind}/{name}")
    }

    /// The file line `path` is written on (best effort: the document's first line when the
    /// path cannot be found, e.g. in flow style).
    pub fn line_of(&self, path: &Path) -> usize {
        self.first_line + crate::locate::line_in(&self.text, path)
    }
}

/// A file that could not be parsed: the file line the parser stopped at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct ParseError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// Split `text` into (first line, document text) at document markers.
fn split_documents(text: &str) -> Vec<(usize, String)> {
    let mut docs = Vec::new();
    let mut current = String::new();
    let mut start = 1usize;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let lineno = i + 1;
        let bare = line.trim_end_matches(['\n', '\r']);
        let is_start = bare == "---" || bare.starts_with("--- ") || bare.starts_with("---\t");
        let is_end = bare == "..." || bare.starts_with("... ");
        if is_start || is_end {
            docs.push((start, std::mem::take(&mut current)));
            if is_start {
                // Content on the marker line (`--- {a: 1}`) belongs to the new document;
                // it is kept in place, with the marker blanked, so lines stay true.
                let rest = &bare[3..];
                current.push_str(&" ".repeat(3));
                current.push_str(rest);
                current.push('\n');
                start = lineno;
            } else {
                start = lineno + 1;
            }
            continue;
        }
        if current.is_empty() {
            start = lineno;
        }
        current.push_str(line);
    }
    docs.push((start, current));
    docs
}

/// The documents of one file. Empty documents (comments only, a trailing `---`) are
/// skipped; a `kind: List` is flattened into its items (which then share its lines).
pub fn parse(file: &str, text: &str) -> Result<Vec<Doc>, ParseError> {
    kai_text::bounded::check("manifest", text).map_err(|e| ParseError {
        file: file.to_string(),
        line: match e {
            kai_text::bounded::LimitError::TooDeep { line, .. } => line,
            kai_text::bounded::LimitError::TooLarge { .. } => 1,
        },
        message: e.to_string(),
    })?;
    let mut out = Vec::new();
    for (index, (first_line, chunk)) in split_documents(text).into_iter().enumerate() {
        if chunk.trim().is_empty() {
            continue;
        }
        let value = match serde_yaml::Deserializer::from_str(&chunk)
            .next()
            .map(Value::deserialize)
        {
            None => continue,
            Some(Ok(v)) => v,
            Some(Err(e)) => {
                let (line, message) = yaml_error(&e);
                return Err(ParseError {
                    file: file.to_string(),
                    line: first_line + line.saturating_sub(1),
                    message: format!("not valid YAML: {message}"),
                });
            }
        };
        let doc = |value: Value| Doc {
            file: file.to_string(),
            index: index + 1,
            first_line,
            text: chunk.clone(),
            value,
        };
        match value {
            Value::Null => {}
            Value::Object(ref m)
                if m.get("kind").and_then(Value::as_str) == Some("List")
                    && m.get("items").is_some_and(Value::is_array) =>
            {
                if let Some(items) = m.get("items").and_then(Value::as_array) {
                    out.extend(items.iter().cloned().map(doc));
                }
            }
            Value::Object(_) => out.push(doc(value)),
            _ => {
                return Err(ParseError {
                    file: file.to_string(),
                    line: first_line,
                    message: format!(
                        "document {} is not a mapping: a Kubernetes object starts with apiVersion, kind and metadata",
                        index + 1
                    ),
                })
            }
        }
    }
    Ok(out)
}

/// The document-relative line of a YAML error and its message without the location
/// (the file line is reported instead).
fn yaml_error(e: &serde_yaml::Error) -> (usize, String) {
    let line = e.location().map(|l| l.line()).unwrap_or(1);
    let text = e.to_string();
    let message = match text.find(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    };
    (line, message)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn documents_know_their_first_line() {
        let text = "# a comment\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n...\n";
        let docs = parse("f.yaml", text).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].first_line, 1);
        assert_eq!(docs[0].name(), "a");
        // The marker's line, kept blank in the document's text.
        assert_eq!(docs[1].first_line, 7);
        assert_eq!(docs[1].name(), "b");
        assert_eq!(docs[1].line_of(&Path::parse("metadata.name")), 11);
        assert_eq!(docs[1].index, 3);
    }

    #[test]
    fn errors_carry_the_file_line() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [b\n";
        let e = parse("f.yaml", text).unwrap_err();
        assert_eq!(e.file, "f.yaml");
        assert!(e.line >= 9, "{e}");
        assert!(e.to_string().starts_with("f.yaml:"), "{e}");
        assert!(!e.message.contains(" at line "), "{e}");
    }

    #[test]
    fn scalars_lists_and_bounds() {
        assert!(parse("f", "just a string\n").is_err());
        let list = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: x}\n";
        assert_eq!(parse("f", list).unwrap()[0].name(), "x");
        let deep = "[".repeat(200);
        assert!(parse("f", &deep)
            .unwrap_err()
            .message
            .contains("deeper than"));
    }
}
