//! Command-line definitions (clap) and dispatch. Nothing else lives here: each command's
//! work is in its own module.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

use crate::config::Overrides;

const EXAMPLES: &str = "\
Examples:
  kai \"why is backend crashlooping?\"            one question, one answer (read-only tools; fixes are proposed)
  kai                                           interactive session (memory across questions; /help inside)
  kai -n shop \"why are the checkout pods pending?\"
  kai why are the checkout pods pending -n shop --read-only   options go anywhere
  kai -- \"-n looks wrong in my script\"          -- ends the options (a question starting with - or a command)
  kai diagnose deployment/backend --no-llm      root causes without a model
  kai scan -A                                   every problem in the cluster, ranked
  kai demo                                      local test cluster + a broken workload + a diagnosis
  kai history / kai undo                        changes kai applied, and undoing the last one
  kai lint k8s/ -o sarif                        check manifests for CI (exit 3 on errors)
  kai generate \"nginx, 3 replicas, port 80\" --out nginx.yaml   checked and dry-run, nothing applied
  kai sessions / kai --resume [ID]              saved sessions, and continuing one (the latest without an id)
  kai docs search \"x509 certificate expired\"  search kai's runbooks and your indexed docs (kai docs index DIR)

Model providers (OpenAI-compatible chat completions with tool calls):
  OpenAI        OPENAI_API_KEY=sk-... kai \"...\"                       (default model gpt-4o-mini)
  Ollama        kai --base-url http://localhost:11434/v1 --model qwen2.5:7b \"...\"
  llama.cpp     kai --base-url http://localhost:8080/v1 --model local \"...\"
  vLLM/LM Studio  same, with the server's URL and model name
  Gemini        kai --base-url https://generativelanguage.googleapis.com/v1beta/openai --model gemini-2.0-flash  (key in OPENAI_API_KEY)
  Azure OpenAI  a profile with kind = \"azure\" in the config file (below), then --provider azure

Config file ($XDG_CONFIG_HOME/kai/config.toml, or --config / KAI_CONFIG); flags beat env beat file:
  default_provider = \"ollama\"
  max_steps = 15
  tool_output_tokens = 4000
  [providers.ollama]
  base_url = \"http://localhost:11434/v1\"
  model = \"qwen2.5:7b\"
  api_key_env = \"\"                       # no key needed
  [providers.azure]
  kind = \"azure\"
  base_url = \"https://myres.openai.azure.com\"
  model = \"gpt-4o\"                       # the deployment name
  api_version = \"2024-10-21\"
  api_key_env = \"AZURE_OPENAI_API_KEY\"   # the env var's NAME, never the key

Environment: KUBECONFIG, OPENAI_API_KEY, OPENAI_BASE_URL, KAI_MODEL, KAI_PROVIDER, KAI_CONFIG, KAI_DATA_DIR, KAI_CACHE_DIR, RUST_LOG.
";

fn after_help() -> String {
    format!("{EXAMPLES}\n{}", crate::exit::TABLE)
}

#[derive(Debug, Parser)]
#[command(
    name = "kai",
    version,
    about = "An AI-assisted DevOps agent for Kubernetes: finds root causes, proposes fixes, and changes nothing without your yes.",
    after_help = after_help(),
    // A question's words are never commands: without this, `kai why is scan slow` would
    // run `scan`. [`parse`] turns it off when the first word *is* a command, so options
    // may come before it (`kai -n shop scan`).
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Option<Command>,

    /// The question, e.g. "why is backend crashlooping?" (quotes optional). Options may
    /// come before, after or between its words; `--` ends the options, for a question that
    /// starts with a dash or with a command's name (`kai -- scan results look wrong`).
    /// Without a question: an interactive session on a terminal, else the question is read
    /// from stdin.
    // Not `trailing_var_arg`: that would take `--read-only` or `-n shop` after the first
    // word as part of the question, and so silently drop a safety flag.
    #[arg(value_name = "PROMPT", allow_negative_numbers = true)]
    pub prompt: Vec<String>,

    /// Continue a saved interactive session: the latest, or the one with this id
    /// (`kai sessions` lists them).
    #[arg(long, value_name = "ID", num_args = 0..=1, default_missing_value = LATEST)]
    pub resume: Option<String>,
}

