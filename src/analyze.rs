//! The analyzers as the front ends use them: kai-analyze's pure rules and rendering,
//! kai-cluster's read, under the one path they always had (`kai::analyze`).

pub use kai_analyze::*;
pub use kai_cluster::fetch::{
    self, diagnose, diagnose_analysis, scan, scan_analysis, snapshot, Analysis, AnalyzeError,
};

/// [`kai_analyze::render_text`] for a terminal or a pipe: every field quoted from the
/// cluster passes [`for_terminal`](crate::ui::term::for_terminal) (credentials scrubbed,
/// escape sequences made visible) before kai adds its own colours. Each finding links its
/// built-in runbook by title and path (`kai docs search` finds the rest).
pub fn render_text(findings: &[Finding], color: bool) -> String {
    let runbooks = kai_docs::builtin_runbooks();
    let title = |path: &str| {
        runbooks
            .iter()
            .find(|r| r.source == path)
            .map(|r| r.title.clone())
    };
    kai_analyze::render_text_with(findings, color, &crate::ui::term::for_terminal, &title)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn cluster_text_cannot_drive_the_terminal() {
        let o = ObjectRef::new("Pod", Some("app"), "web-1");
        let f = vec![Finding::new(
            Cause::CrashLoopAppError,
            o,
            "container \"app\" exits: \x1b[2J\x1b[Hall good",
        )
        .evidence("last log: \x1b]0;pwned\x07 FATAL \u{9b}31m\rok")
        .evidence("line one\nline two password=hunter2x")
        .fix("Run \x1bP+q\x1b\\ now", None)];
        for color in [false, true] {
            let text = render_text(&f, color);
            // kai's own colours are `ESC [ … m`; nothing else may carry an ESC.
            let without_colours = crate::ui::term::without_colours(&text);
            assert!(!without_colours.contains('\x1b'), "{text:?}");
            assert!(!text.contains('\u{9b}') && !text.contains('\r'), "{text:?}");
            assert!(
                without_colours.contains("exits: ^[[2J^[[Hall good"),
                "{text}"
            );
            assert!(
                without_colours.contains("│ last log: ^[]0;pwned^G FATAL \\u{9b}31m^Mok"),
                "{text}"
            );
            assert!(
                without_colours.contains("│ line two password=[REDACTED]"),
                "{text}"
            );
            assert!(!text.contains("hunter2x"), "{text}");
            assert!(without_colours.contains("fix: Run ^[P+q^[\\ now"), "{text}");
            let title = &kai_docs::builtin_runbooks()
                .into_iter()
                .find(|r| r.source == "docs/runbooks/crash-loop-app-error.md")
                .unwrap()
                .title;
            assert!(
                without_colours.contains(&format!(
                    "runbook: {title} (docs/runbooks/crash-loop-app-error.md)"
                )),
                "{text}"
            );
        }
    }
}
