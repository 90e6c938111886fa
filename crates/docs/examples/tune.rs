//! Development aid: retrieval figures for the default tuning and a few ablations, on the
//! whole labelled set and on its odd/even halves. `-v` prints the misses of the default,
//! `--syn` the queries whose rank the synonym list changes, `--grid` chooses field boosts
//! on the odd half and reports them on the held-out even half.
//! Run: `cargo run --release -p kai-docs --example tune -- --grid`.
#[path = "../tests/common/eval.rs"]
mod eval;

use kai_docs::{Index, Tuning};

fn main() {
    let qs = eval::queries();
    let odd: Vec<_> = qs.iter().step_by(2).cloned().collect();
    let even: Vec<_> = qs.iter().skip(1).step_by(2).cloned().collect();
    let d = Tuning::default();
    let variants: Vec<(&str, Tuning)> = vec![
        ("default", d),
        (
            "no spelling",
            Tuning {
                spelling: false,
                ..d
            },
        ),
        (
            "no synonyms",
            Tuning {
                synonyms: false,
                ..d
            },
        ),
        ("no whole-doc field", Tuning { doc: 0.0, ..d }),
        (
            "no field boosts",
            Tuning {
                title: 1.0,
                tags: 1.0,
                causes: 1.0,
                heading: 1.0,
                ..d
            },
        ),
        (
            "body+doc only",
            Tuning {
                title: 0.0,
                tags: 0.0,
                causes: 0.0,
                heading: 0.0,
                ..d
            },
        ),
        (
            "chunk body only",
            Tuning {
                title: 0.0,
                tags: 0.0,
                causes: 0.0,
                heading: 0.0,
                doc: 0.0,
                ..d
            },
        ),
    ];
    for (name, t) in variants {
        let index = Index::builtin_with_tuning(t).unwrap_or_else(|e| panic!("{e}"));
        let mut misses = Vec::new();
        let m = eval::evaluate(&index, &qs, &mut misses);
        let mo = eval::evaluate(&index, &odd, &mut Vec::new());
        let me = eval::evaluate(&index, &even, &mut Vec::new());
        println!(
            "{name:<20} all: r@1 {:.3} r@3 {:.3} mrr {:.3} | odd r@1 {:.3} r@3 {:.3} | even r@1 {:.3} r@3 {:.3}",
            m.recall1, m.recall3, m.mrr, mo.recall1, mo.recall3, me.recall1, me.recall3
        );
        if name == "default" && std::env::args().any(|a| a == "-v") {
            for x in &misses {
                println!("  {x}");
            }
        }
    }
    if std::env::args().any(|a| a == "--syn") {
        let a = Index::builtin_with_tuning(d).unwrap_or_else(|e| panic!("{e}"));
        let b = Index::builtin_with_tuning(Tuning {
            synonyms: false,
            ..d
        })
        .unwrap_or_else(|e| panic!("{e}"));
        for (q, want) in &qs {
            let ra = a.search(q, 10).iter().position(|h| &h.source == want);
            let rb = b.search(q, 10).iter().position(|h| &h.source == want);
            if ra != rb {
                println!("{q}: with synonyms {ra:?}, without {rb:?}");
            }
        }
    }
    if std::env::args().any(|a| a == "--grid") {
        // Choose on the odd half, report the even half (held out).
        let mut best: Option<(f64, Tuning)> = None;
        for title in [1.0, 2.0] {
            for tags in [1.0, 2.0] {
                for causes in [0.5, 1.0] {
                    for heading in [0.5, 1.0] {
                        for doc in [0.5, 1.0, 1.5] {
                            let t = Tuning {
                                title,
                                tags,
                                causes,
                                heading,
                                doc,
                                ..d
                            };
                            let index =
                                Index::builtin_with_tuning(t).unwrap_or_else(|e| panic!("{e}"));
                            let m = eval::evaluate(&index, &odd, &mut Vec::new());
                            if best.is_none_or(|(b, _)| m.mrr > b) {
                                best = Some((m.mrr, t));
                            }
                        }
                    }
                }
            }
        }
        if let Some((b, t)) = best {
            let index = Index::builtin_with_tuning(t).unwrap_or_else(|e| panic!("{e}"));
            let me = eval::evaluate(&index, &even, &mut Vec::new());
            let ma = eval::evaluate(&index, &qs, &mut Vec::new());
            println!("grid best on odd (mrr {b:.3}): {t:?}\n  held-out even: r@1 {:.3} r@3 {:.3} mrr {:.3}; all: r@1 {:.3} r@3 {:.3} mrr {:.3}", me.recall1, me.recall3, me.mrr, ma.recall1, ma.recall3, ma.mrr);
        }
    }
}
