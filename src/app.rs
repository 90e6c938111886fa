//! The binary's edge: logging, settings, dispatch, and mapping errors to exit codes.
//! `anyhow` lives here and in the command functions; modules below use `thiserror`.

use std::io::IsTerminal;

use clap::Parser;

use crate::cli::Cli;
use crate::config::{Env, Settings};
use crate::exit;

/// An error that knows its exit code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Exit {
    pub code: i32,
    pub message: String,
}

impl Exit {
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// Exit code for a cluster error.
pub fn cluster_exit(e: &crate::cluster::ClusterError) -> i32 {
    use crate::cluster::ClusterError as E;
    match e {
        E::Forbidden { .. } | E::Unauthorized(_) => exit::FORBIDDEN,
        E::NoKubeconfig(_) | E::UnknownContext(..) | E::Unreachable { .. } => {
            exit::CLUSTER_UNREACHABLE
        }
        E::UnknownKind { .. } | E::NotFound { .. } | E::InvalidName(_) => exit::USAGE,
        E::Api(_) | E::Other(_) => exit::INTERNAL,
    }
}

fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 | 1 => "warn",
        2 => "kai=debug,info",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = e.print();
            return code;
        }
    };
    init_logging(cli.global.verbose);
    crate::init_crypto();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("kai: cannot start the async runtime: {e}");
            return exit::INTERNAL;
        }
    };
    let result = runtime.block_on(run(cli));
    // Background tasks (spinners, a stuck connection) must not keep the process alive.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    match result {
        Ok(code) => code,
        Err(e) => {
            let code = e.downcast_ref::<Exit>().map(|x| x.code).unwrap_or_else(|| {
                e.downcast_ref::<crate::cluster::ClusterError>()
                    .map(cluster_exit)
                    .unwrap_or(exit::INTERNAL)
            });
            eprintln!("kai: error: {e:#}");
            code
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<i32> {
    let env = Env::from_process();
    let settings = Settings::resolve(&cli.global.overrides(), &env)
        .map_err(|e| Exit::new(exit::USAGE, e.to_string()))?;
    match cli.command {
        None => {
            let mut prompt = cli.prompt.join(" ");
            if cli.prompt.is_empty() {
                if std::io::stdin().is_terminal() {
                    return crate::repl::run(&settings, &cli.global).await;
                }
                // `echo "why is backend down?" | kai`: the question comes on stdin.
                let mut text = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).map_err(|e| {
                    Exit::new(
                        exit::USAGE,
                        format!("cannot read the question from stdin: {e}"),
                    )
                })?;
                prompt = text;
            }
            if prompt.trim().is_empty() {
                return Err(Exit::new(
                    exit::USAGE,
                    "empty prompt: ask a question, e.g. kai \"why is backend crashlooping?\" (kai --help for more)",
                )
                .into());
            }
            crate::oneshot::run(&settings, &cli.global, &prompt).await
        }
        Some(cmd) => crate::commands::dispatch(cmd, &settings, &cli.global).await,
    }
}
