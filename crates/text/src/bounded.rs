//! Limits checked before any model- or user-supplied YAML or JSON is parsed.
//!
//! A YAML parser's time can grow with the square of the nesting depth (600 KB of `[`
//! took minutes), and a tool call's arguments are whatever the model sends. A cheap,
//! linear pre-scan refuses documents that are too large or nested too deeply, with an
//! error that says which limit and what to do.

/// The largest manifest or patch kai parses.
pub const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;
/// How deeply brackets or block indentation may nest; real manifests stay below 20.
pub const MAX_DEPTH: usize = 64;
/// Indentation beyond this many columns counts as nesting too deep for block YAML.
const MAX_INDENT: usize = 2 * MAX_DEPTH;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    #[error(
        "the {what} is {size} bytes, more than the {max} kai accepts; split it into smaller pieces"
    )]
    TooLarge {
        what: &'static str,
        size: usize,
        max: usize,
    },
    #[error("the {what} nests deeper than {max} levels (line {line}); no Kubernetes object needs that, so it was not parsed")]
    TooDeep {
        what: &'static str,
        max: usize,
        line: usize,
    },
}

/// Check `text` (a manifest, a patch, tool arguments) before parsing it.
pub fn check(what: &'static str, text: &str) -> Result<(), LimitError> {
    if text.len() > MAX_DOCUMENT_BYTES {
        return Err(LimitError::TooLarge {
            what,
            size: text.len(),
            max: MAX_DOCUMENT_BYTES,
        });
    }
    let too_deep = |line| LimitError::TooDeep {
        what,
        max: MAX_DEPTH,
        line,
    };
    // Flow nesting: brackets outside quoted strings. Quotes are tracked roughly (YAML
    // and JSON escapes both use a backslash in double quotes; single quotes double
    // themselves): a miscount can only make the scan stricter or looser by one string,
    // never slow.
    let mut depth = 0usize;
    let mut line = 1usize;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut at_line_start = true;
    let mut indent = 0usize;
    for c in text.chars() {
        if c == '\n' {
            line += 1;
            at_line_start = true;
            indent = 0;
            escaped = false;
            continue;
        }
        if at_line_start {
            if c == ' ' || c == '-' {
                indent += 1;
                if indent > MAX_INDENT {
                    return Err(too_deep(line));
                }
                continue;
            }
            at_line_start = false;
        }
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' && q == '"' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None => match c {
                '"' | '\'' => quote = Some(c),
                '[' | '{' => {
                    depth += 1;
                    if depth > MAX_DEPTH {
                        return Err(too_deep(line));
                    }
                }
                ']' | '}' => depth = depth.saturating_sub(1),
                _ => {}
            },
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_documents_pass() {
        check(
            "manifest",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, labels: {x: \"[[[[\"}}\ndata:\n  k: '{{{{'\n",
        )
        .unwrap();
        check(
            "patch",
            r#"{"spec":{"template":{"spec":{"containers":[{"name":"a"}]}}}}"#,
        )
        .unwrap();
    }

    #[test]
    fn deep_flow_nesting_is_refused_fast() {
        let deep = "[".repeat(600 * 1024);
        let t = std::time::Instant::now();
        let e = check("manifest", &deep).unwrap_err();
        assert!(matches!(e, LimitError::TooDeep { .. }), "{e}");
        assert!(t.elapsed() < std::time::Duration::from_secs(5));
        assert!(e.to_string().contains("deeper than 64"), "{e}");
        let json_deep = format!("{}{}", "{\"a\":".repeat(100), "}".repeat(100));
        assert!(check("patch", &json_deep).is_err());
    }

    #[test]
    fn deep_block_nesting_and_size_are_refused() {
        let mut yaml = String::new();
        for i in 0..200 {
            yaml.push_str(&" ".repeat(i * 2));
            yaml.push_str("a:\n");
        }
        assert!(matches!(
            check("manifest", &yaml),
            Err(LimitError::TooDeep { .. })
        ));
        let big = "a: b\n".repeat(300_000);
        assert!(matches!(
            check("manifest", &big),
            Err(LimitError::TooLarge { .. })
        ));
    }

    #[test]
    fn brackets_inside_strings_do_not_count() {
        let s = format!("key: \"{}\"\n", "[".repeat(1000));
        check("manifest", &s).unwrap();
        let s = format!("key: '{}'\n", "{".repeat(1000));
        check("manifest", &s).unwrap();
    }
}
