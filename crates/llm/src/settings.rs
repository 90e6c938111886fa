//! What the model client needs to know, as merged by the front end's configuration
//! (the config file, `KAI_*`/provider env vars and flags).

use serde::Deserialize;

/// Which wire dialect the provider speaks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// OpenAI and every OpenAI-compatible server (Ollama, llama.cpp, vLLM, LM Studio, Gemini).
    #[default]
    Openai,
    /// Azure OpenAI: deployment in the path, `api-version` query, `api-key` header.
    Azure,
}

/// A secret string that never prints itself.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

#[derive(Debug, Clone)]
pub struct LlmSettings {
    pub provider: String,
    pub kind: ProviderKind,
    pub base_url: String,
    pub model: String,
    pub api_key: Option<ApiKey>,
    /// The env var the key should come from, for the "missing key" message.
    pub api_key_env: Option<String>,
    pub api_version: Option<String>,
    pub request_timeout_secs: u64,
    pub max_retries: u32,
    /// Base delay of the exponential backoff, in milliseconds.
    pub retry_base_ms: u64,
    pub input_price_per_mtok: Option<f64>,
    pub output_price_per_mtok: Option<f64>,
}

impl LlmSettings {
    /// Settings for a server on `base_url` that needs no key (tests, local servers).
    pub fn local(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            provider: "local".into(),
            kind: ProviderKind::Openai,
            base_url: base_url.into(),
            model: model.into(),
            api_key: None,
            api_key_env: None,
            api_version: None,
            request_timeout_secs: 120,
            max_retries: 4,
            retry_base_ms: 500,
            input_price_per_mtok: None,
            output_price_per_mtok: None,
        }
    }
    /// Whether this endpoint is one that needs a key (the real OpenAI or Azure).
    pub fn needs_key(&self) -> bool {
        self.kind == ProviderKind::Azure || self.base_url.contains("api.openai.com")
    }
}
