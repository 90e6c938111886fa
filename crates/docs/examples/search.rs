//! `cargo run -p kai-docs --example search -- "query" [k]`: prints hits as JSON lines.
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let q = args.get(1).cloned().unwrap_or_default();
    let k = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(3);
    let index = kai_docs::Index::builtin().unwrap_or_else(|e| panic!("{e}"));
    for h in index.search(&q, k) {
        println!("{}", serde_json::to_string(&h).unwrap_or_default());
    }
}
