//! User folders: walking them, reading files defensively, incremental re-indexing by
//! content hash, and the persisted index file (written to a temporary file and renamed).

use crate::corpus::{parse_document, Doc};
use crate::embed::{chunk_embed_text, normalize, Embedder};
use crate::error::DocsError;
use crate::index::{builtin_docs, Index, Tuning};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The index file's name inside the cache directory.
pub const INDEX_FILE: &str = "docs-index.json";
/// Files larger than this are skipped with a warning (documentation pages are kilobytes;
/// a bigger file is a log dump or an export, and would crowd out everything else).
pub const DEFAULT_MAX_FILE_BYTES: u64 = 2 * 1024 * 1024;
/// At most this many files are indexed from all folders together (a mistaken `kai docs
/// index /` stops here with a warning instead of reading the whole disk).
pub const DEFAULT_MAX_FILES: usize = 20_000;
/// File name extensions indexed (case-insensitive).
pub const EXTENSIONS: &[&str] = &["md", "markdown", "txt"];

const FORMAT: &str = "kai-docs-index";
const VERSION: u32 = 1;
/// A file whose size and modification time are unchanged is not re-read, unless it was
/// modified less than this long before it was last hashed (a write within the same clock
/// tick would otherwise go unseen, like git's "racily clean" entries).
const RACY_WINDOW: Duration = Duration::from_secs(2);

/// Options for [`Index::open_with`] and friends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexOptions {
    /// Where the index file ([`INDEX_FILE`]) is kept; created when missing.
    pub cache_dir: PathBuf,
    /// Larger files are skipped with a warning. Default [`DEFAULT_MAX_FILE_BYTES`].
    pub max_file_bytes: u64,
    /// At most this many files in all. Default [`DEFAULT_MAX_FILES`].
    pub max_files: usize,
}

impl IndexOptions {
    /// Defaults with the given cache directory.
    pub fn new(cache_dir: impl Into<PathBuf>) -> Self {
        IndexOptions {
            cache_dir: cache_dir.into(),
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            max_files: DEFAULT_MAX_FILES,
        }
    }

    /// The index file's path.
    pub fn index_file(&self) -> PathBuf {
        self.cache_dir.join(INDEX_FILE)
    }
}

