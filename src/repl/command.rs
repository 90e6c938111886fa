//! What one input line of the session means: a question, or a slash command. One pure
//! function ([`parse_line`]) decides, so every command's syntax is unit-tested here and
//! the help text and tab completion come from the same table ([`COMMANDS`]).

/// What one input line means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Empty,
    Question(String),
    Command(Slash),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Slash {
    Help,
    Exit,
    /// Forget the conversation (and any "yes for this session"); a new saved session.
    Reset,
    /// Tokens, cost and how full the context window is.
    Usage,
    /// Switch namespace; `None` shows the current one.
    Namespace(Option<String>),
    /// Switch kubeconfig context (reconnects); `None` shows the current one.
    Context(Option<String>),
    /// Switch model; `None` shows the current one.
    Model(Option<String>),
    /// What the model may call, mutating tools marked.
    Tools,
    /// The namespace's findings, without a model turn.
    Scan,
    /// Findings for one target (or the namespace), without a model turn.
    Diagnose(Option<String>),
    /// Search the runbooks (extension point: see `docs` in the session loop).
    Docs(String),
    /// Generate manifests (`kai generate`): printed; with `apply`, then offered as a
    /// change (dry-run diff and the user's yes, like `kai generate --apply`).
    Generate {
        description: String,
        apply: bool,
    },
    /// Changes kai applied or proposed (the audit log).
    History,
    /// Undo a change (default: the last one), after a diff and a yes.
    Undo(Option<String>),
    /// Write the conversation to a file (default: `kai-session-ID.md`).
    Save(Option<String>),
    Unknown(String),
    /// A known command used wrongly: how to use it.
    Invalid(String),
}

/// Every command: name, arguments, one line of help. Aliases are in [`parse_line`].
pub const COMMANDS: &[(&str, &str, &str)] = &[
    (
        "namespace",
        "[NS]",
        "switch namespace (no argument: show it)",
    ),
    (
        "context",
        "[CTX]",
        "switch kubeconfig context and reconnect",
    ),
    ("model", "[NAME]", "switch model for the next questions"),
    (
        "tools",
        "",
        "what the model may call (mutating ones marked)",
    ),
    (
        "scan",
        "",
        "every problem in the namespace, without the model",
    ),
    (
        "diagnose",
        "[TARGET]",
        "findings for kind/name (or the namespace), without the model",
    ),
    ("docs", "QUERY", "search the runbooks"),
    (
        "generate",
        "[--apply] DESCRIPTION",
        "generate checked manifests (printed; --apply: then a dry-run diff and your yes)",
    ),
    ("history", "", "changes kai applied or proposed"),
    ("undo", "[ID]", "undo a change (default: the last one)"),
    ("save", "[FILE]", "write the conversation to a file"),
    (
        "usage",
        "",
        "tokens, cost, and how full the context window is",
    ),
    (
        "reset",
        "",
        "forget the conversation (and any \"yes for this session\")",
    ),
    ("help", "", "this text"),
    ("exit", "", "leave (also /quit, Ctrl-D)"),
];

/// The help text, from [`COMMANDS`].
pub fn help() -> String {
    let mut s = String::from(
        "Ask a question about the cluster, e.g. why is backend crashlooping?\n\
         End a line with \\ to continue the question on the next line.\nCommands:\n",
    );
    for (name, args, text) in COMMANDS {
        let usage = if args.is_empty() {
            format!("/{name}")
        } else {
            format!("/{name} {args}")
        };
        s.push_str(&format!("  {usage:<24} {text}\n"));
    }
    s.push_str(
        "Tab completes commands, kinds and object names. Ctrl-C stops the answer in progress; \
         Ctrl-D leaves.\nA line starting with // is a question starting with /.",
    );
    s
}

/// `/generate [--apply] DESCRIPTION` once the rest of the line is known not to be empty.
fn generate(rest: &str) -> Slash {
    let (apply, description) = match rest.strip_prefix("--apply") {
        Some(d) if d.is_empty() || d.starts_with(char::is_whitespace) => (true, d.trim()),
        _ => (false, rest),
    };
    if description.is_empty() {
        return Slash::Invalid(
            "/generate --apply needs a description: /generate --apply A DESCRIPTION".into(),
        );
    }
    Slash::Generate {
        description: description.to_string(),
        apply,
    }
}

