//! kai's troubleshooting knowledge: the built-in runbooks, user documentation folders, and
//! search over them.
//!
//! ```
//! // Built-in runbooks only: nothing on disk is read.
//! let index = kai_docs::Index::builtin()?;
//! let hits = index.search(r#"Last State: Terminated Reason: OOMKilled Exit Code: 137"#, 3);
//! assert_eq!(hits[0].source, "docs/runbooks/oom-killed.md");
//! // The section to put into a model's context for a cause kai found.
//! let fix = index.for_cause("oom-killed").expect("a runbook covers oom-killed");
//! assert_eq!(fix.heading, "Fix");
//!
//! // With the user's folders, incrementally, persisted in a cache directory.
//! let dir = tempfile::tempdir()?;
//! let docs = dir.path().join("runbooks");
//! std::fs::create_dir(&docs)?;
//! std::fs::write(docs.join("db.md"), "# Database failover\n\n## Fix\nRun patronictl failover.\n")?;
//! let report = kai_docs::index_dirs(&[docs.clone()], &dir.path().join("cache"))?;
//! assert_eq!(report.reindexed.len(), 1);
//! let (index, _report) = kai_docs::Index::open(&[docs], &dir.path().join("cache"))?;
//! assert_eq!(index.search("patroni failover", 1)[0].title, "Database failover");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Corpus
//! The runbooks in `docs/runbooks/*.md` are compiled in ([`Index::builtin`] needs no files
//! on disk). User folders add `*.md`, `*.markdown` and `*.txt` files ([`index_dirs`],
//! [`Index::open`]). Front matter (`title`, `causes`, `tags`) is optional: without it the
//! title is the first `#` heading or the file name.
//!
//! # Chunks
//! One chunk per `#`/`##` section (deeper headings stay inside their section); sections
//! over [`MAX_CHUNK_BYTES`] are split at paragraph boundaries (never inside a code fence
//! when avoidable). Each chunk knows its document's title, causes, tags and source, so a
//! result stands alone. Sources: `docs/runbooks/<slug>.md` or the user file's path.
//!
//! # Scoring
//! BM25 (k1 1.2, b 0.75) from the `bm25` crate, over fields with boosts: per document
//! title ×2, tags ×2, causes ×1 and the whole document text ×1; per chunk its heading
//! ×0.5 and its text ×1. A chunk scores the sum; a search returns each document's best
//! chunk. Text analysis: words split at every non-alphanumeric character (so any pasted
//! text is a valid query: nothing is parsed), camelCase words also indexed by their parts
//! (`CrashLoopBackOff` → crash, loop, back, off), English stop words dropped, Snowball
//! stemming. Queries also get a small synonym list of Kubernetes shorthand (`pvc`,
//! `hpa`, `crashloop`, `pending` → unschedulable, …; see `text.rs`) and a spelling
//! correction: an unknown word of five or more letters also searches the index word one
//! edit away (`terminting` → terminating).
//!
//! # Hybrid search (optional)
//! With an [`Embedder`], [`Index::open_hybrid`] stores one vector per chunk in the index
//! file (re-embedding only new or changed chunks) and [`Index::search_hybrid`] fuses the
//! BM25 ranking with cosine similarity by reciprocal rank fusion (k = 60).
//!
//! # Persistence
//! `<cache_dir>/docs-index.json`: chunks, content hashes and vectors. Rewritten only when
//! something changed, through a temporary file renamed over it. A corrupt or foreign file
//! is reported and rebuilt by [`Index::open`]; [`Index::load`] returns the error.

mod corpus;
mod embed;
mod error;
mod index;
mod store;
mod text;

pub use corpus::{BUILTIN_PREFIX, MAX_CHUNK_BYTES};
pub use embed::{EmbedError, Embedder};
pub use error::DocsError;
#[doc(hidden)]
pub use index::Tuning;
pub use index::{
    builtin_runbooks, Hit, Index, RunbookInfo, SourceInfo, MAX_K, MAX_QUERY_BYTES, RRF_K,
    SNIPPET_BYTES,
};
pub use store::{
    index_dirs, index_dirs_hybrid, index_dirs_with, stored_dirs, IndexOptions, IndexReport,
    Warning, DEFAULT_MAX_FILES, DEFAULT_MAX_FILE_BYTES, EXTENSIONS, INDEX_FILE,
};