/// A problem with one file or folder (or the index file, or the embedder). The file is
/// left out (or, for the index file, rebuilt); everything else is still indexed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// The file or folder concerned; `None` for the embedder.
    pub path: Option<PathBuf>,
    /// What happened and what was done about it.
    pub message: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.path {
            Some(p) => write!(f, "{}: {}", p.display(), self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// What one indexing run did. User files only in the path lists (the built-in runbooks are
/// always indexed).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IndexReport {
    /// The index file.
    pub index_file: PathBuf,
    /// The folders (or single files) indexed, as given.
    pub dirs: Vec<PathBuf>,
    /// Files read and chunked: new, or changed since the last run.
    pub reindexed: Vec<PathBuf>,
    /// Files whose content hash is unchanged: their chunks (and vectors) were reused.
    pub reused: Vec<PathBuf>,
    /// Files in the previous index that are gone now (deleted, moved, unreadable, outside
    /// the folders given, or their folder disappeared).
    pub removed: Vec<PathBuf>,
    /// Problems, each naming its file or folder.
    pub warnings: Vec<Warning>,
    /// Files opened and hashed. Files whose size and modification time are unchanged are
    /// not opened.
    pub files_read: usize,
    /// Chunks sent to the embedder in this run (hybrid mode only).
    pub embedded_chunks: usize,
    /// Documents in the index, built-in runbooks included.
    pub documents: usize,
    /// Chunks in the index.
    pub chunks: usize,
    /// The previous index file was missing, corrupt or foreign and the index was rebuilt.
    pub rebuilt: bool,
    /// The index file was written in this run (nothing changed: not rewritten).
    pub saved: bool,
}

/// The persisted index.
#[derive(Debug, Serialize, Deserialize)]
struct StoreFile {
    format: String,
    version: u32,
    /// The embedder model of the stored vectors, if any.
    embed_model: Option<String>,
    dirs: Vec<PathBuf>,
    files: Vec<Entry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    sha256: String,
    len: u64,
    /// Modification time in nanoseconds since the epoch, when the file system has one.
    mtime_ns: Option<u64>,
    /// When the content was last hashed, nanoseconds since the epoch.
    hashed_at_ns: u64,
    doc: Doc,
}

/// Only checks the header, so a foreign JSON file gets a precise message.
#[derive(Deserialize)]
struct Header {
    format: Option<serde_json::Value>,
    version: Option<serde_json::Value>,
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn mtime_ns(meta: &std::fs::Metadata) -> Option<u64> {
    let d = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?;
    u64::try_from(d.as_nanos()).ok()
}

fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn load_store(path: &Path) -> Result<StoreFile, DocsError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(DocsError::NoIndex(path.to_path_buf()))
        }
        Err(e) => {
            return Err(DocsError::Io {
                path: path.to_path_buf(),
                source: e,
            })
        }
    };
    let corrupt = |reason: String| DocsError::CorruptIndex {
        path: path.to_path_buf(),
        reason,
    };
    let header: Header =
        serde_json::from_slice(&bytes).map_err(|e| corrupt(format!("not valid JSON ({e})")))?;
    let format_ok = header.format.as_ref().and_then(|f| f.as_str()) == Some(FORMAT);
    let version = header.version.as_ref().and_then(serde_json::Value::as_u64);
    if !format_ok || version != Some(u64::from(VERSION)) {
        let found = match (header.format, header.version) {
            (Some(f), Some(v)) => format!("format {f}, version {v}"),
            (Some(f), None) => format!("format {f}"),
            _ => "no kai-docs-index header".to_string(),
        };
        return Err(DocsError::ForeignIndex {
            path: path.to_path_buf(),
            found,
        });
    }
    let store: StoreFile = serde_json::from_slice(&bytes).map_err(|e| corrupt(format!("{e}")))?;
    // Vectors must agree in dimension, or cosine similarity would silently skip chunks.
    let mut dim = None;
    for e in &store.files {
        for c in &e.doc.chunks {
            if let Some(v) = &c.vector {
                if *dim.get_or_insert(v.len()) != v.len() || v.is_empty() {
                    return Err(corrupt(format!(
                        "vectors of different dimensions ({})",
                        e.doc.source
                    )));
                }
            }
        }
    }
    Ok(store)
}

fn save_store(path: &Path, store: &StoreFile) -> Result<(), DocsError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let io = |p: &Path, e: std::io::Error| DocsError::Io {
        path: p.to_path_buf(),
        source: e,
    };
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    // Written beside the target and renamed over it: a reader sees the old file or the new
    // one, never half of one, even if kai is killed mid-write.
    let mut tmp = tempfile::Builder::new()
        .prefix(".docs-index.")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| io(dir, e))?;
    {
        let mut w = std::io::BufWriter::new(tmp.as_file_mut());
        serde_json::to_writer(&mut w, store).map_err(|e| io(path, std::io::Error::other(e)))?;
        w.flush().map_err(|e| io(path, e))?;
    }
    tmp.as_file().sync_all().map_err(|e| io(path, e))?;
    tmp.persist(path).map_err(|e| io(path, e.error))?;
    Ok(())
}

/// The folders recorded in the index file of `cache_dir` (what the last
/// [`index_dirs`] indexed).
pub fn stored_dirs(cache_dir: &Path) -> Result<Vec<PathBuf>, DocsError> {
    Ok(load_store(&cache_dir.join(INDEX_FILE))?.dirs)
}

/// A candidate file found under the folders.
struct Found {
    path: PathBuf,
    source: String,
}

