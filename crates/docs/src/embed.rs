//! Hybrid search: the embedder the caller provides, and vector helpers.

/// Error from an [`Embedder`]: a message for the user ("HTTP 401 from /v1/embeddings").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EmbedError(pub String);

impl From<String> for EmbedError {
    fn from(s: String) -> Self {
        EmbedError(s)
    }
}

impl From<&str> for EmbedError {
    fn from(s: &str) -> Self {
        EmbedError(s.to_string())
    }
}

/// Turns texts into dense vectors for hybrid search. The caller implements it (kai: over
/// the configured provider's OpenAI-compatible `/v1/embeddings`).
///
/// Vectors of different models are not comparable: [`Embedder::model_id`] is stored with
/// the index, and a different id re-embeds every chunk. Within one model, only chunks whose
/// text changed are embedded again.
#[async_trait::async_trait]
pub trait Embedder: Send + Sync {
    /// Identifies the model (and anything else that changes the vectors), e.g.
    /// `"openai:text-embedding-3-small"`.
    fn model_id(&self) -> String;

    /// One vector per text, in order, all of the same dimension.
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError>;

    /// How many texts to send per [`Embedder::embed`] call while indexing.
    fn batch_size(&self) -> usize {
        32
    }
}

/// Scales `v` to unit length (a zero vector stays zero).
pub(crate) fn normalize(v: &mut [f32]) {
    let n: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 && n.is_finite() {
        v.iter_mut().for_each(|x| *x /= n);
    }
}

/// Cosine similarity of two unit vectors (their dot product); `None` when the dimensions
/// differ (vectors of another model) or the result is not a number.
pub(crate) fn cosine(a: &[f32], b: &[f32]) -> Option<f32> {
    if a.len() != b.len() || a.is_empty() {
        return None;
    }
    let d: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    d.is_finite().then_some(d)
}

/// The text embedded for a chunk: its document title and heading give it context.
pub(crate) fn chunk_embed_text(title: &str, heading: &str, text: &str) -> String {
    format!("{title}\n{heading}\n\n{text}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_of_normalized_vectors() {
        let mut a = vec![3.0, 4.0];
        normalize(&mut a);
        assert!((a[0] - 0.6).abs() < 1e-6);
        let mut b = vec![0.0, 2.0];
        normalize(&mut b);
        assert!((cosine(&a, &b).unwrap_or(0.0) - 0.8).abs() < 1e-6);
        assert_eq!(cosine(&a, &[1.0]), None);
        let mut z = vec![0.0, 0.0];
        normalize(&mut z);
        assert_eq!(z, [0.0, 0.0]);
    }
}
