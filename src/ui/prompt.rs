//! The terminal dialogue for one approval. Pure over its reader and writer, so it is
//! unit-tested with in-memory input; the UI calls it with the real terminal.
//!
//! The title, diff and command quote model-chosen names and live object content, so each
//! passes [`for_terminal`] before kai adds its own colours: an escape sequence in a
//! ConfigMap cannot clear the screen or rewrite the question the user is answering.

use std::io::{BufRead, Write};

use crate::agent::protocol::{ApprovalRequest, Decision};
use crate::ui::term::{for_terminal, sanitize};
use kai_changes::diff::colorize;

pub const QUESTION: &str =
    "Apply this change? [y]es / [N]o / [f]eedback / [a]ll for this session: ";
/// Analyzer findings proposed as one step.
pub const PROPOSAL_QUESTION: &str = "Apply the suggested fix? [y/N]: ";

/// Show `req` and read the answer. The default is no; end of input, an unreadable line
/// or anything unexpected is [`Decision::Denied`]. A dangerous change needs the object's
/// name typed exactly. Output errors are ignored: a prompt that cannot be shown can still
/// only be answered from `input`.
pub fn prompt_decision(
    req: &ApprovalRequest,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
    colour: bool,
) -> Decision {
    let _ = writeln!(out, "\n{}", for_terminal(&req.title));
    let diff = for_terminal(&req.diff);
    if diff.is_empty() {
        let _ = writeln!(out, "(no visible change)");
    } else if colour {
        let _ = write!(out, "{}", colorize(&diff));
    } else {
        let _ = write!(out, "{diff}");
    }
    if !diff.ends_with('\n') {
        let _ = writeln!(out);
    }
    if !req.kubectl.is_empty() {
        let _ = write!(out, "{}", kubectl_shown(&for_terminal(&req.kubectl)));
    }
    if req.dangerous {
        let name = req.confirm_name.clone().unwrap_or_default();
        // Shown sanitised; compared below against the real name.
        let shown = sanitize(&name);
        let warn = if colour {
            "\x1b[1;31mThis change is dangerous.\x1b[0m"
        } else {
            "This change is dangerous."
        };
        let _ = write!(
            out,
            "{warn} Type the name {shown:?} to apply it (anything else cancels): "
        );
        let _ = out.flush();
        return match read_line(input) {
            Some(typed) if !name.is_empty() && typed.trim() == name => Decision::Approved,
            _ => {
                let _ = writeln!(out, "Not applied.");
                Decision::Denied
            }
        };
    }
    let proposal = req.tool == kai_changes::PROPOSAL_TOOL;
    let _ = write!(
        out,
        "{}",
        if proposal {
            PROPOSAL_QUESTION
        } else {
            QUESTION
        }
    );
    let _ = out.flush();
    let Some(answer) = read_line(input) else {
        let _ = writeln!(out, "\nNo answer; not applied.");
        return Decision::Denied;
    };
    match answer.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Decision::Approved,
        "a" | "all" if !proposal => Decision::ApprovedForSession,
        "f" | "feedback" if !proposal => {
            let _ = write!(out, "Feedback for the assistant: ");
            let _ = out.flush();
            match read_line(input).map(|l| l.trim().to_string()) {
                Some(text) if !text.is_empty() => Decision::DeniedWithFeedback(text),
                _ => Decision::Denied,
            }
        }
        "q" | "quit" | "abort" => Decision::Abort,
        _ => {
            let _ = writeln!(out, "Not applied.");
            Decision::Denied
        }
    }
}

/// Lines of a multi-line kubectl equivalent (a manifest in a heredoc) shown at most.
const KUBECTL_LINES: usize = 30;

/// The kubectl equivalent as the prompt shows it: the command, and a manifest it carries
/// indented under it (so no line of it reads as kai's own), cut after [`KUBECTL_LINES`].
fn kubectl_shown(kubectl: &str) -> String {
    let mut lines = kubectl.lines();
    let mut out = format!("kubectl equivalent: {}\n", lines.next().unwrap_or(""));
    let rest: Vec<&str> = lines.collect();
    for line in rest.iter().take(KUBECTL_LINES - 1) {
        out.push_str(&format!("  {line}\n"));
    }
    if rest.len() >= KUBECTL_LINES {
        let more = rest.len() - (KUBECTL_LINES - 1);
        out.push_str(&format!("  … {more} more lines\n"));
    }
    out
}

