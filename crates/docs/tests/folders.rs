//! User folders: incremental indexing by content hash, the persisted index file, bad
//! input, and hybrid search with a deterministic fake embedder.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use async_trait::async_trait;
use kai_docs::{
    index_dirs, index_dirs_with, DocsError, EmbedError, Embedder, Index, IndexOptions, IndexReport,
    INDEX_FILE,
};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

const RUNBOOK: &str = "---\ntitle: Payments database failover\ncauses: [oom-killed]\ntags: [postgres, failover, patroni]\n---\n# Payments database failover\n\n## Symptoms\nThe payments API logs `FATAL: the database system is in recovery mode`.\n\n## Fix\nRun `patronictl failover payments-db` and wait for the new leader.\n";

fn write(p: &Path, s: &str) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, s).unwrap();
}

/// Sets a file's modification time an hour back, so the next run may trust size+mtime.
fn age(p: &Path) {
    let f = std::fs::File::options().write(true).open(p).unwrap();
    f.set_modified(SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
}

fn names(v: &[PathBuf]) -> Vec<String> {
    let mut n: Vec<String> = v
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    n.sort();
    n
}

fn warning_for<'a>(r: &'a IndexReport, name: &str) -> Option<&'a str> {
    r.warnings
        .iter()
        .find(|w| w.path.as_ref().is_some_and(|p| p.ends_with(name)))
        .map(|w| w.message.as_str())
}

/// The report warns about `name` with a message that contains `says`.
#[track_caller]
fn assert_warned(r: &IndexReport, name: &str, says: &str) {
    let w =
        warning_for(r, name).unwrap_or_else(|| panic!("no warning for {name}: {:?}", r.warnings));
    assert!(w.contains(says), "{name}: {w}");
}

struct Setup {
    _tmp: tempfile::TempDir,
    docs: PathBuf,
    cache: PathBuf,
}

fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let docs = tmp.path().join("team-docs");
    let cache = tmp.path().join("cache");
    write(&docs.join("payments-failover.md"), RUNBOOK);
    write(&docs.join("notes/dns.markdown"), "# Our DNS notes\n\nCoreDNS forwards to 10.0.0.2; when it flaps, restart the node-local-dns daemonset.\n");
    write(
        &docs.join("notes/oncall.txt"),
        "Escalation: page the platform team after 15 minutes.\n",
    );
    write(&docs.join("image.png"), "not indexed: wrong extension");
    write(&docs.join(".git/HEAD.md"), "hidden folders are skipped");
    Setup {
        _tmp: tmp,
        docs,
        cache,
    }
}

#[test]
fn user_files_are_indexed_with_the_builtin_corpus_and_searchable() {
    let s = setup();
    let r = index_dirs(std::slice::from_ref(&s.docs), &s.cache).unwrap();
    assert_eq!(
        names(&r.reindexed),
        ["dns.markdown", "oncall.txt", "payments-failover.md"]
    );
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    assert!(r.saved && r.rebuilt);
    assert!(s.cache.join(INDEX_FILE).is_file());

    let (index, _) = Index::open(std::slice::from_ref(&s.docs), &s.cache).unwrap();
    let hits = index.search("patroni failover database in recovery mode", 3);
    assert!(hits[0].source.ends_with("payments-failover.md"), "{hits:?}");
    assert!(Path::new(&hits[0].source).is_absolute());
    assert_eq!(hits[0].title, "Payments database failover");
    // A file without front matter: title from its first heading.
    let hits = index.search("node-local-dns flaps", 1);
    assert_eq!(hits[0].title, "Our DNS notes");
    // Built-in runbooks are still there.
    assert_eq!(
        index.search("OOMKilled exit code 137", 1)[0].source,
        "docs/runbooks/oom-killed.md"
    );
    // A user runbook listing a cause code comes first for that code.
    let srcs = index.sources_for_cause("oom-killed");
    assert_eq!(srcs.len(), 2);
    assert!(srcs[0].ends_with("payments-failover.md"));
    assert_eq!(srcs[1], "docs/runbooks/oom-killed.md");
    assert_eq!(index.for_cause("oom-killed").unwrap().heading, "Fix");
    // kai docs list: user files first.
    let list = index.sources();
    assert!(!list[0].builtin && list.last().unwrap().builtin);
    assert_eq!(list.iter().filter(|s| !s.builtin).count(), 3);

    // Index::load reads the saved index without walking the folder.
    let loaded = Index::load(&s.cache).unwrap();
    assert_eq!(loaded.sources(), index.sources());
}

