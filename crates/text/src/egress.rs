//! Egress: the last stop for text leaving kai.
//!
//! [`for_model`] is what every message to the model passes just before the request is
//! built (see `Agent::request_messages`): cluster content is hostile, and a log line that
//! carries a terminal escape sequence or a credential must reach neither the model nor,
//! through the model's answer, the user's terminal. [`for_terminal`] is the same stop for
//! text on its way to a terminal.

use std::borrow::Cow;

/// Text as the model may see it: terminal control sequences removed, then credentials
/// scrubbed. Controls go first so an escape sequence planted inside a secret
/// (`pass\x1b[0mword=...`) cannot split it past the scrubber's patterns.
pub fn for_model(text: &str) -> String {
    crate::redact::scrub(&strip_controls(text))
}

const ESC: char = '\u{1b}';
const BEL: char = '\u{07}';
/// The 8-bit String Terminator (C1 `ST`).
const ST: char = '\u{9c}';

/// Removes terminal control: ESC sequences (CSI `ESC [ ... m`, OSC `ESC ] ... BEL` or
/// `ESC \`, DCS/SOS/PM/APC strings, two-byte escapes such as `ESC c`), their 8-bit C1
/// forms, and every other C0/C1 control character and DEL, except `\n` and `\t`.
///
/// Terminal strings (OSC, DCS, ...) end at BEL or ST as terminals end them, and also at a
/// newline: a truncated or unterminated sequence must not swallow the rest of a log, and
/// once its introducer is gone what is left is inert text.
pub fn strip_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_stripped_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ESC => match chars.peek().copied() {
                Some('[') => {
                    chars.next();
                    skip_csi(&mut chars);
                }
                Some(']' | 'P' | 'X' | '^' | '_') => {
                    chars.next();
                    skip_string(&mut chars);
                }
                Some(next) if ('\u{20}'..='\u{7e}').contains(&next) => {
                    // `ESC` + intermediates (0x20-0x2f) + one final byte (0x30-0x7e):
                    // charset selection `ESC ( B`, `ESC 7`, `ESC c` (full reset), ...
                    while let Some(&i) = chars.peek() {
                        if ('\u{20}'..='\u{2f}').contains(&i) {
                            chars.next();
                        } else {
                            break;
                        }
                    }
                    if chars
                        .peek()
                        .is_some_and(|f| ('\u{30}'..='\u{7e}').contains(f))
                    {
                        chars.next();
                    }
                }
                // A lone ESC (end of text, or before a control or non-ASCII): drop it.
                _ => {}
            },
            // 8-bit CSI.
            '\u{9b}' => skip_csi(&mut chars),
            // 8-bit DCS, SOS, OSC, PM, APC.
            '\u{90}' | '\u{98}' | '\u{9d}' | '\u{9e}' | '\u{9f}' => skip_string(&mut chars),
            c if is_stripped_control(c) => {}
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// C0 controls other than `\n` and `\t`, DEL, and the C1 block.
fn is_stripped_control(c: char) -> bool {
    (c.is_ascii_control() && c != '\n' && c != '\t') || ('\u{80}'..='\u{9f}').contains(&c)
}

/// The rest of a CSI sequence: parameters and intermediates (0x20-0x3f), then one final
/// byte (0x40-0x7e). Anything else ends it early (and is kept, unless it is a control).
fn skip_csi(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while let Some(&c) = chars.peek() {
        if ('\u{20}'..='\u{3f}').contains(&c) {
            chars.next();
        } else {
            if ('\u{40}'..='\u{7e}').contains(&c) {
                chars.next();
            }
            return;
        }
    }
}

/// The rest of an OSC/DCS/SOS/PM/APC string, up to and including BEL, ST or `ESC \`;
/// a newline ends it too and is kept.
fn skip_string(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while let Some(&c) = chars.peek() {
        match c {
            BEL | ST => {
                chars.next();
                return;
            }
            '\n' => return,
            ESC => {
                chars.next();
                if chars.peek() == Some(&'\\') {
                    chars.next();
                }
                return;
            }
            _ => {
                chars.next();
            }
        }
    }
}

// The egress toward a terminal, the counterpart of `for_model`: there control and escape
// characters become *visible* rather than removed, so an operator still sees that
// something odd was there (see the front end's `ui::term`).