fn has_indexed_extension(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

fn warn(warnings: &mut Vec<Warning>, path: &Path, message: impl Into<String>) {
    warnings.push(Warning {
        path: Some(path.to_path_buf()),
        message: message.into(),
    });
}

/// Every indexable file under `dirs` (a path that is a file is taken as is), sorted,
/// without duplicates. Hidden files and folders (name starting with '.') are skipped.
fn walk(dirs: &[PathBuf], max_files: usize, warnings: &mut Vec<Warning>) -> Vec<Found> {
    let mut out: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut capped = false;
    for dir in dirs {
        let meta = match std::fs::metadata(dir) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                warn(warnings, dir, "folder not found; its files are left out");
                continue;
            }
            Err(e) => {
                warn(
                    warnings,
                    dir,
                    format!("cannot read: {e}; its files are left out"),
                );
                continue;
            }
        };
        let root = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.clone());
        if meta.is_file() {
            if has_indexed_extension(&root) {
                out.insert(root.to_string_lossy().into_owned(), root);
            } else {
                warn(warnings, dir, "not a .md, .markdown or .txt file; skipped");
            }
            continue;
        }
        let before = out.len();
        let walker = walkdir::WalkDir::new(&root)
            .follow_links(true)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'));
        for entry in walker {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    let p = e.path().map_or_else(|| root.clone(), Path::to_path_buf);
                    let msg = match e.io_error() {
                        Some(io) => format!("cannot read: {io}; skipped"),
                        None => format!("{e}; skipped"),
                    };
                    warn(warnings, &p, msg);
                    continue;
                }
            };
            if !entry.file_type().is_file() || !has_indexed_extension(entry.path()) {
                continue;
            }
            if out.len() >= max_files {
                capped = true;
                break;
            }
            let p = entry.into_path();
            out.insert(p.to_string_lossy().into_owned(), p);
        }
        if out.len() == before && !capped {
            warn(warnings, dir, "no .md, .markdown or .txt files found");
        }
        if capped {
            warn(
                warnings,
                dir,
                format!("stopped after {max_files} files; the rest are not indexed"),
            );
            break;
        }
    }
    out.into_iter()
        .map(|(source, path)| Found { path, source })
        .collect()
}

/// Reads a file as UTF-8 text, refusing what is not a document. Errors are user messages.
fn read_text(path: &Path, max: u64) -> Result<(String, Vec<u8>), String> {
    let f = std::fs::File::open(path).map_err(|e| format!("cannot read: {e}; skipped"))?;
    let mut bytes = Vec::new();
    // Read one byte past the limit: a file that grew since its size was checked is
    // caught here without reading all of it.
    f.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read: {e}; skipped"))?;
    if bytes.len() as u64 > max {
        return Err(too_big(max));
    }
    if bytes.contains(&0) {
        return Err("binary file (contains NUL bytes); skipped".to_string());
    }
    match String::from_utf8(bytes) {
        Ok(s) => {
            let b = s.as_bytes().to_vec();
            Ok((s, b))
        }
        Err(e) => Err(format!(
            "not UTF-8 text (invalid byte at offset {}); skipped",
            e.utf8_error().valid_up_to()
        )),
    }
}

fn too_big(max: u64) -> String {
    format!(
        "larger than the {} limit for a document; skipped",
        human_bytes(max)
    )
}

fn human_bytes(n: u64) -> String {
    if n >= 1024 * 1024 && n.is_multiple_of(1024 * 1024) {
        format!("{} MiB", n / (1024 * 1024))
    } else if n >= 1024 && n.is_multiple_of(1024) {
        format!("{} KiB", n / 1024)
    } else {
        format!("{n} bytes")
    }
}

/// Re-chunks `doc`, carrying over vectors of chunks whose embedded text is unchanged.
fn carry_vectors(doc: &mut Doc, old: Option<&Doc>) {
    let Some(old) = old else { return };
    let mut by_text: HashMap<String, &Vec<f32>> = HashMap::new();
    for c in &old.chunks {
        if let Some(v) = &c.vector {
            by_text.insert(chunk_embed_text(&old.title, &c.heading, &c.text), v);
        }
    }
    for c in &mut doc.chunks {
        let key = chunk_embed_text(&doc.title, &c.heading, &c.text);
        c.vector = by_text.get(&key).map(|v| (*v).clone());
    }
}

struct Synced {
    store: StoreFile,
    report: IndexReport,
    changed: bool,
}

