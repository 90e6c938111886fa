//! The search index: BM25 (the `bm25` crate's scorer) over several fields, field boosts,
//! spelling correction against the index vocabulary, snippets, and reciprocal rank fusion
//! with vector similarity for hybrid search.

use crate::corpus::{builtin_files, parse_document, Doc};
use crate::embed::{cosine, normalize, Embedder};
use crate::error::DocsError;
use crate::text::{bounded_osa, snippet, words, Analyzer, Term};
use bm25::{EmbedderBuilder, Embedding, Scorer, TokenEmbedder, TokenEmbedding};
use kai_text::cut;
use serde::Serialize;
use std::collections::{HashMap, HashSet};

/// Longest query analysed; the rest is ignored (a pasted log dump is not a better query).
pub const MAX_QUERY_BYTES: usize = 4096;
/// Distinct terms of one query that are scored (after analysis and expansion).
const MAX_QUERY_TERMS: usize = 256;
/// Unknown words of one query that are looked up for a spelling correction: each lookup
/// scans part of the vocabulary, and a pasted log line is full of unknown words.
const MAX_CORRECTIONS: usize = 16;
/// Most results one search returns, whatever `k` asks.
pub const MAX_K: usize = 100;
/// Snippet length in bytes (plain text).
pub const SNIPPET_BYTES: usize = 240;
/// Reciprocal rank fusion constant (the usual 60: rank 1 scores 1/61).
pub const RRF_K: f32 = 60.0;
/// How many results of each ranking take part in the fusion.
const FUSION_DEPTH: usize = 50;

/// One search result: the best section of one document.
///
/// Serialises to the JSON shape of `kai docs search -o json`
/// (`source`, `title`, `heading`, `causes`, `score`, `snippet`); the full section text is
/// in [`Hit::text`] for callers that put it into a model's context, and is not serialised.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hit {
    /// `docs/runbooks/<slug>.md` for a built-in runbook, the file's path for a user file.
    pub source: String,
    /// The document's title (front matter, first `#` heading, or file name).
    pub title: String,
    /// The section heading ("Fix"); empty for text before the first heading.
    pub heading: String,
    /// Cause codes the document's front matter lists.
    pub causes: Vec<String>,
    /// BM25 score (hybrid: the reciprocal-rank-fusion score). Only comparable within one
    /// result list.
    pub score: f32,
    /// A short plain-text excerpt around the best-matching line.
    pub snippet: String,
    /// The section's full markdown (without its heading line).
    #[serde(skip)]
    pub text: String,
}

/// One indexed document, for `kai docs list`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceInfo {
    /// As in [`Hit::source`].
    pub source: String,
    /// True for the runbooks compiled into kai.
    pub builtin: bool,
    /// The document's title.
    pub title: String,
    /// Cause codes from its front matter.
    pub causes: Vec<String>,
    /// Tags from its front matter.
    pub tags: Vec<String>,
    /// How many chunks (sections or parts of sections) it was indexed as.
    pub chunks: usize,
}

/// Scoring parameters. The defaults were chosen on the labelled query set
/// (`docs/runbooks/queries.tsv`); see the crate docs.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tuning {
    pub title: f32,
    pub tags: f32,
    pub causes: f32,
    pub doc: f32,
    pub heading: f32,
    pub body: f32,
    pub k1: f32,
    pub b: f32,
    pub spelling: bool,
    pub synonyms: bool,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            title: 1.0,
            tags: 1.0,
            causes: 0.5,
            doc: 1.0,
            heading: 0.5,
            body: 1.0,
            k1: 1.2,
            b: 0.75,
            spelling: true,
            synonyms: true,
        }
    }
}

/// Feeds pre-analysed terms (joined by spaces) to the `bm25` embedder unchanged.
#[derive(Default)]
struct Pretokenized;

impl bm25::Tokenizer for Pretokenized {
    fn tokenize(&self, input_text: &str) -> Vec<String> {
        input_text
            .split(' ')
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect()
    }
}