/// One line, or `None` at end of input or on a read error (both mean "no").
fn read_line(input: &mut dyn BufRead) -> Option<String> {
    let mut line = String::new();
    match input.read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line.trim_end_matches(['\r', '\n']).to_string()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn req(dangerous: bool) -> ApprovalRequest {
        ApprovalRequest {
            id: "abc".into(),
            tool: "scale".into(),
            title: "scale Deployment shop/web to 0 replicas".into(),
            diff: "--- live\n+++ after\n@@ -1 +1 @@\n-  replicas: 2\n+  replicas: 0\n".into(),
            kubectl: "kubectl scale deployment/web -n shop --replicas=0".into(),
            dangerous,
            confirm_name: dangerous.then(|| "web".to_string()),
        }
    }

    fn ask(r: &ApprovalRequest, input: &str) -> (Decision, String) {
        let mut out = Vec::new();
        let d = prompt_decision(r, &mut input.as_bytes(), &mut out, false);
        (d, String::from_utf8(out).unwrap())
    }

    #[test]
    fn shows_title_diff_kubectl_and_question() {
        let (_, out) = ask(&req(false), "n\n");
        assert!(out.contains("scale Deployment shop/web"));
        assert!(out.contains("+  replicas: 0"));
        assert!(out.contains("kubectl scale"));
        assert!(out.contains(QUESTION));
        assert!(!out.contains('\x1b'), "no colour when not asked for");
    }

    #[test]
    fn a_manifest_in_the_kubectl_equivalent_is_shown_indented_and_cut() {
        let mut r = req(false);
        let doc: Vec<String> = (1..=40).map(|i| format!("key{i}: v")).collect();
        r.kubectl = format!("kubectl apply -f - <<'EOF'\n{}\nEOF", doc.join("\n"));
        let (_, out) = ask(&r, "n\n");
        assert!(
            out.contains("kubectl equivalent: kubectl apply -f - <<'EOF'\n  key1: v\n  key2: v\n"),
            "{out}"
        );
        assert!(out.contains("  key29: v\n  … 12 more lines\n"), "{out}");
        assert!(!out.contains("key30"), "{out}");
        // A short one is whole, its end included.
        r.kubectl = "kubectl apply -f - <<'EOF'\nkind: ConfigMap\nEOF".into();
        let (_, out) = ask(&r, "n\n");
        assert!(
            out.contains(
                "kubectl equivalent: kubectl apply -f - <<'EOF'\n  kind: ConfigMap\n  EOF\n"
            ),
            "{out}"
        );
    }

    #[test]
    fn answers_map_to_decisions() {
        let r = req(false);
        let cases = [
            ("y\n", Decision::Approved),
            ("YES\n", Decision::Approved),
            ("a\n", Decision::ApprovedForSession),
            ("n\n", Decision::Denied),
            ("\n", Decision::Denied),
            ("maybe\n", Decision::Denied),
            ("", Decision::Denied),
            ("q\n", Decision::Abort),
            (
                "f\nuse 2 replicas instead\n",
                Decision::DeniedWithFeedback("use 2 replicas instead".into()),
            ),
            ("f\n", Decision::Denied),
            ("f\n\n", Decision::Denied),
        ];
        for (input, want) in cases {
            assert_eq!(ask(&r, input).0, want, "input {input:?}");
        }
    }

    #[test]
    fn dangerous_change_needs_the_name_typed() {
        let r = req(true);
        assert_eq!(ask(&r, "web\n").0, Decision::Approved);
        for input in ["y\n", "yes\n", "a\n", "Web\n", "we\n", "", "\n"] {
            assert_eq!(ask(&r, input).0, Decision::Denied, "input {input:?}");
        }
        let (_, out) = ask(&r, "");
        assert!(
            out.contains("dangerous") && out.contains("\"web\""),
            "{out}"
        );
    }

    #[test]
    fn unreadable_input_is_denied() {
        let bytes: &[u8] = &[0xff, 0xfe, b'\n'];
        let mut out = Vec::new();
        assert_eq!(
            prompt_decision(&req(false), &mut &bytes[..], &mut out, true),
            Decision::Denied
        );
    }

    #[test]
    fn untrusted_text_is_shown_visible_and_kai_colours_survive() {
        let mut r = req(false);
        r.title = "patch ConfigMap shop/\x1b]0;pwned\x07notes".into();
        r.diff = "--- live\n+++ after\n@@ -1 +1 @@\n-  msg: ok\n+  msg: \x1b[2J\x1b[1A\rApproved already \u{9b}K\n+  password: hunter2x\n".into();
        r.kubectl = "kubectl patch configmap \x1b[8mhidden -n shop\nsecond".into();
        for colour in [false, true] {
            let mut out = Vec::new();
            let d = prompt_decision(&r, &mut "n\n".as_bytes(), &mut out, colour);
            assert_eq!(d, Decision::Denied);
            let out = String::from_utf8(out).unwrap();
            let without_colours = crate::ui::term::without_colours(&out);
            assert!(
                !without_colours.contains('\x1b') && !out.contains('\r') && !out.contains('\u{9b}'),
                "{out:?}"
            );
            assert!(without_colours.contains("shop/^[]0;pwned^Gnotes"), "{out}");
            assert!(
                without_colours.contains("+  msg: ^[[2J^[[1A^MApproved already \\u{9b}K"),
                "{out}"
            );
            assert!(!out.contains("hunter2x"), "{out}");
            assert!(
                without_colours.contains(
                    "kubectl equivalent: kubectl patch configmap ^[[8mhidden -n shop\n  second\n"
                ),
                "{out}"
            );
            assert!(out.contains(QUESTION), "{out}");
            if colour {
                assert!(
                    out.contains("\x1b[32m+  msg: ^[[2J"),
                    "kai's diff colour: {out:?}"
                );
            }
        }
    }

    #[test]
    fn proposals_ask_yes_or_no() {
        let mut r = req(false);
        r.tool = crate::changes::PROPOSAL_TOOL.into();
        let (d, out) = ask(&r, "y\n");
        assert_eq!(d, Decision::Approved);
        assert!(out.contains(PROPOSAL_QUESTION));
        assert_eq!(ask(&r, "a\n").0, Decision::Denied);
    }
}
