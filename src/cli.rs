//! Command-line definitions (clap) and dispatch. Nothing else lives here: each command's
//! work is in its own module.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::Overrides;

const EXAMPLES: &str = "\
Examples:
  kai \"why is backend crashlooping?\"            one question, one answer (read-only tools; fixes are proposed)
  kai                                           interactive session (memory across questions; /help inside)
  kai -n shop \"why are the checkout pods pending?\"
  kai diagnose deployment/backend --no-llm      root causes without a model
  kai scan -A                                   every problem in the cluster, ranked
  kai demo                                      local test cluster + a broken workload + a diagnosis
  kai history / kai undo                        changes kai applied, and undoing the last one

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

Environment: KUBECONFIG, OPENAI_API_KEY, OPENAI_BASE_URL, KAI_MODEL, KAI_PROVIDER, KAI_CONFIG, KAI_DATA_DIR, RUST_LOG.
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
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Option<Command>,

    /// The question, e.g. "why is backend crashlooping?" (quotes optional). Without one:
    /// an interactive session on a terminal, else the question is read from stdin.
    #[arg(value_name = "PROMPT", trailing_var_arg = true)]
    pub prompt: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Output {
    #[default]
    Text,
    Json,
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
    /// The local test cluster used by the demo and the test suite.
    #[command(subcommand)]
    Testcluster(TestclusterCmd),
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
    use clap::CommandFactory;

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
    fn yes_and_read_only_conflict() {
        assert!(Cli::try_parse_from(["kai", "--yes", "--read-only", "q"]).is_err());
    }
}