/// One BM25 field: a scorer keyed by document or chunk number.
struct Field {
    weight: f32,
    scorer: Scorer<usize, u64>,
}

impl Field {
    fn build(weight: f32, texts: &[Vec<String>], t: &Tuning) -> Field {
        let total: usize = texts.iter().map(Vec::len).sum();
        let avgdl = if texts.is_empty() || total == 0 {
            1.0
        } else {
            total as f32 / texts.len() as f32
        };
        let embedder = EmbedderBuilder::<u64, Pretokenized>::with_avgdl(avgdl)
            .k1(t.k1)
            .b(t.b)
            .build();
        let mut scorer = Scorer::new();
        for (i, terms) in texts.iter().enumerate() {
            if terms.is_empty() {
                continue;
            }
            let mut e = embedder.embed(&terms.join(" "));
            // The embedder keeps one entry per occurrence (same value for repeats); one
            // per distinct term is enough and keeps scoring fast.
            let mut seen = HashSet::new();
            e.0.retain(|te| seen.insert(te.index));
            scorer.upsert(&i, e);
        }
        Field { weight, scorer }
    }

    fn add_scores(&self, q: &Embedding<u64>, into: &mut HashMap<usize, f32>) {
        if self.weight == 0.0 {
            return;
        }
        for m in self.scorer.matches(q) {
            *into.entry(m.id).or_default() += self.weight * m.score;
        }
    }
}

/// Words of the index, for correcting misspelled query words.
#[derive(Default)]
struct Vocab {
    stems: HashSet<String>,
    /// Alphabetic surface forms of at least 4 chars, by length in chars, with their stem.
    by_len: HashMap<usize, Vec<(Vec<char>, String)>>,
}

impl Vocab {
    fn add(&mut self, seen: &mut HashSet<String>, t: Term) {
        let n = t.surface.chars().count();
        if n >= 4 && t.surface.chars().all(char::is_alphabetic) && seen.insert(t.surface.clone()) {
            self.by_len
                .entry(n)
                .or_default()
                .push((t.surface.chars().collect(), t.stem.clone()));
        }
        self.stems.insert(t.stem);
    }

    /// The stem of an index word one edit away from `surface` (an unknown word of at least
    /// five letters), the first found in index order.
    fn correct(&self, surface: &str) -> Option<&str> {
        let chars: Vec<char> = surface.chars().collect();
        if chars.len() < 5 || !chars.iter().all(|c| c.is_alphabetic()) {
            return None;
        }
        for len in [chars.len(), chars.len() + 1, chars.len() - 1] {
            for (w, stem) in self.by_len.get(&len).into_iter().flatten() {
                if bounded_osa(&chars, w, 1).is_some() {
                    return Some(stem);
                }
            }
        }
        None
    }
}

/// A searchable index over the built-in runbooks and any user documents.
///
/// Build it with [`Index::builtin`], [`crate::Index::open`] (built-in plus user folders,
/// persisted incrementally) or [`crate::Index::open_hybrid`]. Searching never fails: any
/// text is a valid query.
pub struct Index {
    pub(crate) docs: Vec<Doc>,
    /// Global chunk number → (document, chunk within it).
    chunk_refs: Vec<(usize, usize)>,
    doc_fields: Vec<Field>,
    chunk_fields: Vec<Field>,
    vocab: Vocab,
    analyzer: Analyzer,
    tuning: Tuning,
    /// The model that produced the chunk vectors, when hybrid search is on.
    pub(crate) embed_model: Option<String>,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index")
            .field("docs", &self.docs.len())
            .field("chunks", &self.chunk_refs.len())
            .field("embed_model", &self.embed_model)
            .finish()
    }
}

impl Index {
    /// The index of the built-in runbooks only (compiled into the binary; no disk access).
    pub fn builtin() -> Result<Index, DocsError> {
        let docs = builtin_docs()?;
        Ok(Index::from_docs(docs, Tuning::default()))
    }

    #[doc(hidden)]
    pub fn builtin_with_tuning(t: Tuning) -> Result<Index, DocsError> {
        Ok(Index::from_docs(builtin_docs()?, t))
    }

