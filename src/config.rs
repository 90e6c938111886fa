//! Settings: the config file, `KAI_*`/provider env vars and flags, merged once in
//! [`Settings::resolve`] and passed down. Nothing below this module reads the environment,
//! so tests build `Settings` directly instead of mutating the process environment.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

// The model client's settings are kai-llm's; they are merged here like every other.
pub use kai_llm::settings::{ApiKey, LlmSettings, ProviderKind};

/// The default model when nothing else says which.
pub const DEFAULT_MODEL: &str = "gpt-4o-mini";
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";
pub use kai_core::agent::DEFAULT_MAX_STEPS;
pub const DEFAULT_TOOL_OUTPUT_TOKENS: usize = 4000;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("provider profile {0:?} is not defined in the config file (known: {1})")]
    UnknownProvider(String, String),
}

/// One named provider profile in the config file. It holds the *name* of the env var
/// with the key, never the key itself, so the file can be shared.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderProfile {
    #[serde(default)]
    pub kind: ProviderKind,
    pub base_url: Option<String>,
    pub model: Option<String>,
    /// Env var holding the API key; empty string = the server needs no key.
    pub api_key_env: Option<String>,
    /// Azure only.
    pub api_version: Option<String>,
    /// USD per million prompt / completion tokens, for the cost estimate.
    pub input_price_per_mtok: Option<f64>,
    pub output_price_per_mtok: Option<f64>,
    /// Tokens the profile's model accepts (prompt and answer), when kai does not know it.
    pub context_window: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub default_provider: Option<String>,
    pub max_steps: Option<u32>,
    pub tool_output_tokens: Option<usize>,
    pub request_timeout_secs: Option<u64>,
    pub max_retries: Option<u32>,
    /// Tokens the model accepts (prompt and answer), for every model; a profile's own
    /// `context_window` wins.
    pub context_window: Option<u64>,
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderProfile>,
    /// `[lint]`: `disable = ["rule-id", ...]` for `kai lint` and `kai generate`.
    #[serde(default)]
    pub lint: LintConfig,
    /// `[docs]`: the user's documentation folders and hybrid search.
    #[serde(default)]
    pub docs: DocsConfig,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LintConfig {
    /// Rule ids turned off everywhere.
    #[serde(default)]
    pub disable: Vec<String>,
}

/// The `[docs]` table of the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocsConfig {
    /// Folders (or single files) of runbooks and notes, indexed incrementally on use.
    /// `~/` is the home folder; a relative path is relative to the config file's folder.
    #[serde(default)]
    pub paths: Vec<PathBuf>,
    /// Hybrid search: embed chunks and queries with the provider's `/embeddings` and fuse
    /// with BM25. Off by default (it sends document text to the provider).
    pub hybrid: Option<bool>,
    /// The embedding model for hybrid search (default [`DEFAULT_EMBEDDING_MODEL`]).
    pub embedding_model: Option<String>,
}

/// The embedding model hybrid search uses unless the config file names another.
pub const DEFAULT_EMBEDDING_MODEL: &str = "text-embedding-3-small";

/// Documentation search settings, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocsSettings {
    /// `docs.paths` from the config file, absolute.
    pub paths: Vec<PathBuf>,
    /// Where the docs index file is kept (`$KAI_CACHE_DIR`, `$XDG_CACHE_HOME/kai`,
    /// `~/.cache/kai`).
    pub cache_dir: PathBuf,
    pub hybrid: bool,
    pub embedding_model: String,
}

impl ConfigFile {
    pub fn load(path: &Path) -> Result<Option<ConfigFile>, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text)
                .map(Some)
                .map_err(|e| ConfigError::Parse {
                    path: path.to_path_buf(),
                    message: e.to_string(),
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(ConfigError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }
}

/// The environment as captured once at start-up.
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: BTreeMap<String, String>,
}

impl Env {
    pub fn from_process() -> Self {
        Self {
            vars: std::env::vars().collect(),
        }
    }
    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }
    /// A variable's value; empty counts as unset, as shells treat `FOO=`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// Everything the command line can say; the CLI fills it, [`Settings::resolve`] merges it.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub config_path: Option<PathBuf>,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub base_url: Option<String>,
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    pub namespace: Option<String>,
    pub max_steps: Option<u32>,
    pub tool_output_tokens: Option<usize>,
    pub read_only: bool,
    pub yes: bool,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub llm: LlmSettings,
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    pub namespace: Option<String>,
    pub max_steps: u32,
    pub tool_output_tokens: usize,
    pub read_only: bool,
    pub yes: bool,
    /// Where the audit log and sessions live (`$XDG_DATA_HOME/kai`).
    pub data_dir: PathBuf,
    /// The context window the configuration sets (profile, else file), if any.
    pub context_window: Option<u64>,
    /// Lint rules turned off by the config file's `[lint] disable`.
    pub lint_disable: Vec<String>,
    /// Documentation search: user folders, the index's cache directory, hybrid mode.
    pub docs: DocsSettings,
}

