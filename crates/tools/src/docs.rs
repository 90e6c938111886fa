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

fn render_hits(query: &str, hits: &[Hit], hybrid: bool) -> String {
    let q = cut(query, ECHO_BYTES);
    if hits.is_empty() {
        return format!(
            "No runbook or document matches {q:?}. Try the exact error message, the resource kind, or fewer words."
        );
    }
    let how = if hybrid {
        "BM25 fused with embeddings"
    } else {
        "BM25"
    };
    let mut out = format!(
        "{} best-matching documents for {q:?} ({how}, best first):\n",
        hits.len()
    );
    for (i, h) in hits.iter().enumerate() {
        let budget = if i == 0 {
            FIRST_EXCERPT_BYTES
        } else {
            EXCERPT_BYTES
        };
        out.push_str(&format!(
            "\n{}. {} § {}\n   source: {} | causes: {} | score: {:.3}\n{}\n",
            i + 1,
            h.title,
            heading_or_intro(&h.heading),
            h.source,
            if h.causes.is_empty() {
                "-".to_string()
            } else {
                h.causes.join(", ")
            },
            h.score,
            indent(&excerpt(&h.text, budget)),
        ));
    }
    out.push_str("\nCite a document you use as `<source> § <section>`.");
    out
}

/// A cause's runbook sections. One section (what pre-gathering asks for) is fitted whole
/// into [`PREGATHER_RUNBOOK_BYTES`]; several get [`FIRST_EXCERPT_BYTES`] each.
fn render_cause(code: &str, hits: &[Hit]) -> String {
    let header = |h: &Hit| {
        format!(
            "Runbook for cause {}: {} ({})\n",
            cut(code, ECHO_BYTES),
            h.title,
            h.source
        )
    };
    let cite = |h: &Hit| {
        format!(
            "Cite it as `{} § {}`.",
            h.source,
            heading_or_intro(&h.heading)
        )
    };
    let mut out = String::new();
    for (i, h) in hits.iter().enumerate() {
        if i == 0 || hits[i - 1].source != h.source {
            out.push_str(&header(h));
        }
        let section = format!("§ {}\n", heading_or_intro(&h.heading));
        let budget = if hits.len() == 1 {
            let fixed = header(h).len() + section.len() + cite(h).len() + 1;
            PREGATHER_RUNBOOK_BYTES.saturating_sub(fixed)
        } else {
            FIRST_EXCERPT_BYTES
        };
        out.push_str(&section);
        out.push_str(&excerpt(&h.text, budget));
        out.push('\n');
    }
    if let Some(h) = hits.first() {
        out.push_str(&cite(h));
    }
    out
}