/// Parse one input (a line, or several joined). `//text` is a question starting with a
/// slash, not a command.
pub fn parse_line(line: &str) -> Input {
    let t = line.trim();
    if t.is_empty() {
        return Input::Empty;
    }
    if let Some(rest) = t.strip_prefix("//") {
        return Input::Question(format!("/{rest}"));
    }
    let Some(cmd) = t.strip_prefix('/') else {
        return Input::Question(t.to_string());
    };
    let (word, rest) = match cmd.find(char::is_whitespace) {
        Some(i) => (&cmd[..i], cmd[i..].trim()),
        None => (cmd, ""),
    };
    let word = word.to_ascii_lowercase();
    let args: Vec<&str> = rest.split_whitespace().collect();
    // At most one word of argument, for commands that take a name.
    let one = |name: &str, what: &str| -> Result<Option<String>, Slash> {
        match args.as_slice() {
            [] => Ok(None),
            [a] => Ok(Some((*a).to_string())),
            _ => Err(Slash::Invalid(format!(
                "/{name} takes one {what}: /{name} {}",
                what.to_ascii_uppercase()
            ))),
        }
    };
    let rest_required = |name: &str, what: &str| -> Slash {
        if rest.is_empty() {
            Slash::Invalid(format!(
                "/{name} needs {what}: /{name} {}",
                what.to_ascii_uppercase()
            ))
        } else {
            match name {
                "docs" => Slash::Docs(rest.to_string()),
                _ => generate(rest),
            }
        }
    };
    let slash = match word.as_str() {
        "help" | "h" | "?" => Slash::Help,
        "exit" | "quit" | "q" => Slash::Exit,
        "reset" | "clear" => Slash::Reset,
        "usage" | "tokens" | "cost" => Slash::Usage,
        "namespace" | "ns" | "n" => one("namespace", "name").map_or_else(|e| e, Slash::Namespace),
        "context" | "ctx" => one("context", "name").map_or_else(|e| e, Slash::Context),
        "model" => one("model", "name").map_or_else(|e| e, Slash::Model),
        "tools" => Slash::Tools,
        "scan" => Slash::Scan,
        "diagnose" | "diag" => one("diagnose", "target").map_or_else(|e| e, Slash::Diagnose),
        "docs" | "doc" => rest_required("docs", "a query"),
        "generate" | "gen" => rest_required("generate", "a description"),
        "history" => Slash::History,
        "undo" => one("undo", "id").map_or_else(|e| e, Slash::Undo),
        // A file name may hold spaces: the whole rest of the line.
        "save" => Slash::Save((!rest.is_empty()).then(|| rest.to_string())),
        _ => Slash::Unknown(word),
    };
    Input::Command(slash)
}

