//! `POST /embeddings` on the same endpoint as the chat completions: kai's hybrid docs
//! search embeds document chunks and queries with the configured provider's model.
//!
//! A child of [`crate::openai`], so it shares the client's credentials, URL handling,
//! scrubbing and retry policy instead of keeping a second copy of them.

use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use super::{encode_error, OpenAiClient};
use crate::failure::{error_chain, excerpt, Failure};
use crate::{redact_url, LlmError};

/// Texts per request, at most: OpenAI accepts 2048 inputs, local servers often far fewer.
pub const MAX_EMBED_INPUTS: usize = 256;
/// An embeddings answer larger than this is refused (256 texts × 3072 floats as JSON is
/// about 16 MB; anything bigger is not an embeddings answer).
const MAX_EMBED_RESPONSE: usize = 32 * 1024 * 1024;

#[derive(Deserialize)]
struct EmbeddingList {
    data: Vec<EmbeddingItem>,
}

#[derive(Deserialize)]
struct EmbeddingItem {
    #[serde(default)]
    index: Option<usize>,
    embedding: Vec<f32>,
}

impl OpenAiClient {
    /// The URL embeddings for `model` are posted to: `{base}/embeddings` (a pasted
    /// `.../chat/completions` base loses that suffix first), or Azure's deployment path.
    pub fn embeddings_endpoint(&self, model: &str) -> String {
        self.operation_url(model, "embeddings")
    }

    /// One vector per text, in the order given, from embedding model `model`. Retries
    /// like a chat request; every server text in an error is scrubbed of the key.
    pub async fn embed(&self, model: &str, texts: &[String]) -> Result<Vec<Vec<f32>>, LlmError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        if texts.len() > MAX_EMBED_INPUTS {
            return Err(LlmError::BadRequest {
                status: 0,
                message: format!(
                    "{} texts in one embeddings request; at most {MAX_EMBED_INPUTS}",
                    texts.len()
                ),
            });
        }
        let url = self.embeddings_endpoint(model);
        let body = json!({"model": model, "input": texts, "encoding_format": "float"});
        let body = serde_json::to_vec(&body).map_err(encode_error)?;
        tracing::debug!(url = %redact_url(&url), model, texts = texts.len(), "posting an embeddings request");
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            // Nothing reaches the user before the whole answer: always retried.
            match self.embed_attempt(&url, &body, texts.len()).await {
                Ok(v) => return Ok(v),
                Err(f) => {
                    tokio::time::sleep(self.retry_after(f, attempts, false, &url, model)?).await
                }
            }
        }
    }

    async fn embed_attempt(
        &self,
        url: &str,
        body: &[u8],
        expected: usize,
    ) -> Result<Vec<Vec<f32>>, Failure> {
        let resp = self.post(url, body, None).await?;
        let bytes = read_capped(resp, self.request_timeout).await?;
        let list: EmbeddingList = serde_json::from_slice(&bytes).map_err(|e| {
            Failure::Bad(format!(
                "not an embeddings answer ({e}): {}",
                excerpt(&String::from_utf8_lossy(&bytes))
            ))
        })?;
        if list.data.len() != expected {
            return Err(Failure::Bad(format!(
                "{} embeddings for {expected} texts",
                list.data.len()
            )));
        }
        // Servers may answer out of order; `index` says which text each vector is for.
        let mut out: Vec<Option<Vec<f32>>> = vec![None; expected];
        for (pos, item) in list.data.into_iter().enumerate() {
            let i = item.index.unwrap_or(pos);
            match out.get_mut(i) {
                Some(slot @ None) => *slot = Some(item.embedding),
                _ => {
                    return Err(Failure::Bad(format!(
                        "embedding index {i} is out of range or repeated"
                    )))
                }
            }
        }
        Ok(out.into_iter().flatten().collect())
    }
}

/// The body, at most [`MAX_EMBED_RESPONSE`] bytes, within `timeout`.
async fn read_capped(resp: reqwest::Response, timeout: Duration) -> Result<Vec<u8>, Failure> {
    use futures::StreamExt;
    let mut stream = resp.bytes_stream();
    let mut buf = Vec::new();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Err(_) => return Err(Failure::Timeout(timeout.as_secs())),
            Ok(None) => return Ok(buf),
            Ok(Some(Err(e))) => return Err(Failure::Stream(error_chain(&e))),
            Ok(Some(Ok(b))) => {
                if buf.len() + b.len() > MAX_EMBED_RESPONSE {
                    return Err(Failure::Bad(format!(
                        "the embeddings answer is larger than {} MB",
                        MAX_EMBED_RESPONSE / (1024 * 1024)
                    )));
                }
                buf.extend_from_slice(&b);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use crate::openai::OpenAiClient;
    use crate::settings::{LlmSettings, ProviderKind};

    #[test]
    fn embeddings_endpoints() {
        let c = |base: &str| OpenAiClient::new(&LlmSettings::local(base, "m")).unwrap();
        assert_eq!(
            c("http://h:1/v1").embeddings_endpoint("e"),
            "http://h:1/v1/embeddings"
        );
        assert_eq!(
            c("http://h:1/v1/chat/completions").embeddings_endpoint("e"),
            "http://h:1/v1/embeddings"
        );
        assert_eq!(
            c("http://h:1/v1?key=abc").embeddings_endpoint("e"),
            "http://h:1/v1/embeddings?key=abc"
        );
        let mut s = LlmSettings::local("https://res.openai.azure.com/openai", "gpt");
        s.kind = ProviderKind::Azure;
        s.api_version = Some("2024-10-21".into());
        assert_eq!(
            OpenAiClient::new(&s).unwrap().embeddings_endpoint("emb"),
            "https://res.openai.azure.com/openai/deployments/emb/embeddings?api-version=2024-10-21"
        );
    }
}