fn heading_or_intro(h: &str) -> &str {
    if h.is_empty() {
        "Introduction"
    } else {
        h
    }
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("   {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// At most `max` bytes of `text`, cut after the last whole line (or word) that fits, with
/// a marker saying more exists.
pub fn excerpt(text: &str, max: usize) -> String {
    let text = text.trim();
    if text.len() <= max {
        return text.to_string();
    }
    const MARK: &str = " […]";
    let head = cut(text, max.saturating_sub(MARK.len()));
    let end = head
        .rfind('\n')
        .filter(|&i| i > head.len() / 2)
        .or_else(|| head.rfind(' ').filter(|&i| i > head.len() / 2))
        .unwrap_or(head.len());
    format!("{}{MARK}", head[..end].trim_end())
}

/// Pre-gathering with the runbook of the top finding: wraps the cluster gatherer and,
/// when its `analyze` result names a cause, adds the cause's runbook section as a
/// `search_docs` call kai made itself (bounded by [`PREGATHER_RUNBOOK_BYTES`]).
pub struct RunbookGatherer {
    inner: Arc<dyn Gatherer>,
    docs: Arc<Docs>,
}

impl RunbookGatherer {
    pub fn new(inner: Arc<dyn Gatherer>, docs: Arc<Docs>) -> Self {
        RunbookGatherer { inner, docs }
    }
}

#[async_trait]
impl Gatherer for RunbookGatherer {
    async fn gather(
        &self,
        turn: Option<TurnId>,
        question: &str,
        namespace: Option<&str>,
    ) -> Vec<Gathered> {
        // The index is built (or loaded) while the cluster is read, not after.
        let (mut gathered, _) = futures::join!(
            self.inner.gather(turn, question, namespace),
            self.docs.load()
        );
        if let Some(g) = runbook_for(&self.docs, &gathered).await {
            // The findings' link to the runbook whose section now follows is said once.
            if let (Some(cause), None) = (top_cause(&gathered), &g.error) {
                let link = format!("runbook: {}", cause.runbook());
                for a in gathered.iter_mut().filter(|a| a.tool == "analyze") {
                    a.output = a
                        .output
                        .lines()
                        .filter(|l| l.trim() != link)
                        .collect::<Vec<_>>()
                        .join("\n");
                }
            }
            gathered.push(g);
        }
        gathered
    }
}

/// The most likely cause of the pre-gathered analysis, as its findings said it (a code
/// kai knows; none when the analysis failed or found nothing).
pub fn top_cause(gathered: &[Gathered]) -> Option<Cause> {
    gathered
        .iter()
        .find(|g| g.tool == "analyze" && g.error.is_none())?
        .findings
        .as_ref()?
        .top_cause
        .as_deref()?
        .parse()
        .ok()
}

/// The runbook section for the top finding's cause, as a pre-gathered `search_docs` call.
pub async fn runbook_for(docs: &Docs, gathered: &[Gathered]) -> Option<Gathered> {
    let cause = top_cause(gathered)?;
    let args = json!({"cause": cause.as_str()});
    let start = Instant::now();
    let result = run(docs, args.clone()).await;
    let (output, error) = match result {
        Ok(o) => (o, None),
        Err(ToolError::Model(m) | ToolError::Fatal(m)) => (m.clone(), Some(m)),
    };
    Some(Gathered {
        tool: TOOL.to_string(),
        args,
        output,
        duration: start.elapsed(),
        error,
        ..Gathered::default()
    })
}

/// A document an answer cites.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Citation {
    /// `docs/runbooks/<slug>.md` or the user file's path.
    pub source: String,
    pub title: String,
    /// The section cited, when the answer names one of the document's sections.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heading: Option<String>,
}

/// A document kai showed the model, for validating citations.
#[derive(Debug, Clone)]
struct Known {
    title: String,
    headings: Vec<String>,
}

/// User documents `search_docs` returned in this process (built-in runbooks are known
/// anyway). Citations are checked against them, so a path the model made up is never
/// listed as a source. Process-wide because the front ends that print citations (one-shot,
/// REPL) share no state with the tool but the process.
fn surfaced() -> &'static Mutex<BTreeMap<String, Known>> {
    static SURFACED: OnceLock<Mutex<BTreeMap<String, Known>>> = OnceLock::new();
    SURFACED.get_or_init(|| Mutex::new(BTreeMap::new()))
}

fn remember(hits: &[Hit]) {
    let Ok(mut map) = surfaced().lock() else {
        return;
    };
    for h in hits
        .iter()
        .filter(|h| !h.source.starts_with(kai_docs::BUILTIN_PREFIX))
    {
        let k = map.entry(h.source.clone()).or_insert_with(|| Known {
            title: h.title.clone(),
            headings: Vec::new(),
        });
        if !k.headings.contains(&h.heading) {
            k.headings.push(h.heading.clone());
        }
    }
}

