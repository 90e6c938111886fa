//! The `kai` binary with an isolated environment: nothing of the user's (config, API
//! key, kubeconfig) leaks into a test, and each run's data stays in its own directory.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use mock_llm::MockLlm;

/// The key every scripted-model run uses; kai requires one, the mock ignores it.
pub const TEST_API_KEY: &str = "sk-test-key-not-real";

/// A [`Kai`] for the binary of the package under test (`CARGO_BIN_EXE_kai` only exists
/// while an integration test of the `kai` package compiles, hence a macro).
#[macro_export]
macro_rules! kai {
    () => {
        $crate::Kai::new(env!("CARGO_BIN_EXE_kai"))
    };
}

/// A `kai` command under construction. It starts from an empty environment but `PATH`;
/// each method adds one piece of what a run needs.
pub struct Kai {
    cmd: Command,
}

impl Kai {
    /// The binary at `bin` with an empty environment but `PATH`.
    pub fn new(bin: &str) -> Kai {
        let mut cmd = Command::new(bin);
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default());
        Kai { cmd }
    }

    /// `HOME` at `dir` (no user configuration there).
    pub fn home(mut self, dir: &Path) -> Kai {
        self.cmd.env("HOME", dir);
        self
    }

    /// Everything kai keeps in `dir`: `HOME`, its data (audit log, history) and its
    /// configuration directory.
    pub fn data(mut self, dir: &Path) -> Kai {
        self.cmd
            .env("HOME", dir)
            .env("KAI_DATA_DIR", dir)
            .env("XDG_CONFIG_HOME", dir.join("config"));
        self
    }

    /// `--kubeconfig kubeconfig -n ns`.
    pub fn cluster(self, kubeconfig: &Path, ns: &str) -> Kai {
        self.kubeconfig(kubeconfig).args(["-n", ns])
    }

    /// `--kubeconfig kubeconfig`.
    pub fn kubeconfig(self, kubeconfig: &Path) -> Kai {
        self.arg("--kubeconfig").arg(kubeconfig)
    }

    /// The scripted model: its URL, model `mock`, and a (fake) API key.
    pub fn model(self, llm: &MockLlm) -> Kai {
        self.api_key()
            .args(["--base-url", &llm.base_url(), "--model", "mock"])
    }

    /// A fake `OPENAI_API_KEY`, so kai gets past its key check.
    pub fn api_key(self) -> Kai {
        self.env("OPENAI_API_KEY", TEST_API_KEY)
    }

    /// Plain text on a terminal that understands nothing (`TERM=dumb`, `NO_COLOR`).
    pub fn dumb_terminal(self) -> Kai {
        self.env("TERM", "dumb").env("NO_COLOR", "1")
    }

    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Kai {
        self.cmd.env(key, value);
        self
    }

    pub fn envs<'a>(self, vars: impl IntoIterator<Item = &'a (&'a str, &'a str)>) -> Kai {
        vars.into_iter().fold(self, |k, (key, v)| k.env(key, v))
    }

    /// Run in `dir`.
    pub fn current_dir(mut self, dir: &Path) -> Kai {
        self.cmd.current_dir(dir);
        self
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Kai {
        self.cmd.arg(arg);
        self
    }

    pub fn args<S: AsRef<OsStr>>(mut self, args: impl IntoIterator<Item = S>) -> Kai {
        self.cmd.args(args);
        self
    }

    /// The command as built (for a pseudo-terminal, which brings its own stdio).
    pub fn command(self) -> Command {
        self.cmd
    }

    /// Run to the end with stdin closed.
    pub fn output(mut self) -> Output {
        self.cmd.stdin(Stdio::null()).output().unwrap()
    }

    /// [`Kai::output`] off the async test's threads.
    pub async fn run(self) -> Output {
        crate::blocking(move || self.output()).await
    }
}

/// Both streams of a run, labelled, for assertion messages and searches.
pub fn both(o: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The run ended with exit code `code`; on failure, both streams are shown.
#[track_caller]
pub fn assert_exit(o: &Output, code: i32) {
    assert_eq!(o.status.code(), Some(code), "{}", both(o));
}