/// `$XDG_CONFIG_HOME/kai/config.toml`, falling back to `~/.config`.
pub fn default_config_path(env: &Env) -> Option<PathBuf> {
    if let Some(x) = env.get("XDG_CONFIG_HOME") {
        return Some(PathBuf::from(x).join("kai/config.toml"));
    }
    env.get("HOME")
        .map(|h| PathBuf::from(h).join(".config/kai/config.toml"))
}

/// `$KAI_CACHE_DIR`, else `$XDG_CACHE_HOME/kai`, else `~/.cache/kai`.
pub fn default_cache_dir(env: &Env) -> PathBuf {
    kai_dir(env, KaiDir::Cache)
}

/// The sorts of kai's own directories.
enum KaiDir {
    Cache,
    Data,
}

/// Where kai keeps `dir`: kai's own variable, else the XDG one's `kai` folder, else a
/// folder under `$HOME`, else (no home at all) a relative one.
fn kai_dir(env: &Env, dir: KaiDir) -> PathBuf {
    let (own, xdg, under_home, fallback) = match dir {
        KaiDir::Cache => (
            "KAI_CACHE_DIR",
            "XDG_CACHE_HOME",
            ".cache/kai",
            ".kai-cache",
        ),
        KaiDir::Data => ("KAI_DATA_DIR", "XDG_DATA_HOME", ".local/share/kai", ".kai"),
    };
    if let Some(d) = env.get(own) {
        return PathBuf::from(d);
    }
    if let Some(x) = env.get(xdg) {
        return PathBuf::from(x).join("kai");
    }
    match env.get("HOME") {
        Some(h) => PathBuf::from(h).join(under_home),
        None => PathBuf::from(fallback),
    }
}