    pub(crate) fn from_docs(docs: Vec<Doc>, tuning: Tuning) -> Index {
        let analyzer = Analyzer::default();
        let mut vocab = Vocab::default();
        let mut seen_surface = HashSet::new();
        // Stemming dominates indexing time and documents repeat their words: analyse each
        // distinct word once.
        let mut cache: HashMap<String, Vec<String>> = HashMap::new();
        let mut analyse = |text: &str| {
            let mut out = Vec::new();
            for word in words(text) {
                if let Some(v) = cache.get(word) {
                    out.extend(v.iter().cloned());
                    continue;
                }
                let mut v = Vec::new();
                analyzer.each_term(word, |t| {
                    v.push(t.stem.clone());
                    vocab.add(&mut seen_surface, t);
                });
                out.extend(v.iter().cloned());
                cache.insert(word.to_string(), v);
            }
            out
        };
        let mut title = Vec::with_capacity(docs.len());
        let mut tags = Vec::with_capacity(docs.len());
        let mut causes = Vec::with_capacity(docs.len());
        let mut whole = Vec::with_capacity(docs.len());
        let mut heading = Vec::new();
        let mut body = Vec::new();
        let mut chunk_refs = Vec::new();
        for (di, d) in docs.iter().enumerate() {
            title.push(analyse(&d.title));
            tags.push(analyse(&d.tags.join(" ; ")));
            causes.push(analyse(&d.causes.join(" ; ")));
            let mut all = Vec::new();
            for (ci, c) in d.chunks.iter().enumerate() {
                let h = analyse(&c.heading);
                let b = analyse(&c.text);
                all.extend(h.iter().cloned());
                all.extend(b.iter().cloned());
                heading.push(h);
                body.push(b);
                chunk_refs.push((di, ci));
            }
            whole.push(all);
        }
        let t = &tuning;
        let doc_fields = vec![
            Field::build(t.title, &title, t),
            Field::build(t.tags, &tags, t),
            Field::build(t.causes, &causes, t),
            Field::build(t.doc, &whole, t),
        ];
        let chunk_fields = vec![
            Field::build(t.heading, &heading, t),
            Field::build(t.body, &body, t),
        ];
        let embed_model = None;
        Index {
            docs,
            chunk_refs,
            doc_fields,
            chunk_fields,
            vocab,
            analyzer,
            tuning,
            embed_model,
        }
    }

    /// Number of indexed chunks.
    pub fn chunk_count(&self) -> usize {
        self.chunk_refs.len()
    }

    /// Every indexed document: user files first (in path order), then the built-in runbooks.
    pub fn sources(&self) -> Vec<SourceInfo> {
        let mut v: Vec<SourceInfo> = self
            .docs
            .iter()
            .map(|d| SourceInfo {
                source: d.source.clone(),
                builtin: d.builtin,
                title: d.title.clone(),
                causes: d.causes.clone(),
                tags: d.tags.clone(),
                chunks: d.chunks.len(),
            })
            .collect();
        v.sort_by(|a, b| {
            a.builtin
                .cmp(&b.builtin)
                .then_with(|| a.source.cmp(&b.source))
        });
        v
    }

    /// Whether chunk vectors are present (the index was opened with an embedder).
    pub fn is_hybrid(&self) -> bool {
        self.embed_model.is_some()
    }

    /// Analysed query terms, spelling-corrected against the index vocabulary.
    fn query(&self, query: &str) -> Vec<String> {
        let q = cut(query, MAX_QUERY_BYTES);
        let mut terms = Vec::new();
        let mut corrections_left = MAX_CORRECTIONS;
        for t in self.analyzer.query_terms(q, self.tuning.synonyms) {
            if self.tuning.spelling
                && corrections_left > 0
                && !t.surface.is_empty()
                && !self.vocab.stems.contains(&t.stem)
            {
                corrections_left -= 1;
                if let Some(fix) = self.vocab.correct(&t.surface) {
                    terms.push(fix.to_string());
                }
            }
            terms.push(t.stem);
        }
        let mut seen = HashSet::new();
        terms.retain(|t| seen.insert(t.clone()));
        terms.truncate(MAX_QUERY_TERMS);
        terms
    }