/// Brings the stored index up to date with the built-in runbooks and `dirs`.
fn sync(dirs: &[PathBuf], opts: &IndexOptions) -> Result<Synced, DocsError> {
    let index_file = opts.index_file();
    let mut report = IndexReport {
        index_file: index_file.clone(),
        dirs: dirs.to_vec(),
        ..IndexReport::default()
    };
    let (old, mut changed) = match load_store(&index_file) {
        Ok(s) => (s, false),
        Err(DocsError::NoIndex(_)) => {
            report.rebuilt = true;
            (empty_store(), true)
        }
        Err(e) => {
            report.warnings.push(Warning {
                path: Some(index_file.clone()),
                message: format!("{e}; rebuilding the index"),
            });
            report.rebuilt = true;
            (empty_store(), true)
        }
    };
    if old.dirs != dirs {
        changed = true;
    }
    let mut old_entries: HashMap<String, Entry> = old
        .files
        .into_iter()
        .map(|e| (e.doc.source.clone(), e))
        .collect();
    let mut files = Vec::new();

    // Built-in runbooks: always parsed from the binary (cheap); stored only to keep their
    // vectors, which carry over while a runbook's text is unchanged.
    for mut doc in builtin_docs()? {
        let prev = old_entries.remove(&doc.source);
        carry_vectors(&mut doc, prev.as_ref().map(|e| &e.doc));
        if prev.as_ref().is_none_or(|p| p.doc != doc) {
            changed = true;
        }
        files.push(Entry {
            sha256: String::new(),
            len: 0,
            mtime_ns: None,
            hashed_at_ns: 0,
            doc,
        });
    }

    let found = walk(dirs, opts.max_files, &mut report.warnings);
    for f in found {
        let prev = old_entries.remove(&f.source).filter(|e| !e.doc.builtin);
        let meta = match std::fs::metadata(&f.path) {
            Ok(m) => m,
            Err(e) => {
                warn(
                    &mut report.warnings,
                    &f.path,
                    format!("cannot read: {e}; skipped"),
                );
                if prev.is_some() {
                    report.removed.push(f.path);
                    changed = true;
                }
                continue;
            }
        };
        let len = meta.len();
        let mtime = mtime_ns(&meta);
        if len > opts.max_file_bytes {
            warn(&mut report.warnings, &f.path, too_big(opts.max_file_bytes));
            if prev.is_some() {
                report.removed.push(f.path);
                changed = true;
            }
            continue;
        }
        // Unchanged size and modification time, hashed well after that time: reuse
        // without opening the file.
        let racy_ns = u64::try_from(RACY_WINDOW.as_nanos()).unwrap_or(u64::MAX);
        let prev = match prev {
            Some(p)
                if p.len == len
                    && p.mtime_ns.is_some()
                    && p.mtime_ns == mtime
                    && mtime.is_some_and(|m| p.hashed_at_ns > m.saturating_add(racy_ns)) =>
            {
                report.reused.push(f.path);
                files.push(p);
                continue;
            }
            other => other,
        };
        report.files_read += 1;
        let hashed_at_ns = now_ns();
        let (text, bytes) = match read_text(&f.path, opts.max_file_bytes) {
            Ok(t) => t,
            Err(msg) => {
                warn(&mut report.warnings, &f.path, msg);
                if prev.is_some() {
                    report.removed.push(f.path);
                    changed = true;
                }
                continue;
            }
        };
        let sha = sha256_hex(&bytes);
        if let Some(mut p) = prev.clone().filter(|p| p.sha256 == sha) {
            // Same content (touched, copied back, or modified within the racy window):
            // keep its chunks; record the new times so the next run need not read it.
            p.len = len;
            p.mtime_ns = mtime;
            p.hashed_at_ns = hashed_at_ns;
            changed = true;
            report.reused.push(f.path);
            files.push(p);
            continue;
        }
        let name = f
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (mut doc, fm_warning) = parse_document(&f.source, &name, false, &text);
        if let Some(w) = fm_warning {
            warn(&mut report.warnings, &f.path, w);
        }
        if doc.chunks.is_empty() {
            warn(&mut report.warnings, &f.path, "no text to index; skipped");
            if prev.is_some() {
                report.removed.push(f.path);
                changed = true;
            }
            continue;
        }
        carry_vectors(&mut doc, prev.as_ref().map(|p| &p.doc));
        changed = true;
        report.reindexed.push(f.path);
        files.push(Entry {
            sha256: sha,
            len,
            mtime_ns: mtime,
            hashed_at_ns,
            doc,
        });
    }
    // What is left of the old index is gone: deleted, outside the folders now, or in a
    // folder that disappeared.
    if old_entries.values().any(|e| e.doc.builtin) {
        // A runbook this version of kai no longer ships.
        changed = true;
    }
    let mut gone: Vec<&Entry> = old_entries.values().filter(|e| !e.doc.builtin).collect();
    gone.sort_by(|a, b| a.doc.source.cmp(&b.doc.source));
    for e in gone {
        report.removed.push(PathBuf::from(&e.doc.source));
        changed = true;
    }
    report.documents = files.len();
    report.chunks = files.iter().map(|e| e.doc.chunks.len()).sum();
    Ok(Synced {
        store: StoreFile {
            format: FORMAT.to_string(),
            version: VERSION,
            embed_model: old.embed_model,
            dirs: dirs.to_vec(),
            files,
        },
        report,
        changed,
    })
}

