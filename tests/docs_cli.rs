//! `kai docs search|index|list` end to end: the real binary, a temporary home (so the
//! cache directory and config file are the test's own), real folders with good and bad
//! files, and the scripted model server answering `/v1/embeddings` for hybrid mode.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Output;

use kai_test_support::{assert_exit, both as text, items, kai, stderr, strs};
use mock_llm::MockLlm;
use serde_json::Value;

struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Home {
        Home {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn cache(&self) -> PathBuf {
        self.path().join(".cache/kai")
    }
    fn index_file(&self) -> PathBuf {
        self.cache().join("docs-index.json")
    }
    fn config(&self, text: &str) {
        let p = self.path().join(".config/kai/config.toml");
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    fn kai(&self, args: &[&str]) -> Output {
        self.kai_env(args, &[])
    }
    fn kai_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        kai!()
            .home(self.path())
            .envs(env)
            .current_dir(self.path())
            .args(args)
            .output()
    }
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(o)))
}

fn write(path: &Path, content: impl AsRef<[u8]>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

const DB_RUNBOOK: &str = "---\ntitle: Postgres failover\ncauses: [crash-loop-app-error]\ntags: [database]\n---\n\
# Postgres failover\n\n## Symptoms\nThe primary is down and writes fail with read-only transaction errors.\n\n\
## Fix\nRun patronictl failover on the standby cluster, then check replication lag.\n";

#[test]
fn search_finds_the_builtin_runbook_as_text_and_json_without_any_files() {
    let home = Home::new();
    let o = home.kai(&[
        "docs",
        "search",
        "Last State: Terminated Reason: OOMKilled Exit Code: 137",
        "-o",
        "json",
    ]);
    assert_exit(&o, 0);
    let v = json(&o);
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 5, "default k");
    assert_eq!(results[0]["source"], "docs/runbooks/oom-killed.md");
    let mut keys: Vec<&str> = results[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        ["causes", "heading", "score", "snippet", "source", "title"]
    );
    // -k, unquoted words, text output naming title, section and source.
    let o = home.kai(&["docs", "search", "pods", "stuck", "Pending", "-k", "2"]);
    assert_exit(&o, 0);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        out.lines().filter(|l| l.starts_with(['1', '2'])).count(),
        2,
        "{out}"
    );
    assert!(out.contains("docs/runbooks/"), "{out}");
    assert!(out.contains(" § "), "{out}");
    // Built-in runbooks only: nothing is written anywhere.
    assert!(!home.cache().exists(), "no cache without user folders");
    // Usage errors.
    let o = home.kai(&["docs", "search"]);
    assert_exit(&o, 2);
    let o = home.kai(&["docs", "search", "x", "-k", "0"]);
    assert_exit(&o, 2);
    let o = home.kai(&["docs", "search", "   "]);
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("empty query"), "{}", text(&o));
}

#[test]
fn help_builds_no_index_and_lists_the_docs_commands() {
    let home = Home::new();
    home.config("[docs]\npaths = [\"notes\"]\n");
    write(&home.path().join("notes/a.md"), "# A\n\nSome text.\n");
    let o = home.kai(&["--help"]);
    assert_exit(&o, 0);
    assert!(String::from_utf8_lossy(&o.stdout).contains("docs"));
    let o = home.kai(&["docs", "--help"]);
    assert_exit(&o, 0);
    let help = String::from_utf8_lossy(&o.stdout);
    for c in ["search", "index", "list"] {
        assert!(help.contains(c), "{help}");
    }
    // docs.paths is indexed on use, never for --help.
    assert!(!home.index_file().exists());
}