    /// Chunks ranked by BM25 (all matching chunks, best first).
    fn bm25_chunks(&self, terms: &[String]) -> Vec<(usize, f32)> {
        if terms.is_empty() {
            return Vec::new();
        }
        let q = Embedding(
            terms
                .iter()
                .map(|t| TokenEmbedding {
                    index: <u64 as TokenEmbedder>::embed(t),
                    value: 1.0,
                })
                .collect(),
        );
        let mut doc_scores = HashMap::new();
        for f in &self.doc_fields {
            f.add_scores(&q, &mut doc_scores);
        }
        let mut chunk_scores = HashMap::new();
        for f in &self.chunk_fields {
            f.add_scores(&q, &mut chunk_scores);
        }
        let mut ranked: Vec<(usize, f32)> = self
            .chunk_refs
            .iter()
            .enumerate()
            .filter_map(|(ci, (di, _))| {
                let s = chunk_scores.get(&ci).copied().unwrap_or(0.0)
                    + doc_scores.get(di).copied().unwrap_or(0.0);
                (s > 0.0).then_some((ci, s))
            })
            .collect();
        sort_ranked(&mut ranked);
        ranked
    }

    /// The `k` best documents for `query` (BM25), each as its best-matching section.
    /// Never fails; an empty or stop-word-only query returns no hits.
    pub fn search(&self, query: &str, k: usize) -> Vec<Hit> {
        let terms = self.query(query);
        let ranked = self.bm25_chunks(&terms);
        self.collapse(&ranked, k, &terms)
    }

    /// Hybrid search: BM25 and cosine similarity between `query_vector` and the chunk
    /// vectors, fused by reciprocal rank. Chunks without a vector take part through BM25
    /// only. `query_vector` must come from the same model as the index's vectors
    /// ([`Index::open_hybrid`](crate::Index::open_hybrid)).
    pub fn search_with_vector(&self, query: &str, query_vector: &[f32], k: usize) -> Vec<Hit> {
        let terms = self.query(query);
        let lexical = self.bm25_chunks(&terms);
        let mut qv = query_vector.to_vec();
        normalize(&mut qv);
        let mut semantic: Vec<(usize, f32)> = self
            .chunk_refs
            .iter()
            .enumerate()
            .filter_map(|(ci, (di, ch))| {
                let v = self.docs[*di].chunks[*ch].vector.as_ref()?;
                let s = cosine(&qv, v)?;
                Some((ci, s))
            })
            .collect();
        sort_ranked(&mut semantic);
        let fused = rrf(&[&lexical, &semantic], FUSION_DEPTH);
        self.collapse(&fused, k, &terms)
    }

    /// Hybrid search with the query embedded by `embedder` (one call). An embedding error
    /// is returned as is: the caller may fall back to [`Index::search`].
    pub async fn search_hybrid(
        &self,
        query: &str,
        k: usize,
        embedder: &dyn Embedder,
    ) -> Result<Vec<Hit>, DocsError> {
        let q = cut(query, MAX_QUERY_BYTES).to_string();
        let mut v = embedder
            .embed(std::slice::from_ref(&q))
            .await
            .map_err(|e| DocsError::Embed(e.to_string()))?;
        if v.len() != 1 {
            return Err(DocsError::Embed(format!(
                "the embedder returned {} vectors for 1 text",
                v.len()
            )));
        }
        let qv = v.remove(0);
        Ok(self.search_with_vector(query, &qv, k))
    }

    /// Best chunk per document, `k` documents.
    fn collapse(&self, ranked: &[(usize, f32)], k: usize, terms: &[String]) -> Vec<Hit> {
        let k = k.min(MAX_K);
        let mut seen = HashSet::new();
        let mut hits = Vec::new();
        for &(ci, score) in ranked {
            if hits.len() >= k {
                break;
            }
            let (di, ch) = self.chunk_refs[ci];
            if seen.insert(di) {
                hits.push(self.hit(di, ch, score, terms));
            }
        }
        hits
    }

