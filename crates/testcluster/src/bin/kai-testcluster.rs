//! Stand-alone front end for the test cluster (the `kai` binary wires the same functions
//! as `kai testcluster ...`): `kai-testcluster testcluster up [SCENARIO...] | down | status |
//! serve --state-dir DIR`. The leading `testcluster` keeps argv identical to kai's, so
//! `cli_up`'s re-exec of the current binary works for both.

use std::path::PathBuf;

fn usage() -> anyhow::Result<()> {
    anyhow::bail!("usage: kai-testcluster testcluster up [SCENARIO...] | down | status | serve --state-dir DIR")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["testcluster", "up", scenarios @ ..] => {
            let s: Vec<String> = scenarios.iter().map(|s| s.to_string()).collect();
            kai_testcluster::cli_up(&s).await
        }
        ["testcluster", "down"] => kai_testcluster::cli_down().await,
        ["testcluster", "status"] => kai_testcluster::cli_status().await,
        ["testcluster", "serve", "--state-dir", dir] => {
            kai_testcluster::cli_serve(PathBuf::from(dir)).await
        }
        ["testcluster", "scenarios"] => {
            for s in kai_testcluster::scenarios() {
                println!("{}\t{}", s.name, s.spec.question);
            }
            Ok(())
        }
        _ => usage(),
    }
}