/// A `docs.paths` entry as a path: `~/` is the home folder, and a relative path is taken
/// relative to `base` (the config file's folder), so it means the same from any working
/// directory.
pub fn resolve_docs_path(p: &Path, base: Option<&Path>, env: &Env) -> PathBuf {
    let p = match (p.strip_prefix("~").ok(), env.get("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => p.to_path_buf(),
    };
    match base {
        Some(b) if p.is_relative() => b.join(p),
        _ => p,
    }
}

/// `$KAI_DATA_DIR`, else `$XDG_DATA_HOME/kai`, else `~/.local/share/kai`.
pub fn default_data_dir(env: &Env) -> PathBuf {
    kai_dir(env, KaiDir::Data)
}

impl Settings {
    /// Merge order, weakest first: built-in defaults, config file, environment, flags.
    pub fn resolve(flags: &Overrides, env: &Env) -> Result<Settings, ConfigError> {
        let path = flags
            .config_path
            .clone()
            .or_else(|| env.get("KAI_CONFIG").map(PathBuf::from))
            .or_else(|| default_config_path(env));
        let mut file = match &path {
            Some(p) => ConfigFile::load(p)?.unwrap_or_default(),
            None => ConfigFile::default(),
        };
        let base = path.as_deref().and_then(Path::parent);
        file.docs.paths = file
            .docs
            .paths
            .iter()
            .map(|p| resolve_docs_path(p, base, env))
            .collect();
        Self::merge(file, flags, env)
    }

    pub fn merge(file: ConfigFile, flags: &Overrides, env: &Env) -> Result<Settings, ConfigError> {
        let provider_name = flags
            .provider
            .clone()
            .or_else(|| env.get("KAI_PROVIDER").map(str::to_string))
            .or_else(|| file.default_provider.clone());
        let profile = match &provider_name {
            Some(name) => match file.providers.get(name) {
                Some(p) => p.clone(),
                None => {
                    let known: Vec<&str> = file.providers.keys().map(String::as_str).collect();
                    return Err(ConfigError::UnknownProvider(
                        name.clone(),
                        if known.is_empty() {
                            "none".into()
                        } else {
                            known.join(", ")
                        },
                    ));
                }
            },
            None => ProviderProfile::default(),
        };
        let base_url = flags
            .base_url
            .clone()
            .or_else(|| env.get("OPENAI_BASE_URL").map(str::to_string))
            .or(profile.base_url.clone())
            .unwrap_or_else(|| DEFAULT_BASE_URL.to_string());
        let model = flags
            .model
            .clone()
            .or_else(|| env.get("KAI_MODEL").map(str::to_string))
            .or(profile.model.clone())
            .unwrap_or_else(|| DEFAULT_MODEL.to_string());
        let key_env = match &profile.api_key_env {
            Some(k) if k.is_empty() => None,
            Some(k) => Some(k.clone()),
            None => Some("OPENAI_API_KEY".to_string()),
        };
        let api_key = key_env.as_deref().and_then(|k| env.get(k)).map(ApiKey::new);
        let (inp, outp) = match (profile.input_price_per_mtok, profile.output_price_per_mtok) {
            (None, None) => crate::llm::pricing::known_price(&model).unzip(),
            p => p,
        };
        let llm = LlmSettings {
            provider: provider_name.unwrap_or_else(|| "default".into()),
            kind: profile.kind,
            base_url: base_url.trim_end_matches('/').to_string(),
            model,
            api_key,
            api_key_env: key_env,
            api_version: profile.api_version.clone(),
            request_timeout_secs: file.request_timeout_secs.unwrap_or(120),
            max_retries: file.max_retries.unwrap_or(4),
            retry_base_ms: 500,
            input_price_per_mtok: inp,
            output_price_per_mtok: outp,
        };
        Ok(Settings {
            llm,
            kubeconfig: flags
                .kubeconfig
                .clone()
                .or_else(|| env.get("KUBECONFIG").map(PathBuf::from)),
            context: flags.context.clone(),
            namespace: flags.namespace.clone(),
            max_steps: flags
                .max_steps
                .or_else(|| env.get("KAI_MAX_STEPS").and_then(|s| s.parse().ok()))
                .or(file.max_steps)
                .unwrap_or(DEFAULT_MAX_STEPS),
            tool_output_tokens: flags
                .tool_output_tokens
                .or(file.tool_output_tokens)
                .unwrap_or(DEFAULT_TOOL_OUTPUT_TOKENS),
            read_only: flags.read_only,
            yes: flags.yes,
            data_dir: default_data_dir(env),
            context_window: profile.context_window.or(file.context_window),
            lint_disable: file.lint.disable.clone(),
            docs: DocsSettings {
                paths: file.docs.paths.clone(),
                cache_dir: default_cache_dir(env),
                hybrid: file.docs.hybrid.unwrap_or(false),
                embedding_model: file
                    .docs
                    .embedding_model
                    .clone()
                    .filter(|m| !m.trim().is_empty())
                    .unwrap_or_else(|| DEFAULT_EMBEDDING_MODEL.to_string()),
            },
        })
    }

    /// The context window of `model`: the configured one, else the built-in one.
    pub fn context_window_for(&self, model: &str) -> Option<u64> {
        self.context_window
            .or_else(|| crate::llm::models::context_window(model))
    }

    /// The agent's request budget for `model` ([`crate::agent::budget_for_window`] of
    /// its window), or the agent's default for a model of unknown window.
    pub fn context_budget_for(&self, model: &str) -> usize {
        self.context_window_for(model).map_or_else(
            || crate::agent::AgentConfig::new(model).context_budget_tokens,
            crate::agent::budget_for_window,
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn file(text: &str) -> ConfigFile {
        toml::from_str(text).unwrap()
    }

    /// The settings of config file `f` alone: no environment, no flags.
    fn from_file(f: ConfigFile) -> Settings {
        Settings::merge(f, &Overrides::default(), &Env::default()).unwrap()
    }

    #[test]
    fn defaults_without_anything() {
        let s = from_file(ConfigFile::default());
        assert_eq!(s.llm.base_url, DEFAULT_BASE_URL);
        assert_eq!(s.llm.model, DEFAULT_MODEL);
        assert_eq!(s.max_steps, 15);
        assert!(s.llm.api_key.is_none());
        assert_eq!(s.llm.api_key_env.as_deref(), Some("OPENAI_API_KEY"));
    }

    #[test]
    fn flags_beat_env_beat_file() {
        let f = file(
            r#"
default_provider = "ollama"
max_steps = 7
[providers.ollama]
base_url = "http://localhost:11434/v1/"
model = "qwen2.5"
api_key_env = ""
"#,
        );
        let env = Env::from_pairs([("KAI_MODEL", "llama3"), ("OPENAI_API_KEY", "sk-x")]);
        let s = Settings::merge(f.clone(), &Overrides::default(), &env).unwrap();
        assert_eq!(s.llm.model, "llama3", "env beats file");
        assert_eq!(s.llm.base_url, "http://localhost:11434/v1");
        assert!(s.llm.api_key.is_none(), "profile says no key needed");
        assert_eq!(s.max_steps, 7);
        let flags = Overrides {
            model: Some("mistral".into()),
            max_steps: Some(3),
            ..Default::default()
        };
        let s = Settings::merge(f, &flags, &env).unwrap();
        assert_eq!(s.llm.model, "mistral", "flag beats env");
        assert_eq!(s.max_steps, 3);
    }

    #[test]
    fn key_comes_from_the_named_env_var() {
        let f = file(
            r#"
[providers.azure]
kind = "azure"
base_url = "https://res.openai.azure.com"
model = "gpt-4o"
api_key_env = "AZURE_OPENAI_API_KEY"
api_version = "2024-10-21"
"#,
        );
        let env = Env::from_pairs([("AZURE_OPENAI_API_KEY", "az-123"), ("OPENAI_API_KEY", "no")]);
        let flags = Overrides {
            provider: Some("azure".into()),
            ..Default::default()
        };
        let s = Settings::merge(f, &flags, &env).unwrap();
        assert_eq!(s.llm.kind, ProviderKind::Azure);
        assert_eq!(s.llm.api_key.as_ref().unwrap().expose(), "az-123");
        assert!(
            !format!("{:?}", s.llm).contains("az-123"),
            "key never printed"
        );
    }

    #[test]
    fn unknown_provider_is_a_clear_error() {
        let err = Settings::merge(
            file("[providers.a]\nmodel = \"m\"\n"),
            &Overrides {
                provider: Some("b".into()),
                ..Default::default()
            },
            &Env::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("\"b\""), "{err}");
        assert!(err.to_string().contains("known: a"), "{err}");
    }

    #[test]
    fn the_context_window_is_configured_or_known() {
        let s = from_file(ConfigFile::default());
        assert_eq!(s.context_window_for("gpt-4o-mini"), Some(128_000));
        assert_eq!(s.context_budget_for("gpt-4o-mini"), 128_000 - 16_384);
        assert_eq!(s.context_window_for("my-local-model"), None);
        let f = file("context_window = 32768\n[providers.local]\ncontext_window = 8192\n");
        let s = from_file(f.clone());
        assert_eq!(s.context_window_for("my-local-model"), Some(32_768));
        let flags = Overrides {
            provider: Some("local".into()),
            ..Default::default()
        };
        let s = Settings::merge(f, &flags, &Env::default()).unwrap();
        assert_eq!(
            s.context_window_for("gpt-4o"),
            Some(8_192),
            "the profile wins"
        );
        assert_eq!(s.context_budget_for("gpt-4o"), 8_192 - 2_048);
    }

    #[test]
    fn docs_table_paths_are_resolved_and_hybrid_is_off_by_default() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("config.toml");
        std::fs::write(
            &cfg,
            "[docs]\npaths = [\"runbooks\", \"~/notes\", \"/abs/docs\"]\n",
        )
        .unwrap();
        let env = Env::from_pairs([("HOME", "/home/u"), ("XDG_CACHE_HOME", "/c")]);
        let flags = Overrides {
            config_path: Some(cfg),
            ..Default::default()
        };
        let s = Settings::resolve(&flags, &env).unwrap();
        assert_eq!(
            s.docs.paths,
            [
                dir.path().join("runbooks"),
                PathBuf::from("/home/u/notes"),
                PathBuf::from("/abs/docs")
            ]
        );
        assert_eq!(s.docs.cache_dir, PathBuf::from("/c/kai"));
        assert!(!s.docs.hybrid);
        assert_eq!(s.docs.embedding_model, DEFAULT_EMBEDDING_MODEL);
        let env = Env::from_pairs([("KAI_CACHE_DIR", "/k"), ("HOME", "/h")]);
        assert_eq!(default_cache_dir(&env), PathBuf::from("/k"));
        let f = file("[docs]\nhybrid = true\nembedding_model = \"nomic-embed-text\"\n");
        let s = from_file(f);
        assert!(s.docs.hybrid);
        assert_eq!(s.docs.embedding_model, "nomic-embed-text");
        assert!(toml::from_str::<ConfigFile>("[docs]\npath = [\"x\"]\n").is_err());
    }

    #[test]
    fn unknown_keys_in_file_are_rejected() {
        assert!(toml::from_str::<ConfigFile>("api_key = \"sk-oops\"\n").is_err());
    }
}