#[test]
fn only_changed_files_are_reindexed() {
    let s = setup();
    let dirs = [s.docs.clone()];
    index_dirs(&dirs, &s.cache).unwrap();

    // Nothing changed: all reused, the index file is not rewritten.
    let r = index_dirs(&dirs, &s.cache).unwrap();
    assert!(r.reindexed.is_empty() && r.removed.is_empty());
    assert_eq!(r.reused.len(), 3);

    // Change one file's content: only it is re-read and re-chunked.
    write(
        &s.docs.join("notes/oncall.txt"),
        "Escalation: page the database team after 5 minutes.\n",
    );
    let r = index_dirs(&dirs, &s.cache).unwrap();
    assert_eq!(names(&r.reindexed), ["oncall.txt"]);
    assert_eq!(names(&r.reused), ["dns.markdown", "payments-failover.md"]);
    assert!(r.saved);
    let (index, _) = Index::open(&dirs, &s.cache).unwrap();
    assert!(index.search("page the database team", 1)[0]
        .source
        .ends_with("oncall.txt"));

    // Touch without changing content: the hash matches, the file is reused.
    let f = s.docs.join("payments-failover.md");
    std::fs::File::options()
        .write(true)
        .open(&f)
        .unwrap()
        .set_modified(SystemTime::now())
        .unwrap();
    let r = index_dirs(&dirs, &s.cache).unwrap();
    assert!(r.reindexed.is_empty(), "{:?}", r.reindexed);
    assert_eq!(r.reused.len(), 3);

    // Files whose size and mtime are old and unchanged are not even opened.
    for p in [
        "payments-failover.md",
        "notes/dns.markdown",
        "notes/oncall.txt",
    ] {
        age(&s.docs.join(p));
    }
    index_dirs(&dirs, &s.cache).unwrap(); // records the new mtimes
    let r = index_dirs(&dirs, &s.cache).unwrap();
    assert_eq!(r.files_read, 0, "{r:?}");
    assert_eq!(r.reused.len(), 3);
    assert!(!r.saved);

    // A deleted file is reported removed.
    std::fs::remove_file(s.docs.join("notes/dns.markdown")).unwrap();
    let r = index_dirs(&dirs, &s.cache).unwrap();
    assert_eq!(names(&r.removed), ["dns.markdown"]);
    assert_eq!(r.reused.len(), 2);
}

#[test]
fn the_index_file_is_replaced_atomically_and_leaves_no_temporary_files() {
    let s = setup();
    index_dirs(std::slice::from_ref(&s.docs), &s.cache).unwrap();
    write(&s.docs.join("more.md"), "# More\n\ntext\n");
    index_dirs(std::slice::from_ref(&s.docs), &s.cache).unwrap();
    let entries: Vec<String> = std::fs::read_dir(&s.cache)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(entries, [INDEX_FILE]);
}

#[test]
fn a_corrupt_or_foreign_index_file_is_a_clear_error_and_open_rebuilds() {
    let s = setup();
    let dirs = [s.docs.clone()];
    index_dirs(&dirs, &s.cache).unwrap();
    let file = s.cache.join(INDEX_FILE);
    let good = std::fs::read(&file).unwrap();

    // Truncated (as if half-written by something else).
    std::fs::write(&file, &good[..good.len() / 2]).unwrap();
    let e = Index::load(&s.cache).unwrap_err();
    assert!(matches!(e, DocsError::CorruptIndex { .. }), "{e}");
    assert!(e.to_string().contains(&file.display().to_string()), "{e}");

    // Garbage bytes.
    std::fs::write(&file, b"\x00\xff garbage").unwrap();
    assert!(matches!(
        Index::load(&s.cache),
        Err(DocsError::CorruptIndex { .. })
    ));

    // Valid JSON, not ours.
    std::fs::write(&file, br#"{"hello": "world"}"#).unwrap();
    let e = Index::load(&s.cache).unwrap_err();
    assert!(matches!(e, DocsError::ForeignIndex { .. }), "{e}");
    // Ours, from a future version.
    std::fs::write(
        &file,
        br#"{"format": "kai-docs-index", "version": 99, "files": []}"#,
    )
    .unwrap();
    let e = Index::load(&s.cache).unwrap_err();
    assert!(e.to_string().contains("version 99"), "{e}");

    // Right header, wrong body.
    std::fs::write(
        &file,
        br#"{"format": "kai-docs-index", "version": 1, "files": 7}"#,
    )
    .unwrap();
    assert!(matches!(
        Index::load(&s.cache),
        Err(DocsError::CorruptIndex { .. })
    ));

    // open() says so, rebuilds from the folders and saves a good file again.
    let (index, r) = Index::open(&dirs, &s.cache).unwrap();
    assert!(r.rebuilt);
    let w = warning_for(&r, INDEX_FILE).unwrap();
    assert!(w.contains("rebuilding"), "{w}");
    assert_eq!(r.reindexed.len(), 3);
    assert!(index.search("patroni", 1)[0]
        .source
        .ends_with("payments-failover.md"));
    assert!(Index::load(&s.cache).is_ok());

    // No index at all is its own error.
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        Index::load(empty.path()),
        Err(DocsError::NoIndex(_))
    ));
}

