//! The one egress for untrusted text on a terminal.
//!
//! Container logs, object fields, event messages and model text are written by whoever
//! controls the cluster or the model. Raw, their escape sequences would drive the user's
//! terminal: retitle the window (`ESC ] 0 ; … BEL`), clear the screen, move the cursor to
//! overwrite kai's own lines (the approval prompt among them), or, on some terminals,
//! answer back into the input. [`sanitize`] makes every such character *visible* instead
//! (so an operator still sees that something odd was there), and [`for_terminal`] also
//! scrubs credentials first. kai's own colours are added *after* this, by the renderers.

use std::io::Write;

// The sanitiser itself is pure text and lives with the other egress functions, so the
// layers below the front ends (the analyze tool's report) render exactly the same way.
pub use kai_text::egress::{for_terminal, sanitize};

/// Streamed text (the model's answer arrives in deltas) made safe a whole line at a
/// time: a credential split across two deltas is whole by the time it is scrubbed. A
/// `-----BEGIN …` line starts a block that is held until its `-----END …` line (or the
/// end of the text), so a private key spread over many lines is scrubbed as one.
#[derive(Debug, Default)]
pub struct LineGate {
    /// Text not yet released: a partial line, or an open BEGIN block and what follows.
    buf: String,
    /// Bytes of `buf` already seen to be whole lines inside an open block.
    scanned: usize,
    in_block: bool,
}

impl LineGate {
    /// Feed a delta; returns the cleaned lines (without their `\n`) it completed.
    pub fn push(&mut self, delta: &str) -> Vec<String> {
        self.buf.push_str(delta);
        let mut out = Vec::new();
        while let Some(rel) = self.buf[self.scanned..].find('\n') {
            let end = self.scanned + rel;
            let line = &self.buf[self.scanned..end];
            if self.in_block {
                if line.contains("-----END ") {
                    self.in_block = false;
                    self.release(end, &mut out);
                } else {
                    self.scanned = end + 1;
                }
            } else if line.contains("-----BEGIN ") && !line.contains("-----END ") {
                // Hold everything from here; earlier lines were already released.
                self.in_block = true;
                self.scanned = end + 1;
            } else {
                self.release(end, &mut out);
            }
        }
        out
    }

    /// The rest (a last line without `\n`, or a block never closed), cleaned.
    pub fn finish(&mut self) -> Vec<String> {
        self.in_block = false;
        self.scanned = 0;
        if self.buf.is_empty() {
            return Vec::new();
        }
        let rest = std::mem::take(&mut self.buf);
        let rest = rest.strip_suffix('\n').unwrap_or(&rest);
        for_terminal(rest).split('\n').map(String::from).collect()
    }

    /// Release `buf[..end]` (ending just before a `\n`) as cleaned lines.
    fn release(&mut self, end: usize, out: &mut Vec<String>) {
        let text: String = self.buf.drain(..=end).collect();
        self.scanned = 0;
        let text = text.strip_suffix('\n').unwrap_or(&text);
        out.extend(for_terminal(text).split('\n').map(String::from));
    }
}

/// A writer that passes everything through [`for_terminal`] a line at a time, for
/// modules that write a report to a `dyn Write` (`kai history`). A last line without a
/// newline is written on [`Write::flush`] and on drop.
pub struct TerminalWriter<W: Write> {
    inner: W,
    buf: Vec<u8>,
}

impl<W: Write> TerminalWriter<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            buf: Vec::new(),
        }
    }

    fn write_clean(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let text = String::from_utf8_lossy(bytes);
        self.inner.write_all(for_terminal(&text).as_bytes())
    }
}

impl<W: Write> Write for TerminalWriter<W> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        while let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=pos).collect();
            self.write_clean(&line)?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            let rest = std::mem::take(&mut self.buf);
            self.write_clean(&rest)?;
        }
        self.inner.flush()
    }
}