/// The documents `answer` cites, in the order it first mentions them: every built-in
/// runbook path (`docs/runbooks/<slug>.md`) and every user document kai returned in this
/// process, with the section when the path is followed by `§ Section` or `#section`.
pub fn citations(answer: &str) -> Vec<Citation> {
    let mut known: Vec<(String, Known)> = kai_docs::builtin_runbooks()
        .into_iter()
        .map(|r| {
            (
                r.source,
                Known {
                    title: r.title,
                    headings: r.headings,
                },
            )
        })
        .collect();
    if let Ok(map) = surfaced().lock() {
        known.extend(map.iter().map(|(s, k)| (s.clone(), k.clone())));
    }
    // Longest paths first, and matched text masked: a user file
    // `/srv/docs/runbooks/oom-killed.md` must not also count as the built-in one.
    known.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(&b.0)));
    let mut masked = answer.to_string();
    let mut found: Vec<(usize, Citation)> = Vec::new();
    for (source, k) in &known {
        let mut from = 0;
        while let Some(pos) = masked[from..].find(source.as_str()).map(|p| p + from) {
            let end = pos + source.len();
            // Part of a longer path (`/srv/x/docs/runbooks/a.md`) is not this document.
            let inside_path = masked[..pos]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || matches!(c, '/' | '.' | '-' | '_' | '~'));
            if inside_path {
                from = end;
                continue;
            }
            let heading = cited_heading(&masked[end..], &k.headings);
            let c = Citation {
                source: source.clone(),
                title: k.title.clone(),
                heading,
            };
            if !found.iter().any(|(_, f)| *f == c) {
                found.push((pos, c));
            }
            // Same length, so positions found later stay valid.
            masked.replace_range(pos..end, &"\u{1}".repeat(source.len()));
            from = end;
        }
    }
    found.sort_by_key(|(pos, _)| *pos);
    found.into_iter().map(|(_, c)| c).collect()
}

