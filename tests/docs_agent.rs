//! Runbooks in a diagnosis, end to end: the real `kai` binary against the real test
//! cluster and the scripted model server. The first request carries the runbook section of
//! the top finding's cause; the model calls `search_docs` and gets results; the answer's
//! citation is listed in `-o json`. `kai diagnose --no-llm` links the runbook.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Output;

use kai_test_support::{assert_exit, items, kai, scenario, strs, tool_names};
use mock_llm::{MockLlm, Reply};
use serde_json::{json, Value};
use tempfile::TempDir;

/// The crashloop-app-error scenario in a test's namespace, and a fresh home for kai.
struct Crash {
    ns: &'static str,
    kc: PathBuf,
    home: TempDir,
}

impl Crash {
    async fn new(ns: &'static str) -> Crash {
        Crash {
            ns,
            kc: scenario("crashloop-app-error", ns).await,
            home: tempfile::tempdir().unwrap(),
        }
    }

    fn home(&self) -> &Path {
        self.home.path()
    }

    /// `kai ARGS` in the namespace with the scripted model; the home is also its data
    /// directory (and holds its config under `.config`).
    fn kai(&self, llm: &MockLlm, args: &[&str]) -> Output {
        kai!()
            .home(self.home())
            .env("KAI_DATA_DIR", self.home())
            .cluster(&self.kc, self.ns)
            .model(llm)
            .args(args)
            .output()
    }
}

/// A team runbook for cause crash-loop-app-error at `~/runbooks/backend.md`, with
/// `docs.paths` in `home`'s config naming its folder; its path.
fn team_runbook(home: &Path, runbook: &str) -> PathBuf {
    let notes = home.join("runbooks");
    std::fs::create_dir_all(&notes).unwrap();
    std::fs::write(notes.join("backend.md"), runbook).unwrap();
    let cfg = home.join(".config/kai/config.toml");
    std::fs::create_dir_all(cfg.parent().unwrap()).unwrap();
    std::fs::write(&cfg, "[docs]\npaths = [\"~/runbooks\"]\n").unwrap();
    notes.join("backend.md")
}

/// The tool results of a request, by the name of the call they answer.
fn results_of(req: &Value, tool: &str) -> Vec<String> {
    let msgs = req["messages"].as_array().unwrap();
    let ids: Vec<&str> = msgs
        .iter()
        .flat_map(|m| m["tool_calls"].as_array().into_iter().flatten())
        .filter(|c| c["function"]["name"] == tool)
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    msgs.iter()
        .filter(|m| m["role"] == "tool" && ids.contains(&m["tool_call_id"].as_str().unwrap_or("")))
        .map(|m| m["content"].as_str().unwrap_or_default().to_string())
        .collect()
}

