//! `kai docs search|index|list`, and the documentation side of an agent session: the
//! index over the built-in runbooks and the user's folders (`docs.paths`, `kai docs
//! index`), persisted in the cache directory, with hybrid search over the provider's
//! `/embeddings` when the config file turns it on.
//!
//! Nothing here runs unless a command needs it: `kai --help` never builds an index.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Result;
use async_trait::async_trait;
use serde_json::json;

use crate::app::Exit;
use crate::cli::{DocsCmd, Output};
use crate::config::Settings;
use crate::exit;
use crate::llm::openai::OpenAiClient;
use crate::tools::docs::{Docs, DocsOptions};
use crate::ui::term::for_terminal;
use kai_docs::{EmbedError, Embedder, Hit, IndexOptions, IndexReport};

/// Results `kai docs search` prints unless `-k` says otherwise.
pub const DEFAULT_K: usize = 5;

/// [`Embedder`] over the configured provider's OpenAI-compatible `/embeddings`.
pub struct LlmEmbedder {
    client: OpenAiClient,
    model: String,
    /// The endpoint (credentials removed) and model: vectors of another endpoint or model
    /// are not comparable, so a change re-embeds everything.
    id: String,
}

impl LlmEmbedder {
    pub fn new(settings: &Settings) -> Result<LlmEmbedder, String> {
        if settings.llm.api_key.is_none() && settings.llm.needs_key() {
            return Err(format!(
                "no API key for {} (set {})",
                crate::llm::redact_url(&settings.llm.base_url),
                settings
                    .llm
                    .api_key_env
                    .as_deref()
                    .unwrap_or("OPENAI_API_KEY")
            ));
        }
        let client = OpenAiClient::new(&settings.llm).map_err(|e| e.to_string())?;
        let model = settings.docs.embedding_model.clone();
        Ok(LlmEmbedder {
            id: format!("{}|{model}", crate::llm::redact_url(&settings.llm.base_url)),
            client,
            model,
        })
    }
}

#[async_trait]
impl Embedder for LlmEmbedder {
    fn model_id(&self) -> String {
        self.id.clone()
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        // Document text leaves the machine here: the same scrubbing as any model request.
        let clean: Vec<String> = texts.iter().map(|t| crate::redact::scrub(t)).collect();
        self.client
            .embed(&self.model, &clean)
            .await
            .map_err(|e| EmbedError(e.to_string()))
    }
}

/// The session's documentation index (opened on first use). Hybrid search needs a usable
/// endpoint; without one it falls back to BM25 with a warning.
pub fn session_docs(settings: &Settings) -> Arc<Docs> {
    let embedder: Option<Arc<dyn Embedder>> = if settings.docs.hybrid {
        match LlmEmbedder::new(settings) {
            Ok(e) => Some(Arc::new(e)),
            Err(why) => {
                eprintln!(
                    "kai: warning: hybrid docs search is on but {}; searching with BM25 only",
                    for_terminal(&why)
                );
                None
            }
        }
    } else {
        None
    };
    Arc::new(Docs::new(DocsOptions {
        paths: settings.docs.paths.clone(),
        cache_dir: Some(settings.docs.cache_dir.clone()),
        embedder,
    }))
}

/// Adds to each finding's `docs` the user's documents whose front matter lists its cause
/// (for `kai scan` and `kai diagnose --no-llm`). Only when the user has documents (folders
/// in the config file or a saved index): otherwise nothing is read. A failure is a warning;
/// the findings matter more.
pub async fn link_user_runbooks(settings: &Settings, findings: &mut [crate::analyze::Finding]) {
    if findings.is_empty() {
        return;
    }
    let docs = Docs::new(DocsOptions {
        paths: settings.docs.paths.clone(),
        cache_dir: Some(settings.docs.cache_dir.clone()),
        embedder: None,
    });
    if docs.dirs().is_empty() {
        return;
    }
    match docs.load().await {
        Ok(loaded) => {
            print_warnings(loaded.report.as_ref());
            for f in findings.iter_mut() {
                for source in loaded.index.sources_for_cause(f.cause.as_str()) {
                    if !source.starts_with(kai_docs::BUILTIN_PREFIX) && !f.docs.contains(&source) {
                        f.docs.push(source);
                    }
                }
            }
        }
        Err(e) => eprintln!(
            "kai: warning: your runbooks are not linked: {}",
            for_terminal(&e.to_string())
        ),
    }
}