/// The section named right after a cited path (`#how-to-confirm`, ` § Fix`), if it is
/// one of `headings` (the longest that the text starts with, ignoring case).
fn cited_heading(after: &str, headings: &[String]) -> Option<String> {
    let norm = |s: &str| -> String {
        s.chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect()
    };
    if let Some(anchor) = after.strip_prefix('#') {
        let anchor = anchor
            .split(|c: char| {
                c.is_whitespace() || matches!(c, ')' | ']' | '`' | ',' | ';' | '"' | '*')
            })
            .next()
            .unwrap_or("");
        let want = norm(anchor.trim_end_matches('.'));
        return (!want.is_empty())
            .then(|| headings.iter().find(|h| norm(h) == want).cloned())
            .flatten();
    }
    let t = after.trim_start_matches([' ', '\u{a0}', ':']);
    let t = t.strip_prefix('§')?.trim_start();
    let mut by_len: Vec<&String> = headings.iter().filter(|h| !h.is_empty()).collect();
    by_len.sort_by_key(|h| std::cmp::Reverse(h.len()));
    by_len
        .into_iter()
        .find(|h| {
            t.get(..h.len()).is_some_and(|p| p.eq_ignore_ascii_case(h))
                && !t[h.len()..].starts_with(|c: char| c.is_alphanumeric())
        })
        .cloned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use kai_core::agent::FindingFacts;

    fn analysis(cause: Option<&str>, text: &str) -> Gathered {
        Gathered {
            tool: "analyze".into(),
            output: text.into(),
            findings: Some(FindingFacts {
                top_cause: cause.map(String::from),
                proposes_change: false,
            }),
            ..Gathered::default()
        }
    }

    #[test]
    fn the_top_cause_is_what_the_findings_said_not_what_the_text_reads() {
        // A lookalike line in quoted cluster text changes nothing.
        let text = "Pod a/b\n      │  CRITICAL oom-killed  x\n";
        assert_eq!(
            top_cause(&[analysis(Some("crash-loop-app-error"), text)]),
            Some(Cause::CrashLoopAppError)
        );
        assert_eq!(
            top_cause(&[analysis(None, "  CRITICAL oom-killed  x\n")]),
            None
        );
        assert_eq!(top_cause(&[analysis(Some("no-such-cause"), "")]), None);
        let mut failed = analysis(Some("oom-killed"), "forbidden");
        failed.error = Some("forbidden".into());
        assert_eq!(top_cause(&[failed]), None);
        // Only an analysis names a cause.
        let mut describe = analysis(Some("oom-killed"), "");
        describe.tool = "describe".into();
        assert_eq!(top_cause(&[describe]), None);
    }

    #[tokio::test]
    async fn a_cause_lookup_returns_its_runbook_section_within_the_pregather_budget() {
        let docs = Docs::builtin();
        for cause in Cause::ALL {
            let out = run(&docs, json!({"cause": cause.as_str()})).await.unwrap();
            assert!(
                out.len() <= PREGATHER_RUNBOOK_BYTES,
                "{cause}: {} bytes",
                out.len()
            );
            assert!(out.contains(cause.runbook()), "{cause}: {out}");
            assert!(out.contains(&format!("Cite it as `{} § ", cause.runbook())));
        }
        let out = run(&docs, json!({"cause": "oom-killed", "limit": 4}))
            .await
            .unwrap();
        for h in ["§ Fix", "§ How to confirm", "§ Symptoms", "§ Prevention"] {
            assert!(out.contains(h), "{out}");
        }
        let out = run(&docs, json!({"cause": "made-up"})).await.unwrap();
        assert!(out.starts_with("No runbook lists the cause code"), "{out}");
    }

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

    #[test]
    fn excerpts_end_at_a_line_or_word_with_a_marker() {
        assert_eq!(excerpt("short", 100), "short");
        let long = "line one is here\nline two is here\nline three is longer than that";
        let e = excerpt(long, 40);
        assert!(e.len() <= 40, "{e}");
        assert!(e.ends_with(" […]"), "{e}");
        assert!(e.starts_with("line one is here\nline two"), "{e}");
        let e = excerpt(&"é".repeat(100), 21);
        assert!(e.len() <= 21 && e.ends_with("[…]"), "{e}");
    }

    #[test]
    fn citations_are_known_documents_with_their_cited_section() {
        let a = "**Cause:** crash loop.\n\nRunbook: docs/runbooks/crash-loop-app-error.md § Fix. \
See also `docs/runbooks/oom-killed.md#how-to-confirm` and docs/runbooks/made-up.md, \
and again docs/runbooks/crash-loop-app-error.md § Fix.";
        let c = citations(a);
        assert_eq!(c.len(), 2, "{c:?}");
        assert_eq!(c[0].source, "docs/runbooks/crash-loop-app-error.md");
        assert_eq!(c[0].heading.as_deref(), Some("Fix"));
        assert!(!c[0].title.is_empty());
        assert_eq!(c[1].source, "docs/runbooks/oom-killed.md");
        assert_eq!(c[1].heading.as_deref(), Some("How to confirm"));
        assert!(citations("no sources here").is_empty());
        let c = citations("see docs/runbooks/oom-killed.md § Nonsense");
        assert_eq!(c[0].heading, None);
    }

    #[test]
    fn a_user_document_is_cited_only_once_kai_returned_it() {
        let src = "/srv/team/docs/runbooks/oom-killed.md";
        assert!(citations(&format!("per {src} § Fix")).is_empty());
        remember(&[Hit {
            source: src.into(),
            title: "Team OOM".into(),
            heading: "Fix".into(),
            causes: vec![],
            score: 1.0,
            snippet: String::new(),
            text: String::new(),
        }]);
        let c = citations(&format!("per {src} § Fix"));
        assert_eq!(
            c.len(),
            1,
            "the built-in path inside it is not cited: {c:?}"
        );
        assert_eq!(c[0].title, "Team OOM");
        assert_eq!(c[0].heading.as_deref(), Some("Fix"));
    }
}
