//! Regression guard for retrieval quality on the labelled query set
//! (`docs/runbooks/queries.tsv`): a change to the corpus or the engine that makes the
//! expected runbook fall out of the top 3 too often fails here. The bench
//! (`cargo bench -p kai-docs`) prints the exact figures.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common {
    pub mod eval;
}
use common::eval;

#[test]
fn labelled_queries_find_their_runbook() {
    let qs = eval::queries();
    assert!(qs.len() >= 80, "{} labelled queries", qs.len());
    let index = kai_docs::Index::builtin().unwrap();
    let sources: Vec<String> = index.sources().into_iter().map(|s| s.source).collect();
    for (q, want) in &qs {
        assert!(
            sources.contains(want),
            "query {q:?} expects {want}, which is not a built-in runbook"
        );
    }
    let mut misses = Vec::new();
    let m = eval::evaluate(&index, &qs, &mut misses);
    eprintln!(
        "recall@1 {:.3}, recall@3 {:.3}, MRR {:.3} over {} queries",
        m.recall1, m.recall3, m.mrr, m.n
    );
    assert!(
        m.recall3 >= 0.85,
        "recall@3 fell to {:.3} (guard 0.85); queries missing from the top 3:\n{}",
        m.recall3,
        misses.join("\n")
    );
    assert!(
        m.recall1 >= 0.70,
        "recall@1 fell to {:.3} (guard 0.70)",
        m.recall1
    );
}