/// `--resume` without an id.
pub const LATEST: &str = "latest";

impl Cli {
    /// `--resume`: `Some(None)` for the latest session, `Some(Some(id))` for one.
    pub fn resume(&self) -> Option<Option<String>> {
        self.resume
            .as_ref()
            .map(|r| (r != LATEST).then(|| r.clone()))
    }
}

/// A command line clap refused (or `--help`/`--version`, which clap reports the same way).
#[derive(Debug)]
pub struct ParseFailure {
    pub error: clap::Error,
    /// kai's own advice after clap's message.
    pub hint: Option<String>,
}

impl ParseFailure {
    /// 0 for help and version, else the usage code.
    pub fn exit_code(&self) -> i32 {
        if self.error.use_stderr() {
            crate::exit::USAGE
        } else {
            crate::exit::OK
        }
    }

    /// The message for stderr, plain text with the user's words made terminal-safe (they
    /// may have pasted a log line), and the hint.
    pub fn message(&self) -> String {
        let mut m = crate::ui::term::sanitize(&self.error.render().to_string()).into_owned();
        if let Some(h) = &self.hint {
            if !m.ends_with('\n') {
                m.push('\n');
            }
            m.push('\n');
            m.push_str(&crate::ui::term::sanitize(h));
            m.push('\n');
        }
        m
    }
}

/// Parse a command line (argv\[0\] first). A question whose first word is a command's
/// name (`kai scan my cluster`) runs that command, which then refuses the other words;
/// the failure then says how to ask such a question instead.
pub fn parse<I, T>(args: I) -> Result<Cli, ParseFailure>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let mut cmd = Cli::command();
    // Built, so clap's own `help` command is among the commands looked up below.
    cmd.build();
    if leading_command(&cmd, &args).is_some() {
        cmd = cmd.args_conflicts_with_subcommands(false);
    }
    let parsed = cmd
        .clone()
        .try_get_matches_from(&args)
        .and_then(|mut m| Cli::from_arg_matches_mut(&mut m).map_err(|e| e.format(&mut cmd)));
    let cli = parsed.map_err(|error| {
        let hint = command_word_hint(&cmd, &error, &args);
        ParseFailure { error, hint }
    })?;
    // `-o sarif` and `-o yaml` are formats of one command each.
    let allowed = matches!(
        (&cli.command, cli.global.output),
        (_, Output::Text | Output::Json)
            | (Some(Command::Lint(_)), Output::Sarif)
            | (Some(Command::Generate(_)), Output::Yaml)
    );
    if !allowed {
        let which = match cli.global.output {
            Output::Sarif => "-o sarif is for `kai lint` only",
            _ => "-o yaml is for `kai generate` only",
        };
        return Err(ParseFailure {
            error: cmd.error(ErrorKind::InvalidValue, which),
            hint: None,
        });
    }
    Ok(cli)
}

/// Options that take a value: `--namespace`, `-n`, ... (global ones and `command`'s).
fn valued_options(cmd: &clap::Command, command: Option<&str>) -> (Vec<String>, Vec<char>) {
    let sub = command.and_then(|c| cmd.find_subcommand(c));
    let (mut long, mut short) = (Vec::new(), Vec::new());
    for a in cmd
        .get_arguments()
        .chain(sub.into_iter().flat_map(|s| s.get_arguments()))
    {
        if a.is_positional() || !a.get_action().takes_values() {
            continue;
        }
        long.extend(a.get_long().map(|l| format!("--{l}")));
        short.extend(a.get_short());
    }
    (long, short)
}

