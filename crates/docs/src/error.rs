//! Errors of the docs library.

use std::path::PathBuf;

/// What can go wrong building, loading or saving an index. Problems with individual user
/// files are not errors: they are warnings in [`crate::IndexReport`], and the rest of the
/// corpus is still indexed.
#[derive(Debug, thiserror::Error)]
pub enum DocsError {
    /// A built-in runbook does not parse: a bug in kai's own corpus.
    #[error("built-in runbook {runbook}: {message}")]
    BuiltinRunbook {
        /// `docs/runbooks/<slug>.md`.
        runbook: String,
        /// What is wrong with it.
        message: String,
    },
    /// No index has been saved in this cache directory yet.
    #[error("no docs index at {0} (run `kai docs index DIR...` first)")]
    NoIndex(PathBuf),
    /// The index file exists but cannot be read back (truncated, edited, wrong format).
    #[error("docs index {path} is unreadable: {reason}")]
    CorruptIndex {
        /// The index file.
        path: PathBuf,
        /// Why it cannot be read.
        reason: String,
    },
    /// The file at the index path is valid JSON but not a kai docs index, or one written
    /// by an incompatible version.
    #[error("{path} is not a kai docs index of this version ({found})")]
    ForeignIndex {
        /// The index file.
        path: PathBuf,
        /// What was found instead.
        found: String,
    },
    /// Reading or writing the index file or its folder failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The embedder failed or returned something unusable.
    #[error("embedding failed: {0}")]
    Embed(String),
}