fn empty_store() -> StoreFile {
    StoreFile {
        format: FORMAT.to_string(),
        version: VERSION,
        embed_model: None,
        dirs: Vec::new(),
        files: Vec::new(),
    }
}

/// Embeds every chunk without a vector (all of them when the model changed), in batches.
/// A failure is a warning: chunks without vectors still take part through BM25.
async fn embed_missing(
    store: &mut StoreFile,
    embedder: &dyn Embedder,
    report: &mut IndexReport,
) -> bool {
    let model = embedder.model_id();
    let mut changed = false;
    if store.embed_model.as_deref() != Some(model.as_str()) {
        for e in &mut store.files {
            for c in &mut e.doc.chunks {
                c.vector = None;
            }
        }
        store.embed_model = Some(model);
        changed = true;
    }
    let mut todo: Vec<(usize, usize, String)> = Vec::new();
    for (fi, e) in store.files.iter().enumerate() {
        for (ci, c) in e.doc.chunks.iter().enumerate() {
            if c.vector.is_none() {
                todo.push((fi, ci, chunk_embed_text(&e.doc.title, &c.heading, &c.text)));
            }
        }
    }
    let mut dim = store
        .files
        .iter()
        .flat_map(|e| e.doc.chunks.iter())
        .find_map(|c| c.vector.as_ref().map(Vec::len));
    for batch in todo.chunks(embedder.batch_size().max(1)) {
        let texts: Vec<String> = batch.iter().map(|(_, _, t)| t.clone()).collect();
        let result = embedder.embed(&texts).await;
        let problem = match result {
            Err(e) => Some(format!("embedding failed: {e}")),
            Ok(v) if v.len() != texts.len() => Some(format!(
                "the embedder returned {} vectors for {} texts",
                v.len(),
                texts.len()
            )),
            Ok(vectors) => {
                let mut bad = None;
                for ((fi, ci, _), mut v) in batch.iter().zip(vectors) {
                    if v.is_empty() || v.iter().any(|x| !x.is_finite()) {
                        bad =
                            Some("the embedder returned an empty or non-finite vector".to_string());
                        break;
                    }
                    if *dim.get_or_insert(v.len()) != v.len() {
                        bad = Some(format!(
                            "the embedder returned vectors of {} and {} dimensions",
                            dim.unwrap_or(0),
                            v.len()
                        ));
                        break;
                    }
                    normalize(&mut v);
                    store.files[*fi].doc.chunks[*ci].vector = Some(v);
                    report.embedded_chunks += 1;
                    changed = true;
                }
                bad
            }
        };
        if let Some(message) = problem {
            let left = todo.len() - report.embedded_chunks;
            report.warnings.push(Warning {
                path: None,
                message: format!(
                    "{message}; {left} chunks have no vector and are found by BM25 only"
                ),
            });
            break;
        }
    }
    changed
}

/// Saves the store when it changed. Returns the store, the report and the save result.
fn persist(synced: Synced) -> (StoreFile, IndexReport, Result<(), DocsError>) {
    let Synced {
        store,
        mut report,
        changed,
    } = synced;
    let saved = if changed {
        save_store(&report.index_file, &store)
    } else {
        Ok(())
    };
    report.saved = changed && saved.is_ok();
    (store, report, saved)
}