/// The arguments that are neither options nor options' values, up to a `--`. The options
/// known are the global ones and those of `command`.
fn plain_words(cmd: &clap::Command, args: &[OsString], command: Option<&str>) -> Vec<String> {
    let (long, short) = valued_options(cmd, command);
    let mut words = Vec::new();
    let mut skip_value = false;
    for arg in args.iter().skip(1) {
        let arg = arg.to_string_lossy();
        if std::mem::take(&mut skip_value) {
            continue;
        }
        if arg == "--" {
            break;
        }
        if arg.starts_with("--") {
            // `--namespace shop`, not `--namespace=shop`.
            skip_value = !arg.contains('=') && long.iter().any(|l| *l == arg);
            continue;
        }
        if let Some(cluster) = arg.strip_prefix('-').filter(|c| !c.is_empty()) {
            // `-vn shop`: the first value-taking letter takes the rest of the cluster,
            // or the next argument when it is last.
            if let Some(pos) = cluster.find(|c: char| short.contains(&c)) {
                skip_value = pos + 1 == cluster.len();
            }
            continue;
        }
        words.push(arg.into_owned());
    }
    words
}

/// The first plain word, when it is the name of a command (clap's `help` included, as
/// `cmd` is built).
fn leading_command(cmd: &clap::Command, args: &[OsString]) -> Option<String> {
    plain_words(cmd, args, None)
        .into_iter()
        .next()
        .filter(|w| cmd.find_subcommand(w).is_some())
}

