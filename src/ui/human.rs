//! The human sink: streamed (rendered, on a TTY) answer on stdout; spinner, tool lines,
//! notices and usage on stderr.
//!
//! Everything shown here comes from the model or the cluster, so every piece passes
//! [`term`]: the answer a whole line at a time through a [`LineGate`] (scrubbed and
//! sanitised before Markdown adds kai's own styles), the rest through [`for_terminal`].

use std::io::Write;

use crate::agent::protocol::{Event, TurnEnd};
use crate::ui::markdown::MarkdownStream;
use crate::ui::spinner::Spinner;
use crate::ui::term::{self, for_terminal, LineGate};

pub struct HumanSink {
    /// stdout is a terminal: render Markdown.
    pub render: bool,
    /// stderr is a terminal: spinner and colours.
    pub progress: bool,
    /// Colours and styles at all (off with `NO_COLOR`; layout stays).
    pub colour: bool,
    pub verbose: bool,
    gate: LineGate,
    md: MarkdownStream,
    spinner: Option<Spinner>,
    streamed: bool,
    ended_with_newline: bool,
    stdout: Box<dyn Write + Send>,
    stderr: Box<dyn Write + Send>,
}

impl HumanSink {
    pub fn new(render: bool, progress: bool, verbose: bool) -> Self {
        Self::with_writers(
            render,
            progress,
            verbose,
            Box::new(std::io::stdout()),
            Box::new(std::io::stderr()),
        )
    }

    /// The sink writing to the given streams (tests capture what a user would see).
    pub fn with_writers(
        render: bool,
        progress: bool,
        verbose: bool,
        stdout: Box<dyn Write + Send>,
        stderr: Box<dyn Write + Send>,
    ) -> Self {
        Self {
            render,
            progress,
            colour: term::colour(true),
            verbose,
            gate: LineGate::default(),
            md: MarkdownStream::default(),
            spinner: None,
            streamed: false,
            ended_with_newline: true,
            stdout,
            stderr,
        }
    }

    fn spin(&mut self, msg: &str) {
        self.stop_spin();
        if self.progress {
            let msg = term::sanitize(msg).into_owned();
            self.spinner = Some(Spinner::start(msg, self.colour));
        }
    }

    fn stop_spin(&mut self) {
        if let Some(s) = self.spinner.take() {
            s.stop();
        }
    }

    fn out(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        let text = self.coloured(text);
        let _ = self.stdout.write_all(text.as_bytes());
        let _ = self.stdout.flush();
        self.ended_with_newline = text.ends_with('\n');
    }

    /// Whole, cleaned lines of the answer: styled on a terminal, plain otherwise.
    fn answer_lines(&mut self, lines: Vec<String>) {
        if lines.is_empty() {
            return;
        }
        let mut text = String::new();
        for line in lines {
            if self.render {
                text.push_str(&self.md.line(&line));
            } else {
                text.push_str(&line);
            }
            text.push('\n');
        }
        self.out(&text);
    }

    /// The answer's last partial line (and any held block), before a tool line or the end.
    fn flush_answer(&mut self) {
        let rest = self.gate.finish();
        self.answer_lines(rest);
    }

