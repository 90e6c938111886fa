//! Why one attempt failed, how a server's error body reads, and how the last failure
//! becomes the caller's [`LlmError`].

use std::time::Duration;

use serde_json::Value;

use crate::{redact_url, LlmError};

const EXCERPT_CHARS: usize = 200;

/// Why one attempt failed, before it is known whether it will be retried.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Failure {
    Status {
        status: u16,
        message: String,
        /// `error.code` or `error.type` from the body, e.g. `insufficient_quota`.
        code: Option<String>,
        retry_after: Option<Duration>,
    },
    /// No response: refused, reset, DNS, TLS.
    Transport(String),
    /// The body broke off after a 200.
    Stream(String),
    /// An error inside the event stream: an `{"error": ...}` object or an `error` event.
    InStream(String),
    /// No content before the idle timeout.
    Timeout(u64),
    /// Content stopped for the idle timeout after some had arrived.
    Stalled(u64),
    /// The whole answer took longer than the most one answer may take.
    TooLong(u64),
    Bad(String),
}

impl Failure {
    pub(crate) fn retry_after(&self) -> Option<Duration> {
        match self {
            Failure::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// For the retry log line: no bodies, so nothing secret or huge gets logged.
    pub(crate) fn summary(&self) -> String {
        match self {
            Failure::Status { status, .. } => format!("HTTP {status}"),
            Failure::Transport(_) => "cannot connect".into(),
            Failure::Stream(_) => "connection broke".into(),
            Failure::InStream(_) => "error event in stream".into(),
            Failure::Timeout(s) => format!("no answer in {s}s"),
            Failure::Stalled(s) => format!("no content for {s}s"),
            Failure::TooLong(s) => format!("answer longer than {s}s"),
            Failure::Bad(_) => "unreadable response".into(),
        }
    }

    /// The caller's error after `attempts` tries. Every server-provided text passes
    /// through `scrub` (which removes the key and URL secrets) on its way out.
    pub(crate) fn into_error(
        self,
        attempts: u32,
        url: &str,
        model: &str,
        scrub: impl Fn(&str) -> String,
    ) -> LlmError {
        match self {
            Failure::Status {
                status,
                message,
                code,
                ..
            } => {
                let message = scrub(&message);
                match status {
                    401 | 403 => LlmError::Auth(format!("HTTP {status}: {message}")),
                    404 => LlmError::ModelNotFound {
                        model: model.to_string(),
                        message: format!(
                            "{message} (HTTP 404 from {}; if the model exists, check that --base-url ends where the API starts, e.g. .../v1)",
                            redact_url(url)
                        ),
                    },
                    429 => LlmError::RateLimited { attempts, message },
                    400..=499 if mentions_missing_model(&message, code.as_deref()) => {
                        LlmError::ModelNotFound {
                            model: model.to_string(),
                            message,
                        }
                    }
                    400..=499 => LlmError::BadRequest { status, message },
                    500..=599 => LlmError::Server {
                        status,
                        attempts,
                        message,
                    },
                    _ => LlmError::BadResponse(format!("unexpected HTTP {status}: {message}")),
                }
            }
            Failure::InStream(message) => LlmError::Server {
                status: 500,
                attempts,
                message: format!(
                    "the server reported an error mid-stream: {}",
                    scrub(&message)
                ),
            },
            Failure::Transport(message) => LlmError::Connection {
                url: redact_url(url),
                attempts,
                message: scrub(&message),
            },
            Failure::Stream(message) => LlmError::Connection {
                url: redact_url(url),
                attempts,
                message: format!("the connection broke mid-answer: {}", scrub(&message)),
            },
            Failure::Timeout(secs) => LlmError::Timeout(secs),
            Failure::Stalled(secs) => LlmError::Stalled(secs),
            Failure::TooLong(secs) => LlmError::TooLong(secs),
            Failure::Bad(message) => LlmError::BadResponse(scrub(&message)),
        }
    }
}

/// reqwest's Display stops at the outermost error ("error sending request"); the cause
/// ("Connection refused") is in the source chain.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// A short single-line excerpt of a body for error messages.
pub(crate) fn excerpt(text: &str) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.is_empty() {
        return "(empty body)".into();
    }
    let mut out: String = one_line.chars().take(EXCERPT_CHARS).collect();
    if one_line.chars().count() > EXCERPT_CHARS {
        out.push('…');
    }
    out
}

/// [`excerpt`] of the start of raw bytes (a body that is not text, or too long to copy).
pub(crate) fn excerpt_bytes(bytes: &[u8]) -> String {
    excerpt(&String::from_utf8_lossy(
        &bytes[..bytes.len().min(EXCERPT_CHARS * 4)],
    ))
}

/// The message (and code) of an error body. Handles OpenAI's `{"error":{"message"}}`,
/// `{"error":"text"}` (Ollama, llama.cpp), `{"message"}` and `{"detail"}` (FastAPI-based
/// servers); anything else becomes an excerpt of the body.
pub(crate) fn extract_error(body: &str, status: u16) -> (String, Option<String>) {
    let fallback = || {
        let e = excerpt(body);
        if body.trim().is_empty() {
            format!("HTTP {status} with an empty body")
        } else {
            e
        }
    };
    let Ok(v) = serde_json::from_str::<Value>(body) else {
        return (fallback(), None);
    };
    let err = v.get("error").unwrap_or(&v);
    let code = ["code", "type"]
        .iter()
        .filter_map(|k| err.get(*k))
        .find_map(|c| match c {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        });
    let message = match err {
        Value::String(s) => Some(s.clone()),
        _ => ["message", "detail", "msg"]
            .iter()
            .filter_map(|k| err.get(*k))
            .find_map(|m| match m {
                Value::String(s) if !s.is_empty() => Some(s.clone()),
                Value::Null => None,
                other => Some(other.to_string()),
            }),
    };
    (message.unwrap_or_else(fallback), code)
}

pub(crate) fn mentions_missing_model(message: &str, code: Option<&str>) -> bool {
    if matches!(code, Some("model_not_found") | Some("DeploymentNotFound")) {
        return true;
    }
    let m = message.to_ascii_lowercase();
    (m.contains("model") || m.contains("deployment"))
        && [
            "does not exist",
            "not found",
            "not exist",
            "unknown model",
            "no such model",
        ]
        .iter()
        .any(|p| m.contains(p))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn error_messages_are_extracted() {
        let (m, c) = extract_error(
            r#"{"error":{"message":"Invalid model","type":"invalid_request_error","code":"model_not_found"}}"#,
            400,
        );
        assert_eq!(m, "Invalid model");
        assert_eq!(c.as_deref(), Some("model_not_found"));
        assert_eq!(
            extract_error(
                r#"{"error":"model \"x\" not found, try pulling it first"}"#,
                404
            )
            .0,
            "model \"x\" not found, try pulling it first"
        );
        assert_eq!(
            extract_error(r#"{"detail":"Not Found"}"#, 404).0,
            "Not Found"
        );
        assert_eq!(extract_error("", 502).0, "HTTP 502 with an empty body");
        assert_eq!(
            extract_error("<html>  bad\n gateway</html>", 502).0,
            "<html> bad gateway</html>"
        );
        assert!(mentions_missing_model(
            "The model `gpt-9` does not exist",
            None
        ));
        assert!(!mentions_missing_model("context length exceeded", None));
    }

    fn status(status: u16, message: &str, code: Option<&str>) -> Failure {
        Failure::Status {
            status,
            message: message.into(),
            code: code.map(str::to_string),
            retry_after: None,
        }
    }

    #[test]
    fn statuses_map_to_the_errors_front_ends_know() {
        let map = |f: Failure| f.into_error(3, "http://h/v1/chat/completions", "m", str::to_string);
        assert!(matches!(map(status(401, "no", None)), LlmError::Auth(_)));
        assert!(matches!(map(status(403, "no", None)), LlmError::Auth(_)));
        assert!(matches!(
            map(status(404, "nope", None)),
            LlmError::ModelNotFound { ref model, ref message } if model == "m" && message.contains("http://h/v1/chat/completions")
        ));
        assert!(matches!(
            map(status(429, "slow", None)),
            LlmError::RateLimited { attempts: 3, .. }
        ));
        assert!(matches!(
            map(status(400, "x", Some("DeploymentNotFound"))),
            LlmError::ModelNotFound { .. }
        ));
        assert!(matches!(
            map(status(422, "bad", None)),
            LlmError::BadRequest { status: 422, .. }
        ));
        assert!(matches!(
            map(status(503, "busy", None)),
            LlmError::Server {
                status: 503,
                attempts: 3,
                ..
            }
        ));
        assert!(matches!(
            map(status(302, "moved", None)),
            LlmError::BadResponse(_)
        ));
        assert!(matches!(
            map(Failure::InStream("x".into())),
            LlmError::Server { status: 500, .. }
        ));
        assert!(matches!(
            map(Failure::Stream("reset".into())),
            LlmError::Connection { ref message, .. } if message.contains("mid-answer")
        ));
        assert!(matches!(map(Failure::Timeout(5)), LlmError::Timeout(5)));
        assert!(matches!(map(Failure::Stalled(5)), LlmError::Stalled(5)));
        assert!(matches!(map(Failure::TooLong(9)), LlmError::TooLong(9)));
    }

    #[test]
    fn server_text_is_scrubbed_on_the_way_out() {
        let scrub = |s: &str| s.replace("sekrit", "***");
        for f in [
            status(401, "key sekrit", None),
            status(500, "key sekrit", None),
            Failure::InStream("sekrit".into()),
            Failure::Transport("sekrit".into()),
            Failure::Bad("sekrit".into()),
        ] {
            let e = f.into_error(1, "http://h/", "m", scrub);
            assert!(!format!("{e} {e:?}").contains("sekrit"), "{e:?}");
        }
    }
}