#[test]
fn bad_files_are_named_in_warnings_and_the_rest_is_still_indexed() {
    let s = setup();
    // Binary, non-UTF-8, empty, too big (50 MB, sparse), unreadable (dangling symlink),
    // bad front matter.
    std::fs::write(s.docs.join("binary.md"), b"# Title\n\x00\x01\x02 binary").unwrap();
    std::fs::write(s.docs.join("latin1.txt"), b"caf\xe9 cr\xe8me\n").unwrap();
    std::fs::write(s.docs.join("empty.md"), b"  \n\n").unwrap();
    let big = std::fs::File::create(s.docs.join("huge.md")).unwrap();
    big.set_len(50 * 1024 * 1024).unwrap();
    drop(big);
    std::os::unix::fs::symlink(s.docs.join("does-not-exist.md"), s.docs.join("dangling.md"))
        .unwrap();
    write(
        &s.docs.join("badfm.md"),
        "---\ntitle: [oops\n---\n# Bad front matter\n\nbody text about grafana dashboards\n",
    );
    let empty_dir = s.docs.parent().unwrap().join("empty-folder");
    std::fs::create_dir_all(&empty_dir).unwrap();
    let missing = s.docs.parent().unwrap().join("never-existed");

    let r = index_dirs(
        &[s.docs.clone(), empty_dir.clone(), missing.clone()],
        &s.cache,
    )
    .unwrap();
    for (name, says) in [
        ("binary.md", "binary"),
        ("latin1.txt", "not UTF-8"),
        ("latin1.txt", "offset 3"),
        ("empty.md", "no text"),
        ("huge.md", "2 MiB limit"),
        ("dangling.md", "cannot read"),
        ("badfm.md", "not valid YAML"),
        ("empty-folder", "no .md"),
        ("never-existed", "not found"),
    ] {
        assert_warned(&r, name, says);
    }
    // Display names the file.
    let shown: Vec<String> = r.warnings.iter().map(ToString::to_string).collect();
    assert!(
        shown.iter().any(|w| w.contains("huge.md: larger than")),
        "{shown:?}"
    );
    // The good files (and the one with bad front matter, as plain text) are indexed.
    assert_eq!(
        names(&r.reindexed),
        [
            "badfm.md",
            "dns.markdown",
            "oncall.txt",
            "payments-failover.md"
        ]
    );
    let (index, _) = Index::open(std::slice::from_ref(&s.docs), &s.cache).unwrap();
    assert!(index.search("grafana dashboards", 1)[0]
        .source
        .ends_with("badfm.md"));
}

#[test]
fn a_file_that_grows_past_the_limit_or_becomes_unreadable_is_removed_with_a_warning() {
    let s = setup();
    let dirs = [s.docs.clone()];
    let mut opts = IndexOptions::new(&s.cache);
    opts.max_file_bytes = 1000;
    index_dirs_with(&dirs, &opts).unwrap();
    write(&s.docs.join("notes/oncall.txt"), &"x ".repeat(600));
    std::fs::write(s.docs.join("notes/dns.markdown"), b"\xff\xfe").unwrap();
    let r = index_dirs_with(&dirs, &opts).unwrap();
    assert_eq!(names(&r.removed), ["dns.markdown", "oncall.txt"]);
    assert_warned(&r, "oncall.txt", "1000 bytes limit");
    assert_warned(&r, "dns.markdown", "not UTF-8");
    assert_eq!(names(&r.reused), ["payments-failover.md"]);
}

#[cfg(unix)]
#[test]
fn an_unreadable_file_is_a_warning() {
    use std::os::unix::fs::PermissionsExt;
    let s = setup();
    let p = s.docs.join("secret.md");
    write(&p, "# Secret\n\nunreadable\n");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o000)).unwrap();
    if std::fs::read(&p).is_ok() {
        // Running as root: permissions do not stop reads; the dangling symlink case in
        // bad_files_are_named_in_warnings covers unreadable files there.
        return;
    }
    let r = index_dirs(std::slice::from_ref(&s.docs), &s.cache).unwrap();
    assert_warned(&r, "secret.md", "cannot read");
    assert_eq!(r.reindexed.len(), 3);
}

