//! Process exit codes. Documented in the README; scripts rely on them, so never renumber.

/// Success: the answer was given, or `scan`/`diagnose` found no problems.
pub const OK: i32 = 0;
/// Unexpected internal error.
pub const INTERNAL: i32 = 1;
/// Bad usage: empty prompt, unknown flag or value, malformed input file.
pub const USAGE: i32 = 2;
/// `scan`/`diagnose` completed and found problems; `lint` found an error-level problem;
/// `docs index` completed but skipped files (each named on stderr).
pub const PROBLEMS_FOUND: i32 = 3;
/// No kubeconfig, unknown context, or the cluster is unreachable.
pub const CLUSTER_UNREACHABLE: i32 = 4;
/// The cluster refused a request (RBAC `Forbidden`, `Unauthorized`).
pub const FORBIDDEN: i32 = 5;
/// No API key for the configured model provider.
pub const NO_API_KEY: i32 = 6;
/// The model endpoint failed: down, unknown model, garbage, retries exhausted.
pub const MODEL_ERROR: i32 = 7;
/// A proposed change was not applied: the user declined, there was no terminal and no
/// `--yes`, the audit log could not be written, or an undo cannot restore what it would
/// need (Secret values are never kept).
pub const NOT_APPLIED: i32 = 8;
/// The turn stopped at `--max-steps` before the model gave a final answer.
pub const MAX_STEPS: i32 = 9;
/// `generate` gave up: no draft passed the checks within its rounds.
pub const GENERATE_FAILED: i32 = 10;
/// Interrupted by Ctrl-C.
pub const INTERRUPTED: i32 = 130;

/// The table printed by `kai --help` and the README.
pub const TABLE: &str = "\
Exit codes:
  0    success (scan/diagnose: no problems found)
  1    internal error
  2    usage error (empty prompt, bad flag, malformed input)
  3    scan/diagnose found problems; lint found an error-level problem; docs index skipped some files (named on stderr)
  4    no kubeconfig, unknown context, or cluster unreachable
  5    the cluster refused a request (RBAC Forbidden / Unauthorized)
  6    missing API key for the model provider
  7    model endpoint error (down, unknown model, bad response, retries exhausted)
  8    a change was not applied (declined; no terminal and no --yes; audit log not
       writable; an undo that cannot restore Secret values)
  9    stopped at --max-steps without a final answer
  10   generate gave up: no draft passed the checks in 3 rounds
  130  interrupted (Ctrl-C)";