/// A line ending in a backslash continues on the next: the line without it.
pub fn continued(line: &str) -> Option<&str> {
    let t = line.trim_end();
    let body = t.strip_suffix('\\')?;
    // `\\` at the end is an escaped backslash, not a continuation.
    if body.ends_with('\\') {
        return None;
    }
    Some(body.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(s: Slash) -> Input {
        Input::Command(s)
    }

    #[test]
    fn lines_parse_into_questions_and_commands() {
        let cases = [
            ("", Input::Empty),
            ("   ", Input::Empty),
            (
                "why is backend down?",
                Input::Question("why is backend down?".into()),
            ),
            ("  /help ", cmd(Slash::Help)),
            ("/?", cmd(Slash::Help)),
            ("/EXIT", cmd(Slash::Exit)),
            ("/quit", cmd(Slash::Exit)),
            ("/reset now", cmd(Slash::Reset)),
            ("/usage", cmd(Slash::Usage)),
            ("/frob x", cmd(Slash::Unknown("frob".into()))),
            ("/", cmd(Slash::Unknown(String::new()))),
            (
                "//etc/hosts is missing",
                Input::Question("/etc/hosts is missing".into()),
            ),
            (
                "why\nis it down?",
                Input::Question("why\nis it down?".into()),
            ),
        ];
        for (line, want) in cases {
            assert_eq!(parse_line(line), want, "{line:?}");
        }
    }

    #[test]
    fn commands_with_arguments() {
        let cases = [
            (
                "/namespace shop",
                cmd(Slash::Namespace(Some("shop".into()))),
            ),
            ("/ns   shop  ", cmd(Slash::Namespace(Some("shop".into())))),
            ("/namespace", cmd(Slash::Namespace(None))),
            (
                "/context kind-prod",
                cmd(Slash::Context(Some("kind-prod".into()))),
            ),
            ("/ctx", cmd(Slash::Context(None))),
            ("/model gpt-4o", cmd(Slash::Model(Some("gpt-4o".into())))),
            ("/model", cmd(Slash::Model(None))),
            ("/tools", cmd(Slash::Tools)),
            ("/scan", cmd(Slash::Scan)),
            ("/diagnose", cmd(Slash::Diagnose(None))),
            (
                "/diagnose deployment/web",
                cmd(Slash::Diagnose(Some("deployment/web".into()))),
            ),
            (
                "/docs image pull backoff",
                cmd(Slash::Docs("image pull backoff".into())),
            ),
            (
                "/generate a redis deployment with 2 replicas",
                cmd(Slash::Generate {
                    description: "a redis deployment with 2 replicas".into(),
                    apply: false,
                }),
            ),
            (
                "/generate --apply  a redis deployment",
                cmd(Slash::Generate {
                    description: "a redis deployment".into(),
                    apply: true,
                }),
            ),
            (
                "/generate --applyish thing",
                cmd(Slash::Generate {
                    description: "--applyish thing".into(),
                    apply: false,
                }),
            ),
            ("/history", cmd(Slash::History)),
            ("/undo", cmd(Slash::Undo(None))),
            ("/undo chg-42", cmd(Slash::Undo(Some("chg-42".into())))),
            ("/save", cmd(Slash::Save(None))),
            (
                "/save my notes.md",
                cmd(Slash::Save(Some("my notes.md".into()))),
            ),
            (
                "/Namespace Shop",
                cmd(Slash::Namespace(Some("Shop".into()))),
            ),
        ];
        for (line, want) in cases {
            assert_eq!(parse_line(line), want, "{line:?}");
        }
    }

    #[test]
    fn misused_commands_say_how() {
        for (line, want) in [
            (
                "/namespace a b",
                "/namespace takes one name: /namespace NAME",
            ),
            ("/undo a b", "/undo takes one id: /undo ID"),
            (
                "/diagnose a b",
                "/diagnose takes one target: /diagnose TARGET",
            ),
            ("/docs", "/docs needs a query: /docs A QUERY"),
            (
                "/generate  ",
                "/generate needs a description: /generate A DESCRIPTION",
            ),
            (
                "/generate --apply ",
                "/generate --apply needs a description: /generate --apply A DESCRIPTION",
            ),
        ] {
            assert_eq!(
                parse_line(line),
                cmd(Slash::Invalid(want.into())),
                "{line:?}"
            );
        }
    }

    #[test]
    fn every_command_in_the_table_parses_to_itself_and_is_in_the_help() {
        let h = help();
        for (name, _, _) in COMMANDS {
            assert!(
                !matches!(
                    parse_line(&format!("/{name} x")),
                    Input::Command(Slash::Unknown(_))
                ),
                "{name}"
            );
            assert!(h.contains(&format!("/{name}")), "{name}");
        }
    }

    #[test]
    fn a_trailing_backslash_continues_the_line() {
        assert_eq!(continued("why is \\"), Some("why is"));
        assert_eq!(continued("why is \\  "), Some("why is"));
        assert_eq!(continued("why is"), None);
        assert_eq!(continued("C:\\\\"), None);
    }
}