#[test]
fn index_reports_bad_files_by_name_keeps_the_rest_and_is_incremental() {
    let home = Home::new();
    let docs = home.path().join("team-docs");
    write(&docs.join("db.md"), DB_RUNBOOK);
    write(
        &docs.join("nested/dns.markdown"),
        "# CoreDNS notes\n\nOur CoreDNS forwards to 10.0.0.2; check the upstream first.\n",
    );
    write(
        &docs.join("binary.md"),
        b"# looks like markdown\n\0\0\x01\x02",
    );
    write(&docs.join("latin1.md"), b"# caf\xe9 \xff notes\n");
    write(&docs.join("empty.md"), "");
    write(
        &docs.join(".hidden/secret.md"),
        "# hidden\n\nnever indexed\n",
    );
    write(&docs.join("image.png"), b"\x89PNG");

    let o = home.kai(&["docs", "index", "team-docs"]);
    assert_eq!(o.status.code(), Some(3), "skipped files: {}", text(&o));
    let err = stderr(&o);
    for bad in ["binary.md", "latin1.md", "empty.md"] {
        assert!(err.contains(bad), "{bad} not named: {err}");
    }
    assert!(err.contains("binary file"), "{err}");
    assert!(err.contains("not UTF-8"), "{err}");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("2 of your files"), "{out}");
    assert!(out.contains("read: 2"), "{out}");
    assert!(home.index_file().exists());
    // No temporary file is left beside the index.
    let leftovers: Vec<_> = std::fs::read_dir(home.cache())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "docs-index.json")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // Searching from another directory finds the user's runbook (the folder was stored
    // as an absolute path), first for its own words.
    let o = home.kai(&["docs", "search", "patroni failover", "-o", "json"]);
    assert_exit(&o, 0);
    let v = json(&o);
    let top = &v["results"][0];
    assert_eq!(top["title"], "Postgres failover");
    assert!(
        top["source"].as_str().unwrap().ends_with("team-docs/db.md"),
        "{top}"
    );
    assert!(Path::new(top["source"].as_str().unwrap()).is_absolute());

    // list: the user's files first, then the built-in runbooks.
    let o = home.kai(&["docs", "list", "-o", "json"]);
    assert_exit(&o, 0);
    let v = json(&o);
    let documents = v["documents"].as_array().unwrap();
    let user: Vec<&str> = documents
        .iter()
        .filter(|d| d["builtin"] == false)
        .map(|d| d["source"].as_str().unwrap())
        .collect();
    assert_eq!(user.len(), 2, "{user:?}");
    assert!(user[0].ends_with("db.md") && user[1].ends_with("nested/dns.markdown"));
    assert!(documents.len() >= 42);
    assert_eq!(v["dirs"].as_array().unwrap().len(), 1);
    let o = home.kai(&["docs", "list"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("yours") && out.contains("Postgres failover"),
        "{out}"
    );
    assert!(out.contains("built-in") && out.contains("docs/runbooks/oom-killed.md"));

    // Unchanged: nothing is read again. (Let the racy window pass first so size and
    // modification time alone prove a file unchanged.)
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let o = home.kai(&["docs", "index", "-o", "json"]);
    let r = json(&o);
    assert_eq!(r["reindexed"].as_array().unwrap().len(), 0, "{r}");
    assert_eq!(r["reused"].as_array().unwrap().len(), 2, "{r}");
    // One file changed: only it is read and re-chunked.
    write(
        &docs.join("nested/dns.markdown"),
        "# CoreDNS notes\n\nUpstream is now 10.0.0.3.\n",
    );
    let o = home.kai(&["docs", "index", "-o", "json"]);
    let r = json(&o);
    let re = strs(&r["reindexed"]);
    assert_eq!(re.len(), 1, "{r}");
    assert!(re[0].ends_with("dns.markdown"));
    assert!(r["reused"][0].as_str().unwrap().ends_with("db.md"), "{r}");
    // The changed file and the three skipped ones (nothing about them is kept, so they are
    // checked again); the unchanged db.md is not opened.
    assert_eq!(r["files_read"], 4, "{r}");
}