#[test]
fn a_folder_that_disappears_between_index_and_search() {
    let s = setup();
    let other = s.docs.parent().unwrap().join("other-docs");
    write(&other.join("keep.md"), "# Kept\n\nthe quokka procedure\n");
    let dirs = [s.docs.clone(), other.clone()];
    index_dirs(&dirs, &s.cache).unwrap();
    std::fs::remove_dir_all(&s.docs).unwrap();

    let (index, r) = Index::open(&dirs, &s.cache).unwrap();
    assert_warned(&r, "team-docs", "folder not found");
    assert_eq!(
        names(&r.removed),
        ["dns.markdown", "oncall.txt", "payments-failover.md"]
    );
    assert!(index
        .search("patroni failover", 5)
        .iter()
        .all(|h| !h.source.contains("team-docs")));
    assert!(index.search("quokka", 1)[0].source.ends_with("keep.md"));
    assert_eq!(
        index.search("OOMKilled", 1)[0].source,
        "docs/runbooks/oom-killed.md"
    );
}

#[test]
fn a_single_file_can_be_given_instead_of_a_folder() {
    let s = setup();
    let f = s.docs.join("payments-failover.md");
    let r = index_dirs(&[f, s.docs.join("image.png")], &s.cache).unwrap();
    assert_eq!(names(&r.reindexed), ["payments-failover.md"]);
    assert_warned(&r, "image.png", "not a .md");
}

#[test]
fn an_unwritable_cache_is_an_error_for_index_dirs_and_a_warning_for_open() {
    let s = setup();
    // A file where the cache folder should be.
    let cache = s.docs.parent().unwrap().join("cache-is-a-file");
    std::fs::write(&cache, "x").unwrap();
    assert!(matches!(
        index_dirs(std::slice::from_ref(&s.docs), &cache),
        Err(DocsError::Io { .. })
    ));
    let (index, r) = Index::open(std::slice::from_ref(&s.docs), &cache).unwrap();
    assert!(!r.saved);
    assert!(r
        .warnings
        .iter()
        .any(|w| w.message.contains("could not save")));
    assert!(index.search("patroni", 1)[0]
        .source
        .ends_with("payments-failover.md"));
}

// ---- hybrid search ----

/// A deterministic "semantic" embedder: a hashed bag of words over 1024 dimensions, where
/// some words share a meaning (so a query can match a chunk with no word in common).
/// Records every text it embeds.
struct FakeEmbedder {
    model: String,
    calls: AtomicUsize,
    texts: Mutex<Vec<String>>,
    fail: bool,
}

impl FakeEmbedder {
    fn new(model: &str) -> Self {
        FakeEmbedder {
            model: model.to_string(),
            calls: AtomicUsize::new(0),
            texts: Mutex::new(Vec::new()),
            fail: false,
        }
    }
    fn embedded(&self) -> Vec<String> {
        self.texts.lock().unwrap().clone()
    }
}

fn concept(word: &str) -> String {
    let w = word.to_lowercase();
    match w.as_str() {
        "automobile" | "car" | "vehicle" => "car".into(),
        "wombat" | "marsupial" => "wombat".into(),
        _ => w,
    }
}

#[async_trait]
impl Embedder for FakeEmbedder {
    fn model_id(&self) -> String {
        self.model.clone()
    }
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.fail {
            return Err("HTTP 503 from /v1/embeddings".into());
        }
        self.texts.lock().unwrap().extend(texts.iter().cloned());
        Ok(texts
            .iter()
            .map(|t| {
                let mut v = vec![0.0f32; 1024];
                for w in t
                    .split(|c: char| !c.is_alphanumeric())
                    .filter(|w| w.len() > 2)
                {
                    let h = concept(w)
                        .bytes()
                        .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
                    v[(h % 1024) as usize] += 1.0;
                }
                v
            })
            .collect())
    }
    fn batch_size(&self) -> usize {
        16
    }
}

impl Setup {
    /// The hybrid index of the team's folder, built (or brought up to date) with `e`.
    fn open_hybrid(&self, e: &FakeEmbedder) -> (Index, IndexReport) {
        let opts = IndexOptions::new(&self.cache);
        block_on(Index::open_hybrid(
            std::slice::from_ref(&self.docs),
            &opts,
            e,
        ))
        .unwrap()
    }
}