const CITED: &str = "docs/runbooks/crash-loop-app-error.md § Fix";

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_loop_diagnosis_carries_the_runbook_searches_docs_and_cites_it() {
    let ns = "docs-crash";
    let c = Crash::new(ns).await;
    let llm = MockLlm::start(vec![
        Reply::tool_call(
            "search_docs",
            json!({"query": "password authentication failed database credentials", "limit": 2})
                .to_string(),
        ),
        Reply::text(format!(
            "**Cause:** the database rejects the password.\n\n**Fix:** correct the Secret and restart.\n\n**Runbook:** {CITED}"
        )),
    ]);
    let out = c.kai(&llm, &["-o", "json", "why is backend crashlooping?"]);
    assert_exit(&out, 0);

    let reqs = llm.chat_requests();
    assert_eq!(reqs.len(), 2, "one search round trip");
    // 1. The first request already holds the runbook section for the top finding's cause,
    //    bounded, as a search_docs call kai made itself.
    let pre = results_of(&reqs[0], "search_docs");
    assert_eq!(pre.len(), 1, "{:#}", reqs[0]["messages"]);
    let section = &pre[0];
    assert!(
        section.starts_with("Runbook for cause crash-loop-app-error:"),
        "{section}"
    );
    assert!(
        section.contains("docs/runbooks/crash-loop-app-error.md"),
        "{section}"
    );
    assert!(section.contains("§ Fix"), "{section}");
    assert!(
        section.contains("The cause is in the application or its configuration"),
        "the Fix section's text: {section}"
    );
    assert!(section.len() <= 1200, "{} bytes", section.len());
    let analyze = results_of(&reqs[0], "analyze").join("\n");
    assert!(analyze.contains("crash-loop-app-error"), "{analyze}");
    // The tool is offered to the model.
    assert!(tool_names(&reqs[0]).iter().any(|t| t == "search_docs"));

    // 2. The model's own search got ranked results.
    let found = results_of(&reqs[1], "search_docs");
    assert_eq!(found.len(), 2, "the pre-gathered one and the model's");
    let search = &found[1];
    assert!(search.starts_with("2 best-matching documents"), "{search}");
    assert!(search.contains("source: docs/runbooks/"), "{search}");

    // 3. The printed answer cites the runbook, and -o json lists the citation.
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["answer"].as_str().unwrap().contains(CITED), "{v:#}");
    let citations = v["citations"].as_array().unwrap();
    assert_eq!(citations.len(), 1, "{v:#}");
    assert_eq!(
        citations[0]["source"],
        "docs/runbooks/crash-loop-app-error.md"
    );
    assert_eq!(citations[0]["heading"], "Fix");
    assert!(citations[0]["title"]
        .as_str()
        .unwrap()
        .contains("crash-loops"));
    let calls: Vec<(&str, bool)> = items(&v["tool_calls"])
        .iter()
        .filter(|c| c["name"] == "search_docs")
        .map(|c| {
            (
                c["name"].as_str().unwrap(),
                c["pregathered"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(calls, [("search_docs", true), ("search_docs", false)]);

    // No docs index was written: the built-in runbooks need none.
    assert!(!c.home().join(".cache/kai/docs-index.json").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_teams_own_runbook_for_the_cause_comes_first() {
    let ns = "docs-team";
    let c = Crash::new(ns).await;
    let team = team_runbook(
        c.home(),
        "---\ntitle: Backend crash loop (team runbook)\ncauses: [crash-loop-app-error]\n---\n\
## Fix\nRotate the db-creds Secret with vault-sync, then restart backend.\n",
    );
    let cited = format!("{} § Fix", team.display());
    let llm = MockLlm::start(vec![Reply::text(format!(
        "**Cause:** bad password.\n\n**Runbook:** {cited}"
    ))]);
    let out = c.kai(&llm, &["-o", "json", "why is backend crashlooping?"]);
    assert_exit(&out, 0);
    let reqs = llm.chat_requests();
    let pre = results_of(&reqs[0], "search_docs");
    assert_eq!(pre.len(), 1);
    assert!(pre[0].contains("vault-sync"), "{}", pre[0]);
    assert!(
        pre[0].contains("Backend crash loop (team runbook)"),
        "{}",
        pre[0]
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let citations = v["citations"].as_array().unwrap();
    assert_eq!(citations.len(), 1, "{v:#}");
    assert_eq!(
        citations[0]["source"].as_str().unwrap(),
        team.to_str().unwrap()
    );
    assert_eq!(citations[0]["heading"], "Fix");
}

#[tokio::test(flavor = "multi_thread")]
async fn diagnose_without_a_model_links_each_findings_runbook() {
    let ns = "docs-diag";
    let c = Crash::new(ns).await;
    let llm = MockLlm::start(Vec::new());
    let out = c.kai(&llm, &["diagnose", "deployment/backend", "--no-llm"]);
    assert_exit(&out, 3);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(
            "runbook: Container crash-loops because the application exits with an error (docs/runbooks/crash-loop-app-error.md)"
        ),
        "{stdout}"
    );
    assert_eq!(llm.request_count(), 0);
    // No user documents: nothing was indexed or written.
    assert!(!c.home().join(".cache/kai").exists());

    // With a team runbook for the cause in docs.paths, the finding links it too, in text
    // and in JSON (`docs`).
    let team = team_runbook(
        c.home(),
        "---\ntitle: Backend crash loop\ncauses: [crash-loop-app-error]\n---\n## Fix\nRotate db-creds.\n",
    );
    let out = c.kai(&llm, &["diagnose", "deployment/backend", "--no-llm"]);
    assert_exit(&out, 3);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("runbook: {}\n", team.display())),
        "{stdout}"
    );
    let out = c.kai(
        &llm,
        &["diagnose", "deployment/backend", "--no-llm", "-o", "json"],
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let top = &v["findings"][0];
    assert_eq!(top["cause"], "crash-loop-app-error", "{v:#}");
    assert_eq!(top["runbook"], "docs/runbooks/crash-loop-app-error.md");
    let docs = strs(&top["docs"]);
    assert_eq!(
        docs,
        [
            "docs/causes.md#crash-loop-app-error",
            team.to_str().unwrap()
        ]
    );
}
