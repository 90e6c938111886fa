//! Troubleshooting knowledge for the agent: the `search_docs` read tool over the built-in
//! runbooks and the user's folders (kai-docs), the runbook section pre-gathering adds for
//! the top finding's cause, and the citations of an answer.
//!
//! [`Docs`] is one session's view of the index: opened lazily on first use (so no command
//! that never searches pays for it), then shared by the tool, the pre-gatherer and the
//! front ends (`kai docs ...`, the REPL).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use kai_analyze::Cause;
use kai_core::agent::{Gathered, Gatherer};
use kai_core::tools::{handler, CallCtx, Registry, RegistryError, Tool, ToolError, TurnId};
use kai_docs::{DocsError, Embedder, Hit, Index, IndexOptions, IndexReport};
use kai_text::cut;

mod cite;
mod gather;
mod render;

use cite::remember;
pub use cite::*;
pub use gather::*;
pub use render::excerpt;
use render::{render_cause, render_hits};

/// The tool's name, described in `tools/search_docs.md`.
pub const TOOL: &str = "search_docs";
/// Results per query unless the model asks for another number.
pub const DEFAULT_LIMIT: usize = 3;
/// Most results (or sections of a cause's runbook) one call returns.
pub const MAX_LIMIT: usize = 10;
/// Excerpt of the best result's section, in bytes; later results get [`EXCERPT_BYTES`].
pub const FIRST_EXCERPT_BYTES: usize = 700;
pub const EXCERPT_BYTES: usize = 350;
/// The whole runbook context pre-gathering adds for a diagnosis, in bytes: the first
/// request must stay small (a diagnosis is one or two round trips on an 8 KB budget).
pub const PREGATHER_RUNBOOK_BYTES: usize = crate::gather::CONTEXT_BUDGET.runbook;
/// A query echoed in a result header is cut to this many bytes.
const ECHO_BYTES: usize = 120;

/// Where the index comes from, for one session.
#[derive(Clone, Default)]
pub struct DocsOptions {
    /// `docs.paths` from the config file (absolute).
    pub paths: Vec<PathBuf>,
    /// The cache directory holding the index file; `None`: built-in runbooks only, no
    /// disk access at all.
    pub cache_dir: Option<PathBuf>,
    /// Hybrid search (BM25 fused with embeddings) when set.
    pub embedder: Option<Arc<dyn Embedder>>,
}

/// An opened index and how it was opened.
pub struct Loaded {
    pub index: Arc<Index>,
    /// The folders indexed (the built-in runbooks are always in).
    pub dirs: Vec<PathBuf>,
    /// What syncing the user folders did; `None` for the built-in runbooks alone.
    pub report: Option<IndexReport>,
}

/// One session's documentation index, opened on first use.
pub struct Docs {
    opts: DocsOptions,
    loaded: tokio::sync::OnceCell<Loaded>,
}

impl std::fmt::Debug for Docs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Docs")
            .field("paths", &self.opts.paths)
            .field("cache_dir", &self.opts.cache_dir)
            .field("hybrid", &self.opts.embedder.is_some())
            .finish()
    }
}

impl Docs {
    pub fn new(opts: DocsOptions) -> Self {
        Docs {
            opts,
            loaded: tokio::sync::OnceCell::new(),
        }
    }

    /// The built-in runbooks only (tests, and sessions without a cache directory).
    pub fn builtin() -> Self {
        Docs::new(DocsOptions::default())
    }

    pub fn options(&self) -> &DocsOptions {
        &self.opts
    }

    /// The folders the index covers: those the last `kai docs index` recorded in the index
    /// file, plus `docs.paths`; sorted, so the same set always compares equal.
    pub fn dirs(&self) -> Vec<PathBuf> {
        let mut dirs = self.opts.paths.clone();
        if let Some(cache) = &self.opts.cache_dir {
            // A missing, corrupt or foreign index file records no folders; opening it
            // reports and rebuilds it.
            dirs.extend(kai_docs::stored_dirs(cache).unwrap_or_default());
        }
        dirs.sort();
        dirs.dedup();
        dirs
    }

    /// Opens the index (once per session): the built-in runbooks when there are no user
    /// folders, no saved index and no hybrid search (nothing is read or written), else the
    /// persisted index brought up to date. Per-file
    /// problems are in the report's warnings, and logged.
    pub async fn load(&self) -> Result<&Loaded, DocsError> {
        self.loaded.get_or_try_init(|| self.open()).await
    }

    async fn open(&self) -> Result<Loaded, DocsError> {
        let dirs = self.dirs();
        let (index, report) = match (&self.opts.cache_dir, &self.opts.embedder) {
            (Some(cache), Some(embedder)) => {
                let opts = IndexOptions::new(cache);
                let (i, r) = Index::open_hybrid(&dirs, &opts, embedder.as_ref()).await?;
                (i, Some(r))
            }
            // A saved index is opened even without folders: a corrupt one is then
            // reported and rebuilt rather than silently ignored.
            (Some(cache), None)
                if !dirs.is_empty() || cache.join(kai_docs::INDEX_FILE).exists() =>
            {
                let (d, c) = (dirs.clone(), cache.clone());
                // Walking and hashing folders is blocking file I/O.
                let (i, r) = tokio::task::spawn_blocking(move || Index::open(&d, &c))
                    .await
                    .map_err(|e| DocsError::Embed(format!("indexing task failed: {e}")))??;
                (i, Some(r))
            }
            _ => (Index::builtin()?, None),
        };
        if let Some(r) = &report {
            for w in &r.warnings {
                tracing::warn!("docs: {w}");
            }
        }
        Ok(Loaded {
            index: Arc::new(index),
            dirs,
            report,
        })
    }