fn command_word_hint(
    cmd: &clap::Command,
    error: &clap::Error,
    args: &[OsString],
) -> Option<String> {
    if !matches!(
        error.kind(),
        ErrorKind::UnknownArgument | ErrorKind::TooManyValues | ErrorKind::InvalidSubcommand
    ) {
        return None;
    }
    // Only a stray *word* means a question was taken for a command; a stray flag is a
    // plain mistake in the command's options.
    let stray = error
        .get(ContextKind::InvalidArg)
        .or_else(|| error.get(ContextKind::InvalidSubcommand));
    match stray {
        Some(ContextValue::String(a)) if !a.starts_with('-') => {}
        _ => return None,
    }
    let name = leading_command(cmd, args)?;
    // The command's name and the words after it: what the user presumably meant to ask.
    let question = plain_words(cmd, args, Some(&name)).join(" ");
    Some(format!(
        "kai: \"{name}\" is a kai command, so the words after it were taken as its arguments. \
         To ask a question that starts with \"{name}\", quote the whole question \
         (kai \"{question}\") or put -- before it (kai -- {question})."
    ))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Output {
    #[default]
    Text,
    Json,
    /// SARIF 2.1.0 (`kai lint` only).
    Sarif,
    /// The manifests as YAML (`kai generate` only; its default).
    Yaml,
}

#[derive(Debug, Args, Clone)]
pub struct GlobalArgs {
    /// Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long, global = true, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use.
    #[arg(long, global = true)]
    pub context: Option<String>,
    /// Namespace the question is about (default: the context's namespace).
    #[arg(short = 'n', long, global = true)]
    pub namespace: Option<String>,
    /// Model name (env KAI_MODEL).
    #[arg(long, global = true)]
    pub model: Option<String>,
    /// Base URL of an OpenAI-compatible API (env OPENAI_BASE_URL).
    #[arg(long, global = true, value_name = "URL")]
    pub base_url: Option<String>,
    /// A provider profile from the config file.
    #[arg(long, global = true)]
    pub provider: Option<String>,
    /// Config file (default $XDG_CONFIG_HOME/kai/config.toml).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Maximum model round trips per question.
    #[arg(long, global = true, value_name = "N")]
    pub max_steps: Option<u32>,
    /// Output budget per tool result, in tokens.
    #[arg(long, global = true, value_name = "TOKENS")]
    pub tool_output_tokens: Option<usize>,
    /// Output format.
    #[arg(short = 'o', long, global = true, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// Never offer mutating tools to the model.
    #[arg(long, global = true, conflicts_with = "yes")]
    pub read_only: bool,
    /// Approve proposed changes without asking (still dry-run first and audited). For scripts.
    #[arg(long, global = true)]
    pub yes: bool,
    /// Do not fetch the named workload's context before the first model call.
    #[arg(long, global = true, hide = true)]
    pub no_pregather: bool,
    /// More detail on stderr (-v: per-tool sizes and timings; -vv: debug logs).
    #[arg(short = 'v', long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

impl GlobalArgs {
    pub fn overrides(&self) -> Overrides {
        Overrides {
            config_path: self.config.clone(),
            provider: self.provider.clone(),
            model: self.model.clone(),
            base_url: self.base_url.clone(),
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
            namespace: self.namespace.clone(),
            max_steps: self.max_steps,
            tool_output_tokens: self.tool_output_tokens,
            read_only: self.read_only,
            yes: self.yes,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Find the root cause of a problem with one object (and what it depends on).
    Diagnose(DiagnoseArgs),
    /// Every problem in a namespace (or all of them), ranked by severity, without a model.
    Scan(ScanArgs),
    /// Start a local test cluster, break a workload, and diagnose it.
    Demo(DemoArgs),
    /// Changes kai applied or proposed (the audit log).
    History,
    /// Undo a change kai applied (default: the last one), after a diff and your yes.
    Undo {
        /// The change id from `kai history`.
        id: Option<String>,
    },
    /// Saved interactive sessions (id, start, context, namespace, first question);
    /// `kai --resume ID` continues one.
    Sessions,
    /// The local test cluster used by the demo and the test suite.
    #[command(subcommand)]
    Testcluster(TestclusterCmd),
    /// Check manifests: YAML, schema (unknown fields by path), best-practice rules.
    Lint(crate::lint::LintArgs),
    /// Write manifests from a description, checked (and dry-run on the cluster) first.
    Generate(crate::generate::GenerateArgs),
    /// Troubleshooting docs: search kai's runbooks and your own, index your folders.
    #[command(subcommand)]
    Docs(DocsCmd),
}

#[derive(Debug, Subcommand)]
pub enum DocsCmd {
    /// Search the built-in runbooks and your indexed documents (BM25; hybrid when
    /// `docs.hybrid = true` in the config file).
    Search {
        /// What to look for: an error message, a symptom, a resource kind.
        #[arg(required = true, value_name = "QUERY")]
        query: Vec<String>,
        /// How many results (1-100).
        #[arg(short = 'k', long = "limit", value_name = "N", default_value_t = crate::docs::DEFAULT_K,
              value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=100))]
        k: usize,
    },
    /// Index folders (or files) of .md/.markdown/.txt documents, incrementally by content
    /// hash, into the cache directory. They replace the folders of the last run;
    /// `docs.paths` from the config file is always included. No folder: refresh.
    Index {
        #[arg(value_name = "DIR")]
        dirs: Vec<PathBuf>,
    },
    /// List the indexed documents: built-in runbooks and your files.
    List,
}

#[derive(Debug, Args)]
pub struct DiagnoseArgs {
    /// `kind/name` or a bare name (Deployment, StatefulSet, DaemonSet, ReplicaSet, Pod,
    /// Service, Ingress, Job, CronJob, PVC, Node). Omit to diagnose the whole namespace.
    pub target: Option<String>,
    /// Deterministic analyzers only: no model is called.
    #[arg(long)]
    pub no_llm: bool,
    /// Print the cause codes findings use, and exit.
    #[arg(long)]
    pub list_causes: bool,
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// All namespaces.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Scenario to break (default crashloop-app-error); `--list` shows them.
    pub scenario: Option<String>,
    /// List the scenarios.
    #[arg(long)]
    pub list: bool,
}

#[derive(Debug, Subcommand)]
pub enum TestclusterCmd {
    /// Start the cluster in the background and set up scenarios; prints the KUBECONFIG.
    Up {
        /// Scenario names (see `kai demo --list`).
        scenarios: Vec<String>,
    },
    /// Stop the background cluster.
    Down,
    /// Is it running, and where.
    Status,
    /// (internal) run the cluster in the foreground until SIGTERM.
    #[command(hide = true)]
    Serve {
        #[arg(long)]
        state_dir: PathBuf,
    },
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ok(args: &[&str]) -> Cli {
        let mut argv = vec!["kai"];
        argv.extend_from_slice(args);
        parse(&argv).unwrap_or_else(|e| panic!("{args:?}: {}", e.message()))
    }

    fn fails(args: &[&str]) -> ParseFailure {
        let mut argv = vec!["kai"];
        argv.extend_from_slice(args);
        match parse(&argv) {
            Ok(c) => panic!("{args:?} parsed: {c:?}"),
            Err(e) => e,
        }
    }

    fn question(c: &Cli) -> String {
        assert!(c.command.is_none(), "{c:?}");
        c.prompt.join(" ")
    }

    #[test]
    fn flags_work_before_after_and_between_the_words() {
        let q = "why is web down?";
        for args in [
            &["-n", "shop", "why is web down?"][..],
            &["why is web down?", "-n", "shop"],
            &["why is web down?", "--namespace", "shop"],
            &["why is web down?", "--namespace=shop"],
            &["why is web down?", "-n=shop"],
            &["why is web down?", "-nshop"],
            &["why", "is", "web", "down?", "-n", "shop"],
            &["why", "is", "-n", "shop", "web", "down?"],
            &["-n", "shop", "why", "is", "web", "down?"],
            &["why", "-n", "shop", "is", "web", "down?"],
        ] {
            let c = ok(args);
            assert_eq!(question(&c), q, "{args:?}");
            assert_eq!(c.global.namespace.as_deref(), Some("shop"), "{args:?}");
        }
    }

    #[test]
    fn safety_and_output_flags_after_the_question_are_honoured() {
        let c = ok(&["why is web down?", "--read-only"]);
        assert!(c.global.read_only);
        assert!(!c.global.yes);
        assert_eq!(question(&c), "why is web down?");

        let c = ok(&["scale", "web", "to", "3", "please", "--yes"][1..]);
        assert!(c.global.yes);
        assert_eq!(question(&c), "web to 3 please");

        let c = ok(&["why", "is", "web", "down?", "--read-only", "-o", "json"]);
        assert!(c.global.read_only);
        assert_eq!(c.global.output, Output::Json);
        assert_eq!(question(&c), "why is web down?");

        for args in [
            &["why?", "-o", "json"][..],
            &["why?", "-ojson"],
            &["why?", "-o=json"],
            &["why?", "--output", "json"],
            &["why?", "--output=json"],
        ] {
            let c = ok(args);
            assert_eq!(c.global.output, Output::Json, "{args:?}");
            assert_eq!(question(&c), "why?", "{args:?}");
        }

        let c = ok(&[
            "why?",
            "--context",
            "prod",
            "--kubeconfig",
            "/k",
            "--model",
            "m",
            "--base-url",
            "http://x",
            "--provider",
            "p",
            "--max-steps",
            "3",
            "--tool-output-tokens",
            "100",
            "-vv",
        ]);
        assert_eq!(question(&c), "why?");
        assert_eq!(c.global.context.as_deref(), Some("prod"));
        assert_eq!(c.global.kubeconfig, Some(PathBuf::from("/k")));
        assert_eq!(c.global.model.as_deref(), Some("m"));
        assert_eq!(c.global.base_url.as_deref(), Some("http://x"));
        assert_eq!(c.global.provider.as_deref(), Some("p"));
        assert_eq!(c.global.max_steps, Some(3));
        assert_eq!(c.global.tool_output_tokens, Some(100));
        assert_eq!(c.global.verbose, 2);
    }

    #[test]
    fn double_dash_ends_the_flags() {
        let c = ok(&["--", "-n is weird"]);
        assert_eq!(question(&c), "-n is weird");
        assert_eq!(c.global.namespace, None);

        let c = ok(&["-n", "shop", "--", "-n", "is", "weird", "--read-only"]);
        assert_eq!(question(&c), "-n is weird --read-only");
        assert_eq!(c.global.namespace.as_deref(), Some("shop"));
        assert!(!c.global.read_only, "after -- it is part of the question");

        let c = ok(&["why", "--", "--yes"]);
        assert_eq!(question(&c), "why --yes");
        assert!(!c.global.yes);

        let c = ok(&["--", "scan", "my", "cluster"]);
        assert_eq!(question(&c), "scan my cluster");
    }

    #[test]
    fn unknown_flags_are_usage_errors_never_part_of_the_question() {
        for args in [
            &["why is web down?", "--frob"][..],
            &["--frob", "why?"],
            &["why", "--readonly", "now"],
            &["why?", "-x"],
            &["why?", "-o", "yaml"],
            &["why?", "-n"],
            &["why?", "--yes", "--read-only"],
            &["why?", "--read-only", "--yes"],
        ] {
            let e = fails(args);
            assert_eq!(e.exit_code(), crate::exit::USAGE, "{args:?}");
            assert!(e.hint.is_none(), "{args:?}: {:?}", e.hint);
        }
        assert!(fails(&["why", "--frob"]).message().contains("--frob"));
    }

    #[test]
    fn negative_numbers_are_words() {
        let c = ok(&["why", "is", "the", "offset", "-1", "-n", "shop"]);
        assert_eq!(question(&c), "why is the offset -1");
        assert_eq!(c.global.namespace.as_deref(), Some("shop"));
    }

    #[test]
    fn a_quoted_question_starting_with_a_command_word_is_a_question() {
        let c = ok(&["scan my cluster please"]);
        assert_eq!(question(&c), "scan my cluster please");
        let c = ok(&["why", "is", "scan", "slow", "-n", "x"]);
        assert_eq!(question(&c), "why is scan slow");
        let c = ok(&["history of web?"]);
        assert_eq!(question(&c), "history of web?");
    }

    #[test]
    fn unquoted_command_words_run_the_command_and_say_how_to_ask_instead() {
        for (args, name, q) in [
            (&["scan", "my", "cluster"][..], "scan", "scan my cluster"),
            (
                &["-n", "shop", "scan", "my", "cluster", "--read-only"],
                "scan",
                "scan my cluster",
            ),
            (&["history", "of", "web"], "history", "history of web"),
            (
                &["undo", "the", "last", "thing"],
                "undo",
                "undo the last thing",
            ),
            (&["help", "me", "fix", "web"], "help", "help me fix web"),
            (
                &["-v", "help", "me", "fix", "web"],
                "help",
                "help me fix web",
            ),
            (
                &["diagnose", "why", "-n", "shop", "web", "fails"],
                "diagnose",
                "diagnose why web fails",
            ),
        ] {
            let e = fails(args);
            assert_eq!(e.exit_code(), crate::exit::USAGE, "{args:?}");
            let hint = e
                .hint
                .clone()
                .unwrap_or_else(|| panic!("{args:?}: no hint"));
            assert!(
                hint.contains(&format!("\"{name}\" is a kai command")),
                "{hint}"
            );
            assert!(hint.contains(&format!("kai \"{q}\"")), "{hint}");
            assert!(hint.contains(&format!("kai -- {q}")), "{hint}");
            assert!(e.message().contains(&hint), "{}", e.message());
        }
        // A stray flag after a command is an ordinary mistake: no question hint.
        assert!(fails(&["scan", "--frob"]).hint.is_none());
    }

    #[test]
    fn options_may_come_before_a_command() {
        for args in [
            &["-n", "shop", "scan", "-A"][..],
            &["--namespace", "shop", "scan", "-A"],
            &["--namespace=shop", "scan", "-A"],
            &["-vn", "shop", "scan", "-A"],
            &["-vnshop", "scan", "-A"],
            &[
                "--kubeconfig",
                "/k",
                "-n",
                "shop",
                "scan",
                "--all-namespaces",
            ],
        ] {
            let c = ok(args);
            assert!(
                matches!(
                    c.command,
                    Some(Command::Scan(ScanArgs {
                        all_namespaces: true
                    }))
                ),
                "{args:?}: {c:?}"
            );
            assert!(c.prompt.is_empty(), "{args:?}");
        }
        let c = ok(&["-n", "shop", "diagnose", "web", "--no-llm"]);
        assert!(matches!(
            &c.command,
            Some(Command::Diagnose(DiagnoseArgs { no_llm: true, target: Some(t), .. })) if t == "web"
        ));
        assert!(matches!(
            ok(&["-v", "history"]).command,
            Some(Command::History)
        ));
        // An option's value that happens to be a command's name is still a value.
        let c = ok(&["-n", "scan", "why", "is", "web", "down"]);
        assert_eq!(question(&c), "why is web down");
        assert_eq!(c.global.namespace.as_deref(), Some("scan"));
    }

    #[test]
    fn a_command_word_later_in_a_question_is_a_word() {
        for (args, q) in [
            (&["why", "-n", "x", "scan", "broken"][..], "why scan broken"),
            (&["why", "is", "scan", "slow"], "why is scan slow"),
            (
                &["what", "--read-only", "history", "is", "there"],
                "what history is there",
            ),
            (&["why", "undo", "fails", "-o", "json"], "why undo fails"),
        ] {
            assert_eq!(question(&ok(args)), q, "{args:?}");
        }
    }

    #[test]
    fn subcommands_keep_their_flags_anywhere() {
        let c = ok(&["scan", "-o", "json", "-A"]);
        assert!(matches!(
            c.command,
            Some(Command::Scan(ScanArgs {
                all_namespaces: true
            }))
        ));
        assert_eq!(c.global.output, Output::Json);
        let c = ok(&["diagnose", "--no-llm", "deploy/web", "-n", "shop"]);
        assert!(matches!(
            &c.command,
            Some(Command::Diagnose(DiagnoseArgs { no_llm: true, target: Some(t), .. })) if t == "deploy/web"
        ));
        assert_eq!(c.global.namespace.as_deref(), Some("shop"));
    }

    #[test]
    fn help_and_version_exit_zero() {
        assert_eq!(fails(&["--help"]).exit_code(), crate::exit::OK);
        assert_eq!(fails(&["why?", "--version"]).exit_code(), crate::exit::OK);
    }

    #[test]
    fn the_error_message_cannot_drive_the_terminal() {
        let m = fails(&["history", "\x1b]0;pwned\x07"]).message();
        assert!(!m.contains('\x1b'), "{m:?}");
        assert!(m.contains("^[]0;pwned^G"), "{m:?}");
    }

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn a_question_is_not_taken_for_a_subcommand() {
        let c = Cli::try_parse_from(["kai", "why", "is", "backend", "crashlooping?"]).unwrap();
        assert!(c.command.is_none());
        assert_eq!(c.prompt.join(" "), "why is backend crashlooping?");
        let c = Cli::try_parse_from(["kai", "-n", "shop", "--model", "m", "why?"]).unwrap();
        assert_eq!(c.global.namespace.as_deref(), Some("shop"));
        assert_eq!(c.prompt, vec!["why?"]);
    }

    #[test]
    fn subcommands_parse() {
        let c = Cli::try_parse_from(["kai", "scan", "-A", "-o", "json"]).unwrap();
        assert!(matches!(
            c.command,
            Some(Command::Scan(ScanArgs {
                all_namespaces: true
            }))
        ));
        assert_eq!(c.global.output, Output::Json);
        let c = Cli::try_parse_from(["kai", "diagnose", "deploy/backend", "--no-llm"]).unwrap();
        assert!(matches!(
            c.command,
            Some(Command::Diagnose(DiagnoseArgs { no_llm: true, .. }))
        ));
    }

    #[test]
    fn resume_takes_an_optional_id() {
        assert_eq!(ok(&["--resume"]).resume(), Some(None));
        assert_eq!(
            ok(&["--resume", "20261130-085501-3fa2"]).resume(),
            Some(Some("20261130-085501-3fa2".into()))
        );
        assert_eq!(ok(&["-n", "x", "--resume"]).resume(), Some(None));
        assert_eq!(ok(&[]).resume(), None);
        assert!(matches!(ok(&["sessions"]).command, Some(Command::Sessions)));
    }

    #[test]
    fn yes_and_read_only_conflict() {
        assert!(Cli::try_parse_from(["kai", "--yes", "--read-only", "q"]).is_err());
    }
}