    fn hit(&self, di: usize, ch: usize, score: f32, terms: &[String]) -> Hit {
        let d = &self.docs[di];
        let c = &d.chunks[ch];
        Hit {
            source: d.source.clone(),
            title: d.title.clone(),
            heading: c.heading.clone(),
            causes: d.causes.clone(),
            score,
            snippet: snippet(&self.analyzer, &c.text, terms, SNIPPET_BYTES),
            text: c.text.clone(),
        }
    }

    /// Documents whose front matter lists cause `code` (ASCII case-insensitive): user files
    /// first (a team's own runbook is the more specific one), then built-in runbooks.
    pub fn sources_for_cause(&self, code: &str) -> Vec<String> {
        self.cause_docs(code)
            .into_iter()
            .map(|di| self.docs[di].source.clone())
            .collect()
    }

    fn cause_docs(&self, code: &str) -> Vec<usize> {
        let code = code.trim();
        let mut v: Vec<usize> = (0..self.docs.len())
            .filter(|&di| {
                self.docs[di]
                    .causes
                    .iter()
                    .any(|c| c.eq_ignore_ascii_case(code))
            })
            .collect();
        v.sort_by(|&a, &b| {
            let (a, b) = (&self.docs[a], &self.docs[b]);
            a.builtin
                .cmp(&b.builtin)
                .then_with(|| a.source.cmp(&b.source))
        });
        v
    }

    /// The best section for cause `code`: of the first document from
    /// [`Index::sources_for_cause`], its "Fix" section, else "How to confirm", else
    /// "Symptoms", else its first section. `score` is 0 (this is a lookup, not a search).
    pub fn for_cause(&self, code: &str) -> Option<Hit> {
        self.sections_for_cause(code).into_iter().next()
    }

    /// Every section of the documents for cause `code`, in the order of
    /// [`Index::sources_for_cause`] and, within a document, most useful first (Fix, How to
    /// confirm, Symptoms, others, Prevention): a caller fills a context budget from the top.
    pub fn sections_for_cause(&self, code: &str) -> Vec<Hit> {
        let mut out = Vec::new();
        for di in self.cause_docs(code) {
            let d = &self.docs[di];
            let mut order: Vec<usize> = (0..d.chunks.len()).collect();
            order.sort_by_key(|&ci| (section_rank(&d.chunks[ci].heading), ci));
            for ci in order {
                out.push(self.hit(di, ci, 0.0, &[]));
            }
        }
        out
    }
}

/// Lower is more useful for someone who already knows the cause.
fn section_rank(heading: &str) -> u8 {
    let h = heading.to_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| h.contains(w));
    if has(&[
        "fix",
        "resolution",
        "remediat",
        "solution",
        "resolve",
        "mitigat",
    ]) {
        0
    } else if has(&[
        "confirm",
        "diagnos",
        "troubleshoot",
        "investigat",
        "check",
        "debug",
    ]) {
        1
    } else if has(&["symptom"]) {
        2
    } else if has(&["prevent"]) {
        4
    } else {
        3
    }
}

fn sort_ranked(v: &mut [(usize, f32)]) {
    v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
}

/// Reciprocal rank fusion of several rankings (best first): each item scores
/// Σ 1 / (RRF_K + rank) over the rankings it appears in (top `depth` of each).
pub(crate) fn rrf(rankings: &[&[(usize, f32)]], depth: usize) -> Vec<(usize, f32)> {
    let mut scores: HashMap<usize, f32> = HashMap::new();
    for r in rankings {
        for (rank, (id, _)) in r.iter().take(depth).enumerate() {
            *scores.entry(*id).or_default() += 1.0 / (RRF_K + rank as f32 + 1.0);
        }
    }
    let mut v: Vec<(usize, f32)> = scores.into_iter().collect();
    sort_ranked(&mut v);
    v
}