/// Saves (see [`persist`]) and builds the search index; a failed save is a warning.
fn finish(synced: Synced, hybrid: bool) -> (Index, IndexReport) {
    let (store, mut report, saved) = persist(synced);
    if let Err(e) = saved {
        report.warnings.push(Warning {
            path: Some(report.index_file.clone()),
            message: format!("could not save the index ({e}); it was built in memory only"),
        });
    }
    let embed_model = if hybrid {
        store.embed_model.clone()
    } else {
        None
    };
    let docs: Vec<Doc> = store.files.into_iter().map(|e| e.doc).collect();
    let mut index = Index::from_docs(docs, Tuning::default());
    index.embed_model = embed_model;
    (index, report)
}

impl Index {
    /// The built-in runbooks plus the documents under `dirs`, brought up to date
    /// incrementally against the index file in `cache_dir` and saved there when anything
    /// changed. Per-file problems (unreadable, binary, not UTF-8, too big, missing folder)
    /// are warnings in the report; a corrupt or foreign index file is a warning too, and
    /// the index is rebuilt. A failure to save is a warning (the index still works from
    /// memory). Does blocking file I/O.
    pub fn open(dirs: &[PathBuf], cache_dir: &Path) -> Result<(Index, IndexReport), DocsError> {
        Index::open_with(dirs, &IndexOptions::new(cache_dir))
    }

    /// [`Index::open`] with options.
    pub fn open_with(
        dirs: &[PathBuf],
        opts: &IndexOptions,
    ) -> Result<(Index, IndexReport), DocsError> {
        Ok(finish(sync(dirs, opts)?, false))
    }

    /// [`Index::open_with`] plus hybrid search: every chunk without a vector from
    /// `embedder`'s model is embedded (only new or changed chunks once the index exists)
    /// and the vectors are saved with the index. An embedding failure is a warning: the
    /// chunks concerned are found by BM25 only. Does blocking file I/O around the
    /// embedder's calls.
    pub async fn open_hybrid(
        dirs: &[PathBuf],
        opts: &IndexOptions,
        embedder: &dyn Embedder,
    ) -> Result<(Index, IndexReport), DocsError> {
        let mut synced = sync(dirs, opts)?;
        if embed_missing(&mut synced.store, embedder, &mut synced.report).await {
            synced.changed = true;
        }
        Ok(finish(synced, true))
    }

    /// The index saved in `cache_dir`, as it was saved: no folder is walked. Errors when
    /// there is none ([`DocsError::NoIndex`]) or it is corrupt or foreign; callers that
    /// want to recover use [`Index::open`], which rebuilds.
    pub fn load(cache_dir: &Path) -> Result<Index, DocsError> {
        let store = load_store(&cache_dir.join(INDEX_FILE))?;
        let docs: Vec<Doc> = store.files.into_iter().map(|e| e.doc).collect();
        let mut index = Index::from_docs(docs, Tuning::default());
        index.embed_model = store.embed_model;
        Ok(index)
    }
}

/// `kai docs index DIR...`: indexes the documents under `dirs` (with the built-in
/// runbooks) into the index file in `cache_dir`, incrementally. Unlike [`Index::open`], a
/// failure to save the index file is an error.
pub fn index_dirs(dirs: &[PathBuf], cache_dir: &Path) -> Result<IndexReport, DocsError> {
    index_dirs_with(dirs, &IndexOptions::new(cache_dir))
}

/// [`index_dirs`] with options.
pub fn index_dirs_with(dirs: &[PathBuf], opts: &IndexOptions) -> Result<IndexReport, DocsError> {
    let (_, report, saved) = persist(sync(dirs, opts)?);
    saved?;
    Ok(report)
}

/// [`index_dirs`] with hybrid embeddings (see [`Index::open_hybrid`]).
pub async fn index_dirs_hybrid(
    dirs: &[PathBuf],
    opts: &IndexOptions,
    embedder: &dyn Embedder,
) -> Result<IndexReport, DocsError> {
    let mut synced = sync(dirs, opts)?;
    if embed_missing(&mut synced.store, embedder, &mut synced.report).await {
        synced.changed = true;
    }
    let (_, report, saved) = persist(synced);
    saved?;
    Ok(report)
}