fn hybrid_setup() -> Setup {
    let s = setup();
    write(&s.docs.join("fleet.md"), "# Fleet\n\n## Parking\nEvery car parks in zone B overnight.\n\n## Wombat\nThe marsupial enclosure closes at six.\n");
    s
}

#[test]
fn hybrid_embeds_every_chunk_once_then_only_changed_chunks() {
    let s = hybrid_setup();
    let e = FakeEmbedder::new("fake-1");
    let (index, r) = s.open_hybrid(&e);
    assert!(index.is_hybrid());
    assert_eq!(r.embedded_chunks, index.chunk_count());
    assert_eq!(e.embedded().len(), index.chunk_count());
    assert!(e.calls.load(Ordering::SeqCst) >= index.chunk_count() / 16);

    // Nothing changed: nothing embedded.
    let e2 = FakeEmbedder::new("fake-1");
    let (_, r) = s.open_hybrid(&e2);
    assert_eq!(r.embedded_chunks, 0);
    assert_eq!(e2.calls.load(Ordering::SeqCst), 0);

    // One section of one file changed: only that chunk is embedded again; the other
    // section of the same file keeps its vector.
    write(&s.docs.join("fleet.md"), "# Fleet\n\n## Parking\nEvery car parks in zone C overnight.\n\n## Wombat\nThe marsupial enclosure closes at six.\n");
    let e3 = FakeEmbedder::new("fake-1");
    let (_, r) = s.open_hybrid(&e3);
    assert_eq!(names(&r.reindexed), ["fleet.md"]);
    let texts = e3.embedded();
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert!(texts[0].contains("zone C"));

    // A plain BM25 run keeps the stored vectors for later.
    let (_, r) = Index::open(std::slice::from_ref(&s.docs), &s.cache).unwrap();
    assert!(r.reindexed.is_empty());
    let e4 = FakeEmbedder::new("fake-1");
    let (_, r) = s.open_hybrid(&e4);
    assert_eq!(r.embedded_chunks, 0);

    // Another model: everything is embedded again (vectors are not comparable).
    let e5 = FakeEmbedder::new("fake-2");
    let (index, r) = s.open_hybrid(&e5);
    assert_eq!(r.embedded_chunks, index.chunk_count());
}

#[test]
fn hybrid_search_fuses_bm25_with_vector_similarity() {
    let s = hybrid_setup();
    let e = FakeEmbedder::new("fake-1");
    let (index, _) = s.open_hybrid(&e);

    // "automobile" is in no document: BM25 finds nothing, the vectors find the car.
    assert!(index.search("automobile", 5).is_empty());
    let hits = block_on(index.search_hybrid("automobile", 5, &e)).unwrap();
    assert!(hits[0].source.ends_with("fleet.md"), "{hits:?}");
    assert_eq!(hits[0].heading, "Parking");
    // Lexical matches still count: an exact error string finds its runbook on top.
    let hits =
        block_on(index.search_hybrid("OOMKilled exit code 137 memory limit", 3, &e)).unwrap();
    assert!(
        hits.iter()
            .any(|h| h.source == "docs/runbooks/oom-killed.md"),
        "{hits:?}"
    );
    // Scores are fusion scores: at most 2/(RRF_K+1).
    assert!(hits
        .iter()
        .all(|h| h.score <= 2.0 / (kai_docs::RRF_K + 1.0) + 1e-6));
    // One result per document.
    let mut srcs: Vec<&str> = hits.iter().map(|h| h.source.as_str()).collect();
    srcs.sort();
    srcs.dedup();
    assert_eq!(srcs.len(), hits.len());
}

#[test]
fn an_embedder_failure_is_a_warning_and_bm25_still_works() {
    let s = hybrid_setup();
    let mut e = FakeEmbedder::new("fake-1");
    e.fail = true;
    let (index, r) = s.open_hybrid(&e);
    assert_eq!(r.embedded_chunks, 0);
    assert!(
        r.warnings
            .iter()
            .any(|w| w.path.is_none() && w.message.contains("HTTP 503")),
        "{:?}",
        r.warnings
    );
    assert!(index.search("patroni", 1)[0]
        .source
        .ends_with("payments-failover.md"));
    let err = block_on(index.search_hybrid("patroni", 1, &e)).unwrap_err();
    assert!(matches!(err, DocsError::Embed(_)));
    // Once the embedder works again, everything gets its vector.
    let ok = FakeEmbedder::new("fake-1");
    let (index, r) = s.open_hybrid(&ok);
    assert_eq!(r.embedded_chunks, index.chunk_count());
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}