    /// Whether searches fuse BM25 with embeddings.
    pub fn is_hybrid(&self) -> bool {
        self.opts.embedder.is_some()
    }

    /// The `k` best documents for `query`, each as its best section. Hybrid when
    /// configured; an embedding failure falls back to BM25 (logged), since an answer from
    /// one ranking beats none.
    pub async fn search(&self, query: &str, k: usize) -> Result<Vec<Hit>, DocsError> {
        let loaded = self.load().await?;
        let hits = match &self.opts.embedder {
            Some(e) if loaded.index.is_hybrid() => {
                match loaded.index.search_hybrid(query, k, e.as_ref()).await {
                    Ok(h) => h,
                    Err(err) => {
                        tracing::warn!("docs: {err}; searching with BM25 only");
                        loaded.index.search(query, k)
                    }
                }
            }
            _ => loaded.index.search(query, k),
        };
        remember(&hits);
        Ok(hits)
    }

    /// Up to `n` sections of the runbooks for cause `code`, most useful first (a team's
    /// own runbook for the cause before kai's).
    pub async fn for_cause(&self, code: &str, n: usize) -> Result<Vec<Hit>, DocsError> {
        let loaded = self.load().await?;
        let mut hits = loaded.index.sections_for_cause(code);
        hits.truncate(n);
        remember(&hits);
        Ok(hits)
    }
}

/// `search_docs` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchArgs {
    // What to look for, in plain words or a pasted error message (the tool's
    // description says so: no per-field text, it would be sent with every request).
    pub query: Option<String>,
    // A cause code from analyze's findings; returns that cause's runbook instead.
    pub cause: Option<String>,
    /// 1-10, default 3.
    pub limit: Option<u64>,
}

/// The `search_docs` tool over one session's [`Docs`].
pub struct SearchDocs {
    docs: Arc<Docs>,
}

impl SearchDocs {
    pub fn new(docs: Arc<Docs>) -> Self {
        SearchDocs { docs }
    }
}

#[async_trait]
impl Tool for SearchDocs {
    type Args = SearchArgs;
    fn name(&self) -> &'static str {
        TOOL
    }
    fn description(&self) -> &'static str {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tools/search_docs.md"
        ))
    }
    fn is_mutating(&self) -> bool {
        false
    }
    async fn call(&self, _ctx: &CallCtx, args: SearchArgs) -> Result<String, ToolError> {
        search(&self.docs, args).await
    }
}

/// Registers `search_docs` over `docs`.
pub fn register(r: &mut Registry, docs: Arc<Docs>) -> Result<(), RegistryError> {
    r.register(handler(SearchDocs::new(docs)))
}

/// What `search_docs` returns for `args`: the tool's body, shared with pre-gathering so
/// the model sees exactly what the same call would return.
pub async fn run(docs: &Docs, args: Value) -> Result<String, ToolError> {
    let a: SearchArgs = serde_json::from_value(args).map_err(|e| {
        ToolError::Model(format!(
            "invalid arguments for {TOOL}: {e}; send a JSON object matching the tool's schema"
        ))
    })?;
    search(docs, a).await
}

/// The tool's body over parsed arguments.
async fn search(docs: &Docs, a: SearchArgs) -> Result<String, ToolError> {
    let limit = a.limit.map(|l| (l as usize).clamp(1, MAX_LIMIT));
    let query = a.query.as_deref().map(str::trim).filter(|q| !q.is_empty());
    let cause = a.cause.as_deref().map(str::trim).filter(|c| !c.is_empty());
    let failed = |e: DocsError| ToolError::Model(format!("the documentation index failed: {e}"));
    match (cause, query) {
        (Some(code), _) => {
            let hits = docs
                .for_cause(code, limit.unwrap_or(1))
                .await
                .map_err(failed)?;
            if hits.is_empty() {
                return Ok(format!(
                    "No runbook lists the cause code {:?}. Search with `query` instead.",
                    cut(code, ECHO_BYTES)
                ));
            }
            Ok(render_cause(code, &hits))
        }
        (None, Some(q)) => {
            let hits = docs
                .search(q, limit.unwrap_or(DEFAULT_LIMIT))
                .await
                .map_err(failed)?;
            Ok(render_hits(q, &hits, docs.is_hybrid()))
        }
        (None, None) => Err(ToolError::Model(format!(
            "{TOOL} needs a `query` (or a `cause` code from analyze's findings)"
        ))),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_query_returns_bounded_excerpts_with_title_section_source_and_score() {
        let docs = Docs::builtin();
        let out = run(
            &docs,
            json!({"query": "Back-off restarting failed container, exit code 1", "limit": 2}),
        )
        .await
        .unwrap();
        assert!(out.starts_with("2 best-matching documents"), "{out}");
        assert!(out.contains("source: docs/runbooks/"), "{out}");
        assert!(out.contains("score: "), "{out}");
        assert!(
            out.len() <= 400 + FIRST_EXCERPT_BYTES + EXCERPT_BYTES + 300,
            "{}",
            out.len()
        );
        let out = run(&docs, json!({"query": "zzqx qqzz"})).await.unwrap();
        assert!(out.starts_with("No runbook or document matches"), "{out}");
        let e = run(&docs, json!({})).await.unwrap_err();
        assert!(e.to_string().contains("needs a `query`"), "{e}");
        let e = run(&docs, json!({"query": "x", "rm": true}))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("invalid arguments"), "{e}");
        // Hostile sizes are bounded: a 1 MB query and a huge limit.
        let out = run(
            &docs,
            json!({"query": "OOMKilled ".repeat(100_000), "limit": 1_000_000}),
        )
        .await
        .unwrap();
        assert!(out.len() < 8 * 1024, "{}", out.len());
    }
}