/// A built-in runbook's metadata, without building an index (`kai diagnose` names the
/// runbook of each finding; answers' citations are checked against these).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunbookInfo {
    /// `docs/runbooks/<slug>.md`.
    pub source: String,
    pub title: String,
    pub causes: Vec<String>,
    /// Section headings in document order (a long section split in parts appears once).
    pub headings: Vec<String>,
}

/// Every built-in runbook's metadata, in file-name order. Parses the compiled-in
/// markdown (no scoring structures), so it is cheap enough for any command.
pub fn builtin_runbooks() -> Vec<RunbookInfo> {
    builtin_docs()
        .unwrap_or_default()
        .into_iter()
        .map(|d| {
            let mut headings: Vec<String> = Vec::new();
            for c in &d.chunks {
                if !headings.contains(&c.heading) {
                    headings.push(c.heading.clone());
                }
            }
            RunbookInfo {
                source: d.source,
                title: d.title,
                causes: d.causes,
                headings,
            }
        })
        .collect()
}

/// Parses every built-in runbook. A warning here is a bug in a runbook, so it is an error.
pub(crate) fn builtin_docs() -> Result<Vec<Doc>, DocsError> {
    builtin_files()
        .map(|(source, text)| {
            let name = source.rsplit('/').next().unwrap_or(&source).to_string();
            match parse_document(&source, &name, true, text) {
                (doc, None) => Ok(doc),
                (_, Some(w)) => Err(DocsError::BuiltinRunbook {
                    runbook: source,
                    message: w,
                }),
            }
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn idx() -> Index {
        Index::builtin().unwrap()
    }

    #[test]
    fn builtin_index_has_every_runbook() {
        let i = idx();
        let s = i.sources();
        assert!(s.len() >= 40);
        assert!(s.iter().all(|x| x.builtin && x.chunks >= 4));
        assert!(i.chunk_count() >= 4 * s.len());
    }

    #[test]
    fn search_finds_the_obvious_runbook_with_a_snippet() {
        let hits = idx().search("pod OOMKilled exit code 137", 3);
        assert_eq!(hits[0].source, "docs/runbooks/oom-killed.md");
        assert_eq!(hits[0].causes, ["oom-killed"]);
        assert!(!hits[0].snippet.is_empty() && hits[0].snippet.len() <= SNIPPET_BYTES + 3);
        assert!(!hits[0].snippet.contains('`'));
        assert!(hits[0].score > 0.0);
        // One hit per document.
        let mut s: Vec<&str> = hits.iter().map(|h| h.source.as_str()).collect();
        s.dedup();
        assert_eq!(s.len(), hits.len());
    }

    #[test]
    fn pasted_errors_with_quotes_colons_brackets_and_braces_never_fail() {
        let i = idx();
        for q in [
            r#"Error from server (Forbidden): pods is forbidden: User "bob" cannot list resource "pods" in API group "" in the namespace "x""#,
            r#"0/2 nodes are available: 2 node(s) had untolerated taint {dedicated: ml}."#,
            r#"unattached volumes=[data kube-api-access-abcde]: timed out"#,
            "AND OR NOT ( ) [ ] { } ^ ~ * ? : \\ / \" ' + - ! title:foo body:\"",
            "\"unbalanced quote",
            "",
            "   ",
            "the and of",
            "\u{0}\u{7f}\u{feff}🙂 ünïcödé",
        ] {
            let hits = i.search(q, 5);
            assert!(hits.len() <= 5, "{q}");
        }
        let hits = i.search(r#"secret "stripe-api-key" not found"#, 3);
        assert_eq!(hits[0].source, "docs/runbooks/missing-secret.md");
        let hits = i.search(r#"had untolerated taint {dedicated: ml}"#, 3);
        assert_eq!(hits[0].source, "docs/runbooks/unschedulable-taint.md");
    }

    #[test]
    fn huge_queries_are_cut_not_rejected() {
        let q = "OOMKilled ".repeat(10_000);
        let hits = idx().search(&q, 1);
        assert_eq!(hits.len(), 1);
        // Many distinct unknown words: bounded analysis, still an answer.
        let i = idx();
        let q: String = (0..2000)
            .map(|n| format!("zqwx{n:05}abc OOMKilled "))
            .collect();
        assert!(i.query(&q).len() <= MAX_QUERY_TERMS);
        assert!(!i.search(&q, 1).is_empty());
    }

    #[test]
    fn k_is_respected_and_capped() {
        let i = idx();
        assert!(i.search("pod", 0).is_empty());
        assert_eq!(i.search("pod", 2).len(), 2);
        assert!(i.search("pod", 10_000).len() <= MAX_K);
    }

    #[test]
    fn misspelled_words_are_corrected_against_the_index_vocabulary() {
        let i = idx();
        let q = i.query("namespace stuck terminting");
        assert!(q.contains(&"termin".to_string()), "{q:?}");
        let off = Index::builtin_with_tuning(Tuning {
            spelling: false,
            ..Tuning::default()
        })
        .unwrap();
        assert!(!off
            .query("namespace stuck terminting")
            .contains(&"termin".to_string()));
    }

    #[test]
    fn for_cause_returns_the_fix_section_of_the_runbook_listing_the_code() {
        let i = idx();
        let h = i.for_cause("oom-killed").unwrap();
        assert_eq!(h.source, "docs/runbooks/oom-killed.md");
        assert_eq!(h.heading, "Fix");
        assert!(h.text.contains("kubectl"));
        let all = i.sections_for_cause("OOM-KILLED");
        let heads: Vec<&str> = all.iter().map(|h| h.heading.as_str()).collect();
        assert_eq!(heads, ["Fix", "How to confirm", "Symptoms", "Prevention"]);
        assert!(i.for_cause("no-such-code").is_none());
        assert_eq!(
            i.sources_for_cause("missing-secret-key"),
            ["docs/runbooks/missing-secret.md"]
        );
    }

    #[test]
    fn rrf_rewards_agreement_between_rankings() {
        let a = [(1, 9.0), (2, 5.0), (3, 1.0)];
        let b = [(4, 0.9), (2, 0.8), (5, 0.1)];
        let f = rrf(&[&a, &b], 50);
        assert_eq!(f[0].0, 2, "{f:?}"); // second in both beats first in one
        let ids: Vec<usize> = f.iter().map(|x| x.0).collect();
        assert_eq!(ids.len(), 5);
        assert_eq!(&ids[1..3], [1, 4]);
        assert!((f[0].1 - 2.0 / 62.0).abs() < 1e-6);
    }

    #[test]
    fn index_can_be_shared_across_threads_and_hits_serialise_to_the_cli_json_shape() {
        fn shared<T: Send + Sync>() {}
        shared::<Index>();
        let h = idx()
            .search("ImagePullBackOff manifest unknown", 1)
            .remove(0);
        let v = serde_json::to_value(&h).unwrap();
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(
            keys,
            ["causes", "heading", "score", "snippet", "source", "title"]
        );
        assert_eq!(v["source"], "docs/runbooks/image-pull-not-found.md");
    }

    #[test]
    fn builtin_runbooks_lists_titles_and_headings_without_an_index() {
        let all = builtin_runbooks();
        assert_eq!(all.len(), idx().sources().len());
        let oom = all
            .iter()
            .find(|r| r.source == "docs/runbooks/oom-killed.md")
            .unwrap();
        assert!(!oom.title.is_empty());
        assert_eq!(oom.causes, ["oom-killed"]);
        assert!(oom.headings.contains(&"Fix".to_string()), "{oom:?}");
    }

    #[test]
    fn section_preference() {
        assert!(section_rank("Fix") < section_rank("How to confirm"));
        assert!(section_rank("How to confirm") < section_rank("Symptoms"));
        assert!(section_rank("Background") < section_rank("Prevention"));
        assert_eq!(section_rank("Resolution steps"), 0);
    }
}