#[test]
fn missing_folders_and_broken_indexes_get_clear_messages() {
    let home = Home::new();
    // A folder named on the command line must exist.
    let o = home.kai(&["docs", "index", "no-such-folder"]);
    assert_exit(&o, 2);
    assert!(
        stderr(&o).contains("no-such-folder: no such file or folder"),
        "{}",
        text(&o)
    );
    assert!(!home.index_file().exists());

    // A folder that disappears between index and search: named, and the built-in
    // runbooks still answer.
    let docs = home.path().join("gone");
    write(&docs.join("db.md"), DB_RUNBOOK);
    let o = home.kai(&["docs", "index", "gone"]);
    assert_exit(&o, 0);
    std::fs::remove_dir_all(&docs).unwrap();
    let o = home.kai(&["docs", "search", "OOMKilled", "-o", "json"]);
    assert_exit(&o, 0);
    assert!(
        stderr(&o).contains("gone: folder not found"),
        "{}",
        text(&o)
    );
    assert_eq!(
        json(&o)["results"][0]["source"],
        "docs/runbooks/oom-killed.md"
    );
    let o = home.kai(&["docs", "search", "patroni", "-o", "json"]);
    assert!(items(&json(&o)["results"])
        .iter()
        .all(|r| r["source"].as_str().unwrap().starts_with("docs/runbooks/")));

    // A corrupt index file is named, rebuilt, and searching goes on.
    std::fs::write(home.index_file(), "{\"format\": \"kai-docs-index\", \"vers").unwrap();
    let o = home.kai(&["docs", "list"]);
    assert_exit(&o, 0);
    let err = stderr(&o);
    assert!(err.contains("docs-index.json"), "{err}");
    assert!(err.contains("rebuilding"), "{err}");
    // A foreign JSON file in its place, too.
    std::fs::write(home.index_file(), "{\"hello\": 1}").unwrap();
    let o = home.kai(&["docs", "index"]);
    assert!(stderr(&o).contains("not a kai docs index"), "{}", text(&o));
    let v: Value = serde_json::from_slice(&std::fs::read(home.index_file()).unwrap()).unwrap();
    assert_eq!(v["format"], "kai-docs-index");

    // An unwritable cache directory is an error naming it.
    let ro = home.path().join("ro-cache");
    std::fs::create_dir(&ro).unwrap();
    let mut perm = std::fs::metadata(&ro).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o500);
    std::fs::set_permissions(&ro, perm).unwrap();
    let notes = home.path().join("notes");
    write(&notes.join("a.md"), "# A\n\ntext\n");
    let o = home.kai_env(
        &["docs", "index", "notes"],
        &[("KAI_CACHE_DIR", ro.to_str().unwrap())],
    );
    // (root ignores permissions; the check only means something for other users)
    if unsafe { libc::geteuid() } != 0 {
        assert_exit(&o, 1);
        assert!(stderr(&o).contains("ro-cache"), "{}", text(&o));
    }
}

#[test]
fn config_docs_paths_are_indexed_on_use_relative_to_the_config_file() {
    let home = Home::new();
    home.config("[docs]\npaths = [\"../../team\"]\n");
    write(&home.path().join("team/db.md"), DB_RUNBOOK);
    let o = home.kai(&["docs", "search", "patroni failover", "-o", "json"]);
    assert_exit(&o, 0);
    assert_eq!(json(&o)["results"][0]["title"], "Postgres failover");
    assert!(home.index_file().exists(), "indexed on use and persisted");
    // The user's runbook lists a cause code: it is that cause's runbook too.
    let o = home.kai(&["docs", "list", "-o", "json"]);
    let v = json(&o);
    let db = items(&v["documents"])
        .iter()
        .find(|d| d["title"] == "Postgres failover")
        .unwrap();
    assert_eq!(db["causes"][0], "crash-loop-app-error");
}

fn hybrid_home(llm: &MockLlm) -> Home {
    let home = Home::new();
    home.config(&format!(
        "default_provider = \"mock\"\n[providers.mock]\nbase_url = \"{}\"\nmodel = \"mock\"\napi_key_env = \"\"\n\
[docs]\nhybrid = true\nembedding_model = \"mock-embed\"\n",
        llm.base_url()
    ));
    home
}