    /// `text` as it may be written: without kai's styles when colours are off.
    fn coloured<'t>(&self, text: &'t str) -> std::borrow::Cow<'t, str> {
        if self.colour {
            text.into()
        } else {
            term::without_colours(text).into()
        }
    }

    fn err_line(&mut self, line: &str) {
        self.stop_spin();
        let line = self.coloured(line);
        let _ = writeln!(self.stderr, "{line}");
        let _ = self.stderr.flush();
    }

    pub fn event(&mut self, e: &Event) {
        match e {
            Event::TurnStarted => self.spin("thinking…"),
            Event::TextDelta { text } => {
                self.stop_spin();
                self.streamed = true;
                let lines = self.gate.push(text);
                self.answer_lines(lines);
            }
            Event::ToolStarted {
                summary,
                pregathered,
                ..
            } => {
                self.flush_answer();
                if self.streamed && !self.ended_with_newline {
                    self.out("\n");
                }
                // The summary holds model-chosen names and arguments.
                let summary = for_terminal(summary);
                let arrow = if *pregathered { "·" } else { "→" };
                let line = if self.progress {
                    format!("\x1b[2m{arrow} {summary}\x1b[0m")
                } else {
                    format!("{arrow} {summary}")
                };
                self.err_line(&line);
                self.spin(&format!(
                    "running {}",
                    summary.split_whitespace().next().unwrap_or("tool")
                ));
            }
            Event::ToolFinished {
                error,
                duration_ms,
                output_bytes,
                name,
                ..
            } => {
                self.stop_spin();
                if let Some(err) = error {
                    let err = for_terminal(err);
                    let first = err.lines().next().unwrap_or("");
                    let name = term::sanitize(name);
                    self.err_line(&format!("  ✗ {name}: {first}"));
                } else if self.verbose {
                    self.err_line(&format!(
                        "  ✓ {} {} in {duration_ms} ms",
                        term::sanitize(name),
                        crate::ui::human_bytes(*output_bytes)
                    ));
                }
                self.spin("thinking…");
            }
            Event::ApprovalRequested(_) => self.stop_spin(),
            Event::Notice { message } => {
                let m = for_terminal(message);
                self.err_line(&format!("kai: {m}"));
            }
            Event::Usage { .. } => {}
            Event::Error { message, .. } => {
                let m = for_terminal(message);
                self.err_line(&format!("kai: error: {m}"));
            }
            Event::TurnDone { end, answer, .. } => {
                self.stop_spin();
                self.flush_answer();
                if !self.streamed && !answer.is_empty() {
                    // The model sent the answer without streaming deltas (or max-steps text).
                    self.md = MarkdownStream::default();
                    let mut lines = self.gate.push(answer);
                    lines.extend(self.gate.finish());
                    self.answer_lines(lines);
                }
                if !self.ended_with_newline {
                    self.out("\n");
                }
                if *end == TurnEnd::Interrupted {
                    self.err_line("kai: interrupted");
                }
                self.streamed = false;
                self.md = MarkdownStream::default();
            }
        }
    }

    pub fn finish(&mut self) {
        self.stop_spin();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use kai_test_support::SharedBuf as Buf;

    /// Feed `events` to a sink; (stdout, stderr).
    fn run(render: bool, events: &[Event]) -> (String, String) {
        let (out, err) = (Buf::default(), Buf::default());
        let mut sink = HumanSink::with_writers(
            render,
            false,
            true,
            Box::new(out.clone()),
            Box::new(err.clone()),
        );
        for e in events {
            sink.event(e);
        }
        sink.finish();
        (out.text(), err.text())
    }

    fn delta(t: &str) -> Event {
        Event::TextDelta { text: t.into() }
    }

    fn done(answer: &str) -> Event {
        Event::TurnDone {
            end: TurnEnd::Answered,
            answer: answer.into(),
            usage: Default::default(),
            steps: 1,
        }
    }

    const TOKEN: &str = "ghp_0123456789abcdefghijklmnopqrstuvwxyz";

    use crate::ui::term::without_colours as strip_sgr;

    #[test]
    fn streamed_answer_is_scrubbed_and_sanitised_in_both_modes() {
        let events = [
            delta("**Cause:** the log says \x1b]0;pw"),
            delta("ned\x07 and \x1b[2J, token gh"),
            delta(&TOKEN[2..20]),
            delta(&format!("{}\nbare\rover\u{9b}31m", &TOKEN[20..])),
            done("ignored: streamed"),
        ];
        for render in [true, false] {
            let (out, _) = run(render, &events);
            let visible = strip_sgr(&out);
            assert!(!visible.contains('\x1b'), "render={render}: {out:?}");
            assert!(!out.contains('\u{9b}') && !out.contains('\r'), "{out:?}");
            assert!(visible.contains("^[]0;pwned^G and ^[[2J"), "{visible:?}");
            assert!(visible.contains("bare^Mover\\u{9b}31m\n"), "{visible:?}");
            assert!(!out.contains("0123456789abcdefghij"), "{out:?}");
            assert!(out.contains("[REDACTED"), "{out:?}");
        }
        // kai's own styling still applies on a terminal, around the visible form.
        let (out, _) = run(true, &events);
        assert!(
            out.starts_with("\x1b[1mCause:\x1b[0m the log says ^[]0;pwned^G"),
            "{out:?}"
        );
        let (out, _) = run(false, &events);
        assert!(
            out.starts_with("**Cause:** the log says ^[]0;pwned^G"),
            "{out:?}"
        );
    }

    #[test]
    fn an_unstreamed_answer_is_cleaned_too() {
        for render in [true, false] {
            let (out, _) = run(render, &[done(&format!("ok \x1b]2;t\x07 {TOKEN}"))]);
            assert!(!out.contains('\x1b') || render, "{out:?}");
            assert!(strip_sgr(&out).contains("ok ^[]2;t^G "), "{out:?}");
            assert!(!out.contains(&TOKEN[4..]), "{out:?}");
        }
    }

    #[test]
    fn tool_lines_notices_and_errors_are_cleaned() {
        let (out, err) = run(
            false,
            &[
                delta("checking"),
                Event::ToolStarted {
                    call_id: "c1".into(),
                    name: "get_logs".into(),
                    summary: "get_logs web-\x1b[2J\x1b]0;pwned\x07".into(),
                    arguments: serde_json::json!({}),
                    pregathered: false,
                },
                Event::ToolFinished {
                    call_id: "c1".into(),
                    name: "get_logs".into(),
                    duration_ms: 3,
                    output_bytes: 0,
                    error: Some(format!("pod \"x\x1b[H\" not found; {TOKEN}\nsecond")),
                },
                Event::Notice {
                    message: "note \x1bP+q\x1b\\".into(),
                },
                Event::Error {
                    message: format!("bad \u{9b}2J password={TOKEN}"),
                    exit_code: 1,
                },
                done(""),
            ],
        );
        assert_eq!(out, "checking\n");
        assert!(!err.contains('\x1b') && !err.contains('\u{9b}'), "{err:?}");
        assert!(err.contains("→ get_logs web-^[[2J^[]0;pwned^G"), "{err}");
        assert!(err.contains("✗ get_logs: pod \"x^[[H\" not found"), "{err}");
        assert!(!err.contains("second"), "first line only: {err}");
        assert!(err.contains("kai: note ^[P+q^[\\"), "{err}");
        assert!(
            err.contains("kai: error: bad \\u{9b}2J password=[REDACTED"),
            "{err}"
        );
        assert!(!err.contains(&TOKEN[4..]), "{err}");
    }
}