/// Make control and escape characters visible and inert: ESC becomes `^[`, other C0
/// controls caret notation (`^G`, `^H`, `^M` for a bare carriage return), DEL `^?`, C1
/// controls (`\u{9b}` is a one-byte CSI on some terminals) and the bidirectional
/// overrides that can reorder what is shown (`\u{202e}`) a `\u{…}` escape. Newlines and
/// tabs stay; a CR directly before a newline (Windows line endings) is dropped, since it
/// overwrites nothing.
pub fn sanitize(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' if chars.peek() == Some(&'\n') => {}
            c if !needs_escape(c) => out.push(c),
            '\u{7f}' => out.push_str("^?"),
            c if (c as u32) < 0x20 => {
                out.push('^');
                // 0x00..0x1f map to '@', 'A'..'Z', '[', '\\', ']', '^', '_'.
                out.push(char::from(c as u8 + 0x40));
            }
            c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    match c {
        '\n' | '\t' => false,
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' => true,
        // Bidi embeddings, overrides and isolates ("Trojan Source").
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => true,
        _ => false,
    }
}

/// Credentials scrubbed ([`crate::redact::scrub`]), then [`sanitize`]d: what every piece
/// of untrusted text goes through before it reaches stdout or stderr in text form.
/// Scrubbing comes first so its patterns see the text as it was written.
pub fn for_terminal(text: &str) -> String {
    let scrubbed = crate::redact::scrub(text);
    match sanitize(&scrubbed) {
        Cow::Borrowed(_) => scrubbed,
        Cow::Owned(s) => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        let t = "line one\n\tindented ✓ ünïcode\n";
        assert!(matches!(strip_controls(t), Cow::Borrowed(s) if s == t));
    }

    #[test]
    fn csi_colour_and_cursor_sequences_are_removed() {
        assert_eq!(
            strip_controls("\x1b[31merror\x1b[0m: \x1b[1;32mok\x1b[m"),
            "error: ok"
        );
        assert_eq!(strip_controls("a\x1b[2J\x1b[Hb\x1b[?25lc"), "abc");
        assert_eq!(strip_controls("x\u{9b}31my"), "xy", "8-bit CSI");
    }

    #[test]
    fn osc_title_and_hyperlinks_are_removed_with_either_terminator() {
        assert_eq!(strip_controls("\x1b]0;pwned\x07after"), "after");
        assert_eq!(strip_controls("\x1b]0;pwned\x1b\\after"), "after");
        assert_eq!(
            strip_controls("\x1b]8;;http://evil.example/\x1b\\click\x1b]8;;\x1b\\"),
            "click"
        );
        assert_eq!(strip_controls("\u{9d}0;pwned\u{9c}after"), "after");
    }

    #[test]
    fn dcs_pm_apc_strings_are_removed() {
        for s in [
            "a\x1bPq#0;2;0;0;0\x1b\\b",
            "a\x1b^privacy\x1b\\b",
            "a\x1b_apc\x07b",
            "a\u{90}dcs\u{9c}b",
        ] {
            assert_eq!(strip_controls(s), "ab", "{s:?}");
        }
    }

    #[test]
    fn an_unterminated_string_stops_at_the_newline() {
        assert_eq!(
            strip_controls("start\x1b]0;title never ends\nnext line\n"),
            "start\nnext line\n"
        );
        assert_eq!(strip_controls("cut\x1b]0;half"), "cut");
    }

    #[test]
    fn two_byte_escapes_and_lone_esc_are_removed() {
        assert_eq!(strip_controls("a\x1bcb"), "ab", "full reset");
        assert_eq!(strip_controls("a\x1b(Bb"), "ab", "charset");
        assert_eq!(strip_controls("a\x1b7b\x1b8"), "ab");
        assert_eq!(strip_controls("end\x1b"), "end");
        assert_eq!(strip_controls("\x1b\x1b[31mx"), "x");
    }

    #[test]
    fn other_controls_go_newline_and_tab_stay() {
        assert_eq!(
            strip_controls("a\rb\x08c\x00d\x7fe\u{85}f\u{9c}g\n\th"),
            "abcdefg\n\th"
        );
        // Printable non-ASCII right after the C1 block is untouched.
        assert_eq!(strip_controls("\u{a0}é"), "\u{a0}é");
    }

    #[test]
    fn for_model_strips_then_scrubs() {
        let out = for_model("\x1b]0;pwned\x07log: password=hunter2xyz done\x1b[0m");
        assert!(!out.contains('\x1b') && !out.contains('\x07'), "{out:?}");
        assert!(!out.contains("pwned"), "{out}");
        assert!(!out.contains("hunter2xyz"), "{out}");
        assert!(out.contains("log: password="), "{out}");
        // A colour code inside the key no longer hides the secret from the scrubber.
        let out = for_model("pass\x1b[1mword=hunter2xyz");
        assert!(!out.contains("hunter2xyz"), "{out}");
    }
}