fn embedded_texts(llm: &MockLlm) -> Vec<String> {
    llm.embedding_requests()
        .iter()
        .flat_map(|r| {
            strs(&r["input"])
                .into_iter()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn hybrid_mode_embeds_through_the_provider_and_reembeds_only_what_changed() {
    let llm = MockLlm::start(Vec::new());
    let home = hybrid_home(&llm);
    let docs = home.path().join("team");
    write(&docs.join("db.md"), DB_RUNBOOK);
    write(
        &docs.join("dns.md"),
        "# CoreDNS notes\n\n## Upstream\nOur CoreDNS forwards to 10.0.0.2.\n",
    );

    // Past the racy window, so an unchanged size and modification time prove a file
    // unchanged without reading it.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let o = home.kai(&["docs", "index", "team", "-o", "json"]);
    assert_exit(&o, 0);
    let r = json(&o);
    let chunks = r["chunks"].as_u64().unwrap();
    assert_eq!(r["embedded_chunks"].as_u64().unwrap(), chunks, "{r}");
    let reqs = llm.embedding_requests();
    assert!(!reqs.is_empty());
    assert!(reqs.iter().all(|q| q["model"] == "mock-embed"));
    assert_eq!(embedded_texts(&llm).len() as u64, chunks);
    assert!(llm.chat_requests().is_empty(), "indexing never chats");

    // Nothing changed: no embeddings request at all.
    let before = llm.embedding_requests().len();
    let o = home.kai(&["docs", "index", "-o", "json"]);
    assert_exit(&o, 0);
    assert_eq!(json(&o)["embedded_chunks"], 0);
    assert_eq!(json(&o)["files_read"], 0);
    assert_eq!(llm.embedding_requests().len(), before);

    // One section of one file changed: only that file is read, only that chunk embedded.
    write(
        &docs.join("dns.md"),
        "# CoreDNS notes\n\n## Upstream\nOur CoreDNS now forwards to 10.0.0.3.\n",
    );
    let o = home.kai(&["docs", "index", "-o", "json"]);
    let r = json(&o);
    assert_eq!(r["files_read"], 1, "{r}");
    assert_eq!(r["embedded_chunks"], 1, "{r}");
    let new_texts: Vec<String> = embedded_texts(&llm).split_off(chunks as usize);
    assert_eq!(new_texts.len(), 1, "{new_texts:?}");
    assert!(new_texts[0].contains("10.0.0.3"), "{new_texts:?}");

    // A hybrid search embeds the query once and fuses: the user's runbook comes first for
    // its words.
    let before = llm.embedding_requests().len();
    let o = home.kai(&["docs", "search", "patroni failover standby", "-o", "json"]);
    assert_exit(&o, 0);
    assert_eq!(json(&o)["results"][0]["title"], "Postgres failover");
    let after = llm.embedding_requests();
    assert_eq!(after.len(), before + 1);
    assert_eq!(after[before]["input"][0], "patroni failover standby");

    // The endpoint failing: a warning, and BM25 still answers.
    llm.fail_embeddings(Some(400));
    let o = home.kai(&["docs", "search", "patroni failover", "-o", "json"]);
    assert_exit(&o, 0);
    assert!(stderr(&o).contains("BM25 only"), "{}", text(&o));
    assert_eq!(json(&o)["results"][0]["title"], "Postgres failover");
}

#[test]
fn hybrid_needs_a_key_for_a_hosted_provider_and_falls_back_to_bm25() {
    let home = Home::new();
    home.config("[docs]\nhybrid = true\n");
    let o = home.kai(&["docs", "search", "OOMKilled", "-o", "json"]);
    assert_exit(&o, 0);
    assert!(stderr(&o).contains("no API key"), "{}", text(&o));
    assert_eq!(
        json(&o)["results"][0]["source"],
        "docs/runbooks/oom-killed.md"
    );
}
