//! `kai --help` start-up time (target ≤ 20 ms p50). Run: `cargo bench --bench startup`.
//! Spawns the release binary repeatedly and reports percentiles; no timing assertions.

use std::process::{Command, Stdio};
use std::time::Instant;

fn main() {
    let exe = env!("CARGO_BIN_EXE_kai");
    let runs = 60;
    let mut times = Vec::with_capacity(runs);
    for i in 0..runs + 5 {
        let t = Instant::now();
        let status = Command::new(exe)
            .arg("--help")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let elapsed = t.elapsed();
        match status {
            Ok(s) if s.success() => {}
            other => {
                eprintln!("kai --help failed: {other:?}");
                std::process::exit(1);
            }
        }
        // The first few runs warm the page cache.
        if i >= 5 {
            times.push(elapsed.as_secs_f64() * 1000.0);
        }
    }
    times.sort_by(f64::total_cmp);
    let p = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    println!("kai --help start-up over {runs} runs: p50 {:.1} ms, p95 {:.1} ms, min {:.1} ms (target p50 <= 20 ms)", p(0.5), p(0.95), p(0.0));
}