impl<W: Write> Drop for TerminalWriter<W> {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

/// Whether kai may colour a stream that is a terminal: not when `NO_COLOR` is set to
/// anything but the empty string (<https://no-color.org>).
pub fn colour(stream_is_terminal: bool) -> bool {
    stream_is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// `s` without kai's own colour codes (`ESC [ digits ; m`): for `NO_COLOR`, and so tests
/// can check that no other escape remains. (Cluster text never holds a real escape by
/// then: [`for_terminal`] made every one visible.)
pub(crate) fn without_colours(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("\x1b[") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let params = after
            .find(|c: char| !(c.is_ascii_digit() || c == ';'))
            .unwrap_or(after.len());
        if after[params..].starts_with('m') {
            rest = &after[params + 1..];
        } else {
            out.push_str(&rest[i..i + 2]);
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    #[test]
    fn colour_stripping_keeps_other_escapes() {
        assert_eq!(
            without_colours("\x1b[1;31mred\x1b[0m \x1b[2J \x1b]0;t\x07"),
            "red \x1b[2J \x1b]0;t\x07"
        );
    }

    #[test]
    fn plain_text_is_borrowed_untouched() {
        let s = "web-7d4b · CrashLoopBackOff\n\tnext: “ok” ✓ 日本";
        assert!(matches!(sanitize(s), Cow::Borrowed(x) if x == s));
    }

    #[test]
    fn escape_sequences_become_visible() {
        let cases = [
            // OSC: set the window title.
            ("\x1b]0;pwned\x07after", "^[]0;pwned^Gafter"),
            // CSI: clear the screen, move the cursor home, colour.
            ("\x1b[2J\x1b[H\x1b[31mred", "^[[2J^[[H^[[31mred"),
            // DCS ... ST.
            ("\x1bPq#0;2;0;0;0\x1b\\", "^[Pq#0;2;0;0;0^[\\"),
            // C1: a one-byte CSI, and NEL.
            ("a\u{9b}2Jb\u{85}c", "a\\u{9b}2Jb\\u{85}c"),
            // A bare CR overwrites the line; backspaces erase what was shown.
            ("approved\rdenied", "approved^Mdenied"),
            ("yes\x08\x08\x08no", "yes^H^H^Hno"),
            ("nul\0del\x7f", "nul^@del^?"),
            // Bidi override: text shown reversed.
            ("file\u{202e}txt.exe", "file\\u{202e}txt.exe"),
            ("\u{2066}x\u{2069}", "\\u{2066}x\\u{2069}"),
        ];
        for (raw, want) in cases {
            let got = sanitize(raw);
            assert_eq!(got, want, "{raw:?}");
            assert!(
                !got.chars()
                    .any(|c| c.is_control() && c != '\n' && c != '\t'),
                "{got:?}"
            );
        }
    }

    #[test]
    fn newlines_tabs_and_crlf_stay_harmless() {
        assert_eq!(sanitize("a\n\tb"), "a\n\tb");
        assert_eq!(sanitize("line one\r\nline two\r\n"), "line one\nline two\n");
        assert_eq!(sanitize("x\r"), "x^M");
        assert_eq!(sanitize("\r\r\n"), "^M\n");
    }

    #[test]
    fn every_c0_and_c1_control_is_neutralised() {
        for b in (0u32..0x20).chain(0x7f..0xa0) {
            let c = char::from_u32(b).unwrap();
            if c == '\n' || c == '\t' {
                continue;
            }
            let s = sanitize(&format!("<{c}>")).into_owned();
            assert!(!s.contains(c), "{b:#x}: {s:?}");
            assert!(s.starts_with('<') && s.ends_with('>'), "{s:?}");
        }
    }

    #[test]
    fn for_terminal_scrubs_then_sanitizes() {
        let t = "\x1b]0;x\x07 Authorization: Bearer abcdefghijklmnopqrstuvwxyz0123\n";
        let out = for_terminal(t);
        assert!(!out.contains('\x1b'), "{out}");
        assert!(out.contains("^[]0;x^G"), "{out}");
        assert!(!out.contains("abcdefghijklmnopqrstuvwxyz0123"), "{out}");
        assert!(out.contains("[REDACTED"), "{out}");
        assert_eq!(for_terminal("nothing to see"), "nothing to see");
    }

    #[test]
    fn gate_releases_whole_lines_only() {
        let mut g = LineGate::default();
        assert!(g.push("the pod ").is_empty());
        assert_eq!(g.push("crashed\nnext "), vec!["the pod crashed"]);
        assert_eq!(g.push("line\n\nlast"), vec!["next line", ""]);
        assert_eq!(g.finish(), vec!["last"]);
        assert!(g.finish().is_empty());
    }

    #[test]
    fn gate_catches_a_credential_split_across_deltas() {
        let token = "ghp_abcdefghijklmnopqrstuvwxyz0123456789";
        let text = format!("use token {token} here\n");
        for split in 1..text.len() {
            if !text.is_char_boundary(split) {
                continue;
            }
            let mut g = LineGate::default();
            let mut lines = g.push(&text[..split]);
            lines.extend(g.push(&text[split..]));
            lines.extend(g.finish());
            let all = lines.join("\n");
            assert!(!all.contains("abcdefghijklmnop"), "split {split}: {all}");
            assert!(all.contains("[REDACTED"), "split {split}: {all}");
        }
    }

    #[test]
    fn gate_catches_an_escape_split_across_deltas() {
        let mut g = LineGate::default();
        let mut lines = g.push("title \x1b");
        lines.extend(g.push("]0;pwned\x07 done\n"));
        assert_eq!(lines, vec!["title ^[]0;pwned^G done"]);
    }

    #[test]
    fn gate_holds_a_private_key_block_until_its_end() {
        let key = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAsecretbody1\nMIIEsecretbody2\n-----END RSA PRIVATE KEY-----\n";
        let mut g = LineGate::default();
        let mut lines = g.push("Here it is:\n");
        assert_eq!(lines, vec!["Here it is:"]);
        // Fed a few bytes at a time: nothing of the block comes out before its END line.
        for chunk in key.as_bytes().chunks(7) {
            let got = g.push(std::str::from_utf8(chunk).unwrap());
            if !got.is_empty() {
                assert!(
                    got.iter().any(|l| l.contains("-----END")),
                    "released early: {got:?}"
                );
            }
            lines.extend(got);
        }
        lines.extend(g.push("after\n"));
        lines.extend(g.finish());
        let all = lines.join("\n");
        assert!(!all.contains("secretbody"), "{all}");
        assert!(all.contains("[REDACTED:private-key]"), "{all}");
        assert!(all.ends_with("after"), "{all}");

        // A block never closed is still scrubbed when the stream ends.
        let mut g = LineGate::default();
        let mut lines = g.push("-----BEGIN PRIVATE KEY-----\nMIIsecretbody3\n");
        assert!(lines.is_empty());
        lines.extend(g.finish());
        let all = lines.join("\n");
        assert!(!all.contains("secretbody"), "{all}");
    }

    #[test]
    fn writer_cleans_each_line_and_the_rest_on_flush() {
        let mut out = Vec::new();
        {
            let mut w = TerminalWriter::new(&mut out);
            write!(w, "id  \x1b[2Jobj").unwrap();
            writeln!(w, "ect password=hunter2x").unwrap();
            write!(w, "tail\x07").unwrap();
        }
        let s = String::from_utf8(out).unwrap();
        assert_eq!(s, "id  ^[[2Jobject password=[REDACTED]\ntail^G");
    }
}
