//! The binary's edge: logging, settings, dispatch, and mapping errors to exit codes.
//! `anyhow` lives here and in the command functions; modules below use `thiserror`.

use std::io::{IsTerminal, Write};

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

/// One log event, buffered whole and written on drop with its credentials scrubbed and
/// its control characters made visible: log messages quote API errors, object names and
/// model output. The formatter writes each event with one `write_all`, so an event is
/// never split between two of these.
pub struct ScrubbedEvent<W: Write> {
    buf: Vec<u8>,
    inner: W,
}

impl<W: Write> ScrubbedEvent<W> {
    pub fn new(inner: W) -> Self {
        Self {
            buf: Vec::new(),
            inner,
        }
    }
}

impl<W: Write> Write for ScrubbedEvent<W> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<W: Write> Drop for ScrubbedEvent<W> {
    fn drop(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&self.buf);
        let clean = crate::ui::term::for_terminal(&text);
        let _ = self.inner.write_all(clean.as_bytes());
        let _ = self.inner.flush();
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
        .with_writer(|| ScrubbedEvent::new(std::io::stderr()))
        // No colours: every escape character in a log line would be made visible, and
        // the formatter's own could not be told apart from ones in the logged text.
        .with_ansi(false)
        .try_init();
}

pub fn main() -> i32 {
    let cli = match crate::cli::parse(std::env::args_os()) {
        Ok(c) => c,
        Err(e) => {
            if e.exit_code() == exit::OK {
                // --help and --version: clap's own styled text on stdout.
                let _ = e.error.print();
            } else {
                eprint!("{}", e.message());
            }
            return e.exit_code();
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
            eprintln!(
                "kai: cannot start the async runtime: {}",
                crate::ui::term::sanitize(&e.to_string())
            );
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
            // Errors quote API servers, kubeconfig files and model endpoints.
            eprintln!(
                "kai: error: {}",
                crate::ui::term::for_terminal(&format!("{e:#}"))
            );
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
            if let Some(resume) = cli.resume() {
                if !cli.prompt.is_empty() {
                    return Err(Exit::new(
                        exit::USAGE,
                        "--resume opens the interactive session; ask the question inside it",
                    )
                    .into());
                }
                if !std::io::stdin().is_terminal() {
                    return Err(Exit::new(
                        exit::USAGE,
                        "--resume needs a terminal: the session is interactive",
                    )
                    .into());
                }
                return crate::repl::run(&settings, &cli.global, Some(resume)).await;
            }
            if cli.prompt.is_empty() {
                if std::io::stdin().is_terminal() {
                    return crate::repl::run(&settings, &cli.global, None).await;
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use kai_test_support::SharedBuf as Buf;

    #[test]
    fn log_lines_are_scrubbed_and_cannot_drive_the_terminal() {
        let buf = Buf::default();
        let sink = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || ScrubbedEvent::new(sink.clone()))
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(
                "request failed: Authorization: Bearer abcdefghijklmnopqrstuvwxyz012345 \x1b]0;pwned\x07"
            );
            tracing::warn!(name = "web\x1b[2J", "object \u{9b}31m\rdone");
        });
        let text = buf.text();
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(!text.contains("abcdefghijklmnopqrstuvwxyz012345"), "{text}");
        assert!(text.contains("[REDACTED"), "{text}");
        assert!(
            !text.contains('\x1b') && !text.contains('\u{9b}') && !text.contains('\r'),
            "{text:?}"
        );
        // (tracing-subscriber escapes ESC itself, as `\\x1b`; either visible form will do.)
        assert!(text.contains("]0;pwned"), "{text}");
        assert!(text.contains("\\u{9b}31m^Mdone"), "{text}");
    }
}
