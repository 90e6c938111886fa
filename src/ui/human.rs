//! The human sink: streamed (rendered, on a TTY) answer on stdout; spinner, tool lines,
//! notices and usage on stderr.

use std::io::Write;

use crate::agent::protocol::{Event, TurnEnd};
use crate::ui::markdown::MarkdownStream;
use crate::ui::spinner::Spinner;

pub struct HumanSink {
    /// stdout is a terminal: render Markdown.
    pub render: bool,
    /// stderr is a terminal: spinner and colours.
    pub progress: bool,
    pub verbose: bool,
    md: MarkdownStream,
    spinner: Option<Spinner>,
    streamed: bool,
    ended_with_newline: bool,
}

impl HumanSink {
    pub fn new(render: bool, progress: bool, verbose: bool) -> Self {
        Self {
            render,
            progress,
            verbose,
            md: MarkdownStream::default(),
            spinner: None,
            streamed: false,
            ended_with_newline: true,
        }
    }

    fn spin(&mut self, msg: &str) {
        self.stop_spin();
        if self.progress {
            self.spinner = Some(Spinner::start(msg.to_string()));
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
        let mut o = std::io::stdout().lock();
        let _ = o.write_all(text.as_bytes());
        let _ = o.flush();
        self.ended_with_newline = text.ends_with('\n');
    }

    fn err_line(&mut self, line: &str) {
        self.stop_spin();
        eprintln!("{line}");
    }

    pub fn event(&mut self, e: &Event) {
        match e {
            Event::TurnStarted => self.spin("thinking…"),
            Event::TextDelta { text } => {
                self.stop_spin();
                self.streamed = true;
                let styled = if self.render {
                    self.md.push(text)
                } else {
                    text.clone()
                };
                self.out(&styled);
            }
            Event::ToolStarted {
                summary,
                pregathered,
                ..
            } => {
                let finished = if self.render {
                    self.md.finish()
                } else {
                    String::new()
                };
                self.out(&finished);
                if self.streamed && !self.ended_with_newline {
                    self.out("\n");
                }
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
                    let first = err.lines().next().unwrap_or("");
                    self.err_line(&format!("  ✗ {name}: {first}"));
                } else if self.verbose {
                    self.err_line(&format!(
                        "  ✓ {name} {} in {duration_ms} ms",
                        crate::ui::human_bytes(*output_bytes)
                    ));
                }
                self.spin("thinking…");
            }
            Event::ApprovalRequested(_) => self.stop_spin(),
            Event::Notice { message } => {
                let m = message.clone();
                self.err_line(&format!("kai: {m}"));
            }
            Event::Usage { .. } => {}
            Event::Error { message, .. } => {
                let m = message.clone();
                self.err_line(&format!("kai: error: {m}"));
            }
            Event::TurnDone { end, answer, .. } => {
                self.stop_spin();
                let rest = if self.render {
                    self.md.finish()
                } else {
                    String::new()
                };
                self.out(&rest);
                if !self.streamed && !answer.is_empty() {
                    // The model sent the answer without streaming deltas (or max-steps text).
                    let text = if self.render {
                        let mut m = MarkdownStream::default();
                        let mut s = m.push(answer);
                        s.push_str(&m.finish());
                        s
                    } else {
                        answer.clone()
                    };
                    self.out(&text);
                }
                if !self.ended_with_newline {
                    self.out("\n");
                }
                if *end == TurnEnd::Interrupted {
                    self.err_line("kai: interrupted");
                }
                self.streamed = false;
            }
        }
    }

    pub fn finish(&mut self) {
        self.stop_spin();
    }
}
