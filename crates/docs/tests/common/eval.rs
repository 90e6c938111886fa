//! Retrieval quality over the labelled query set `docs/runbooks/queries.tsv`
//! (`query<TAB>expected slug`), shared by the regression test and the bench.

use kai_docs::Index;

pub const QUERIES: &str = include_str!("../../../../docs/runbooks/queries.tsv");

/// (query, expected source) pairs.
pub fn queries() -> Vec<(String, String)> {
    QUERIES
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| {
            let (q, slug) = l.split_once('\t')?;
            Some((q.to_string(), format!("docs/runbooks/{}.md", slug.trim())))
        })
        .collect()
}

#[allow(dead_code)]
#[derive(Debug, Clone, Copy, Default)]
pub struct Metrics {
    pub n: usize,
    pub recall1: f64,
    pub recall3: f64,
    pub mrr: f64,
}

/// Document-level recall@1, recall@3 and MRR (over the top 10) of `index` on `qs`.
/// `misses` receives the queries whose expected runbook is not in the top 3.
pub fn evaluate(index: &Index, qs: &[(String, String)], misses: &mut Vec<String>) -> Metrics {
    let mut m = Metrics {
        n: qs.len(),
        ..Metrics::default()
    };
    for (q, want) in qs {
        let hits = index.search(q, 10);
        let rank = hits.iter().position(|h| &h.source == want);
        if rank == Some(0) {
            m.recall1 += 1.0;
        }
        if rank.is_some_and(|r| r < 3) {
            m.recall3 += 1.0;
        } else {
            let got: Vec<&str> = hits
                .iter()
                .take(3)
                .map(|h| h.source.trim_start_matches("docs/runbooks/"))
                .collect();
            misses.push(format!("{q}\n    want {want} (rank {rank:?}), got {got:?}"));
        }
        if let Some(r) = rank {
            m.mrr += 1.0 / (r as f64 + 1.0);
        }
    }
    let n = qs.len().max(1) as f64;
    m.recall1 /= n;
    m.recall3 /= n;
    m.mrr /= n;
    m
}