pub async fn dispatch(cmd: DocsCmd, settings: &Settings, output: Output) -> Result<i32> {
    match cmd {
        DocsCmd::Search { query, k } => search(settings, &query.join(" "), k, output).await,
        DocsCmd::Index { dirs } => index(settings, &dirs, output).await,
        DocsCmd::List => list(settings, output).await,
    }
}

fn print_warnings(report: Option<&IndexReport>) {
    for w in report.iter().flat_map(|r| &r.warnings) {
        eprintln!("kai: warning: {}", for_terminal(&w.to_string()));
    }
}

fn index_failed(e: kai_docs::DocsError) -> anyhow::Error {
    Exit::new(exit::INTERNAL, format!("docs index: {e}")).into()
}

/// `hits` as text: title, section and source, then the snippet, each made safe for a
/// terminal (user documents are text from anywhere).
pub fn render_hits(hits: &[Hit]) -> String {
    if hits.is_empty() {
        return "No matching runbook or document.\n".to_string();
    }
    let mut out = String::new();
    for (i, h) in hits.iter().enumerate() {
        let heading = if h.heading.is_empty() {
            String::new()
        } else {
            format!(" § {}", h.heading)
        };
        out.push_str(&for_terminal(&format!(
            "{}. {}{heading}  ({}, score {:.2})\n",
            i + 1,
            h.title,
            h.source,
            h.score
        )));
        if !h.snippet.is_empty() {
            out.push_str(&for_terminal(&format!("   {}\n", h.snippet)));
        }
    }
    out
}

/// A search as text, for front ends that are not `kai docs search` (the REPL's
/// `/docs QUERY`): the results or the reason there are none.
pub async fn search_text(docs: &Docs, query: &str, k: usize) -> String {
    match docs.search(query, k).await {
        Ok(hits) => render_hits(&hits),
        Err(e) => for_terminal(&format!("docs search failed: {e}\n")),
    }
}

async fn search(settings: &Settings, query: &str, k: usize, output: Output) -> Result<i32> {
    if query.trim().is_empty() {
        return Err(Exit::new(
            exit::USAGE,
            "empty query: kai docs search \"what to look for\" (an error message, a symptom, a kind)",
        )
        .into());
    }
    let docs = session_docs(settings);
    let loaded = docs.load().await.map_err(index_failed)?;
    print_warnings(loaded.report.as_ref());
    let hits = docs.search(query, k).await.map_err(index_failed)?;
    match output {
        Output::Json => println!("{}", crate::ui::json::pretty(&json!({ "results": hits }))),
        // -o sarif and -o yaml are refused for this command when the flags are parsed.
        Output::Text | Output::Sarif | Output::Yaml => print!("{}", render_hits(&hits)),
    }
    Ok(exit::OK)
}

/// `path` made absolute against the working directory, so the index means the same
/// folder from anywhere.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

async fn index(settings: &Settings, given: &[PathBuf], output: Output) -> Result<i32> {
    // Folders named on the command line must exist: a typo is an error, not a warning
    // buried under an otherwise successful run.
    for d in given {
        if let Err(e) = std::fs::metadata(d) {
            let why = if e.kind() == std::io::ErrorKind::NotFound {
                "no such file or folder".to_string()
            } else {
                format!("cannot read it ({e})")
            };
            return Err(Exit::new(exit::USAGE, format!("{}: {why}", d.display())).into());
        }
    }
    let docs = session_docs(settings);
    // The folders given replace those of the last run; `docs.paths` is always in. With
    // none given, the recorded folders are brought up to date.
    let mut dirs: Vec<PathBuf> = if given.is_empty() {
        docs.dirs()
    } else {
        given.iter().map(|d| absolute(d)).collect()
    };
    dirs.extend(settings.docs.paths.iter().cloned());
    dirs.sort();
    dirs.dedup();
    let opts = IndexOptions::new(&settings.docs.cache_dir);
    let report = match &docs.options().embedder {
        Some(e) => kai_docs::index_dirs_hybrid(&dirs, &opts, e.as_ref())
            .await
            .map_err(index_failed)?,
        None => {
            let (d, o) = (dirs.clone(), opts.clone());
            tokio::task::spawn_blocking(move || kai_docs::index_dirs_with(&d, &o))
                .await?
                .map_err(index_failed)?
        }
    };
    print_warnings(Some(&report));
    match output {
        Output::Json => println!("{}", crate::ui::json::pretty(&report)),
        Output::Text | Output::Sarif | Output::Yaml => {
            print!("{}", for_terminal(&index_summary(&report)))
        }
    }
    Ok(if report.warnings.is_empty() {
        exit::OK
    } else {
        exit::PROBLEMS_FOUND
    })
}

fn index_summary(r: &IndexReport) -> String {
    let user = r.reindexed.len() + r.reused.len();
    let mut s = format!(
        "Indexed {} documents ({} chunks): {} built-in runbooks and {user} of your files.\n",
        r.documents,
        r.chunks,
        r.documents.saturating_sub(user),
    );
    s.push_str(&format!(
        "  read: {}  unchanged: {}  removed: {}",
        r.reindexed.len(),
        r.reused.len(),
        r.removed.len()
    ));
    if r.embedded_chunks > 0 {
        s.push_str(&format!("  embedded chunks: {}", r.embedded_chunks));
    }
    if !r.warnings.is_empty() {
        s.push_str(&format!("  skipped or failed: {}", r.warnings.len()));
    }
    s.push('\n');
    for d in &r.dirs {
        s.push_str(&format!("  folder: {}\n", d.display()));
    }
    s.push_str(&format!(
        "  index: {}{}\n",
        r.index_file.display(),
        if r.saved { "" } else { " (unchanged)" }
    ));
    s
}

async fn list(settings: &Settings, output: Output) -> Result<i32> {
    let docs = session_docs(settings);
    let loaded = docs.load().await.map_err(index_failed)?;
    print_warnings(loaded.report.as_ref());
    let sources = loaded.index.sources();
    match output {
        Output::Json => println!(
            "{}",
            crate::ui::json::pretty(&json!({
                "index_file": settings.docs.cache_dir.join(kai_docs::INDEX_FILE),
                "dirs": loaded.dirs,
                "hybrid": loaded.index.is_hybrid(),
                "documents": sources,
            }))
        ),
        Output::Text | Output::Sarif | Output::Yaml => {
            let user = sources.iter().filter(|s| !s.builtin).count();
            let mut out = format!(
                "{} documents: {} built-in runbooks, {user} of your files{}.\n",
                sources.len(),
                sources.len() - user,
                if loaded.index.is_hybrid() {
                    " (hybrid search)"
                } else {
                    ""
                }
            );
            for d in &loaded.dirs {
                out.push_str(&format!("folder: {}\n", d.display()));
            }
            for s in &sources {
                let causes = if s.causes.is_empty() {
                    String::new()
                } else {
                    format!("  [{}]", s.causes.join(", "))
                };
                out.push_str(&format!(
                    "  {:<8} {}  {}{causes}\n",
                    if s.builtin { "built-in" } else { "yours" },
                    s.source,
                    s.title
                ));
            }
            print!("{}", for_terminal(&out));
        }
    }
    Ok(exit::OK)
}
