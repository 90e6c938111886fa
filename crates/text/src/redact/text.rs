//! The pattern rules of [`super::scrub`]: credentials recognised by their shape or by the
//! key, flag or tag in front of them.
//!
//! Every rule is one linear-time pass (the `regex` crate has no backtracking); the
//! key/value and flag rules find the *key* with a regex and then walk the value by hand,
//! because where a value ends depends on how it was opened (a quote, an escaped quote
//! inside a JSON string, a YAML block scalar, nothing).
//!
//! Where an unquoted value ends: at whitespace, a quote or backtick, or an escape
//! sequence of an enclosing string (`\"`, `\n`). `,` `;` `&` end it only when what
//! follows is whitespace, a quote, the end of the text or the next `key=`/`key:` (so
//! `password=ab&cd1234` is withheld whole, `password=x&user=app` keeps `user=app`); inside
//! a URL query (`?`/`&` before the key) `&` and `#` always end it, since an unencoded `&`
//! cannot be part of a query value. Closing brackets end it only when followed by
//! whitespace, punctuation or the end. The cost of this choice: a password containing
//! `&word=` or `,word:` loses its tail to the next pair; everything else errs towards
//! withholding too much.

use std::sync::LazyLock;

use regex::{Captures, Regex};

use super::names::{self, Verdict};
use super::MARK;

pub(super) struct Patterns {
    pem: Regex,
    putty: Regex,
    jwt: Regex,
    vendor: Regex,
    aws_id: Regex,
    auth_header: Regex,
    cookie: Regex,
    bearer: Regex,
    url_creds: Regex,
    cli: Regex,
    curl_user: Regex,
    conn_string: Regex,
    xml: Regex,
    flag: Regex,
    key_value: Regex,
    reference: Regex,
}

/// Words that put a key, flag or tag in the running; [`names::text_key`] decides.
const KEYWORDS: &str = "pass|pwd|secret|token|key|auth|credential|sig";

// Compiled once; a pattern that fails to compile is a defect caught by the tests, and
// `scrub` then falls back to withholding the text entirely rather than leaking it.
pub(super) static PATTERNS: LazyLock<Option<Patterns>> = LazyLock::new(|| {
    build()
        .map_err(|e| tracing::error!("redaction patterns do not compile: {e}"))
        .ok()
});

pub(super) fn build() -> Result<Patterns, regex::Error> {
    Ok(Patterns {
        pem: Regex::new(concat!(
            r"-{4,5} ?BEGIN ((?:[A-Z0-9]+ )*(?:PRIVATE|SECRET) KEY(?: BLOCK)?) ?-{4,5}",
            r"[\s\S]*?",
            r"(?:-{4,5} ?END (?:[A-Z0-9]+ )*(?:PRIVATE|SECRET) KEY(?: BLOCK)? ?-{4,5}|\z)",
        ))?,
        putty: Regex::new(
            r"(?m)^(Private-Lines:[ \t]*\d+[ \t]*\r?\n)(?:[A-Za-z0-9+/=]+[ \t]*(?:\r?\n|\z))+",
        )?,
        jwt: Regex::new(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")?,
        vendor: Regex::new(concat!(
            r"\b(?:",
            r"gh[pousr]_[A-Za-z0-9]{20,}",
            r"|github_pat_[A-Za-z0-9_]{20,}",
            r"|glpat-[A-Za-z0-9_-]{20,}",
            r"|xox[abposr]-[A-Za-z0-9-]{10,}",
            r"|sk-(?:proj-|ant-|live-|test-)?[A-Za-z0-9_-]{20,}",
            r"|[sr]k_(?:live|test)_[A-Za-z0-9]{16,}",
            r"|AIza[0-9A-Za-z_-]{35}",
            r")"
        ))?,
        aws_id: Regex::new(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b")?,
        auth_header: Regex::new(
            r#"(?i)\b((?:proxy-)?authorization\\*["']?[ \t]*[:=][ \t]*\\*["']?\[?(?:(?:bearer|basic|token|digest|negotiate)[ \t]+)?)([^\s"',;\[\\]+)"#,
        )?,
        cookie: Regex::new(
            r#"(?i)\b((?:set-)?cookie\\*["']?[ \t]*:[ \t]*\[?\\*["']?)([^\r\n"']*=[^\r\n"']*)"#,
        )?,
        bearer: Regex::new(r"(?i)\b(bearer[ \t]+)([A-Za-z0-9._~+/-]+=*)")?,
        url_creds: Regex::new(
            r#"\b([a-zA-Z][a-zA-Z0-9+.-]{1,20}://)([^/\s:@"'<>\\]*):([^\s"'<>]*)"#,
        )?,
        // The MySQL family takes its password attached (`-ps3cr3t`, `-p'…'`; `-p db`
        // prompts and names a database), sshpass after `-p`, redis-cli after `-a`,
        // openssl as `pass:…`, `.netrc` after `password`.
        cli: Regex::new(concat!(
            r#"((?:(?i:\b(?:mysql|mysqldump|mysqladmin|mysqlimport|mysqlcheck|mysqlpump|mysqlsh|mysqlbinlog|mariadb|mariadb-dump|mariadb-admin)\b)[^\r\n;|&]*?[ \t"',]-p"#,
            r#"|(?i:\bsshpass\b)[^\r\n;|&]*?[ \t"',]-p[ \t"',]*"#,
            r#"|(?i:\bredis-cli\b)[^\r\n;|&]*?[ \t"',]-a[ \t"',]+"#,
            r#"|(?:^|[\s"'])-pass(?:in|out)?[ \t"',]+pass:"#,
            r#"|(?i:\bmachine\s+\S+\s+login\s+\S+\s+password[ \t]+)))"#,
            r#"('[^'\r\n]*'|"[^"\r\n]*"|[^\s'"\\,]+)"#,
        ))?,
        curl_user: Regex::new(
            r#"((?:^|[\s"'])(?:-u|--user)[ \t"',=]+['"]?[^\s:'"@]+:)([^\s'"\\]+)"#,
        )?,
        // ADO.NET / ODBC: `…;Password=two words;` and `Pwd={…}`.
        conn_string: Regex::new(
            r#"(?i)(;[ \t]*(?:password|pwd)[ \t]*=[ \t]*)("[^"\r\n]*"|'[^'\r\n]*'|\{[^}\r\n]*\}|[^;"'\r\n]*)"#,
        )?,
        xml: Regex::new(&format!(
            r"(?i)(<([\w.:-]*(?:{KEYWORDS})[\w.:-]*)(?:[ \t][^<>]*)?>)([^<]*)(</)"
        ))?,
        flag: Regex::new(&format!(
            r#"(?im)(?:^|[\s"'\[,(\\])(--?[A-Za-z0-9_.-]*(?:{KEYWORDS}|pass)[A-Za-z0-9_.-]*)"#
        ))?,
        key_value: Regex::new(&format!(
            r#"(?i)([A-Za-z0-9_.-]*(?:{KEYWORDS})[A-Za-z0-9_.-]*)(\\*["']?)[ \t]*([:=])[ \t]*(\\*["'])?"#
        ))?,
        // Values that name where a credential comes from rather than being one.
        reference: Regex::new(concat!(
            r"^(?:\$\{[A-Za-z_][A-Za-z0-9_.]{0,100}\}|\$\([A-Za-z_][A-Za-z0-9_]*\)|\$[A-Z_][A-Z0-9_]*\b",
            r"|%[A-Za-z_][A-Za-z0-9_]*%|\{\{[^}]{1,200}\}\}",
            r"|<(?:from|field|resource|redacted|set|none|nil|unset|empty|hidden)\b[^<>\r\n]{0,200}>)",
        ))?,
    })
}

/// Apply every pattern rule in order; `None` when nothing matched.
pub(super) fn apply(p: &Patterns, text: &str) -> Option<String> {
    let mut out: Option<String> = None;
    let mut run = |f: &dyn Fn(&str) -> Option<String>| {
        let cur = out.as_deref().unwrap_or(text);
        if let Some(s) = f(cur) {
            out = Some(s);
        }
    };
    // Order matters: whole blocks and self-identifying tokens first, so the contextual
    // rules below see `[REDACTED:…]` and leave it alone.
    run(&|t| {
        replace(t, &p.pem, |c| {
            format!(
                "-----BEGIN {}----- [REDACTED:private-key] -----END {}-----",
                &c[1], &c[1]
            )
        })
    });
    run(&|t| {
        replace(t, &p.putty, |c| {
            format!("{}[REDACTED:private-key]\n", &c[1])
        })
    });
    run(&|t| replace(t, &p.jwt, |_| "[REDACTED:jwt]".into()));
    run(&|t| replace(t, &p.vendor, |_| "[REDACTED:token]".into()));
    run(&|t| replace(t, &p.aws_id, |_| "[REDACTED:aws-access-key-id]".into()));
    run(&|t| {
        replace(t, &p.auth_header, |c| {
            // `Authorization: Bearer [REDACTED:jwt]`: the regex backtracks to take the
            // scheme word as the value; the credential is already gone.
            let scheme = ["bearer", "basic", "token", "digest", "negotiate"];
            let keep = scheme.iter().any(|s| c[2].eq_ignore_ascii_case(s))
                || c[2].starts_with("[REDACTED");
            masked_unless(keep, c)
        })
    });
    run(&|t| {
        replace(t, &p.cookie, |c| {
            let (_, tail) = split_trailing_backslashes(&c[2]);
            format!("{}{MARK}{tail}", &c[1])
        })
    });
    run(&|t| {
        replace(t, &p.bearer, |c| {
            masked_unless(!looks_like_credential(&c[2]), c)
        })
    });
    run(&|t| replace(t, &p.url_creds, url_credentials));
    run(&|t| {
        replace(t, &p.cli, |c| {
            let value = &c[2];
            let inner = value.trim_matches(|ch| ch == '\'' || ch == '"');
            if inner.is_empty() || keep_value(Verdict::Yes, "", inner, inner, false) {
                return c[0].to_string();
            }
            let quote = if value.len() > inner.len() {
                &value[..1]
            } else {
                ""
            };
            format!("{}{quote}{MARK}{quote}", &c[1])
        })
    });
    run(&|t| {
        replace(t, &p.curl_user, |c| {
            let user_end = c[1].trim_end_matches(':');
            let user = user_end
                .rsplit(|ch: char| ch.is_whitespace() || "\"',=".contains(ch))
                .next()
                .unwrap_or("");
            // `docker run -u 1000:1000` is a uid:gid.
            let numeric = |s: &str| !s.is_empty() && s.chars().all(|ch| ch.is_ascii_digit());
            let keep = (numeric(user) && numeric(&c[2]))
                || keep_value(Verdict::Yes, "", &c[2], &c[2], false);
            masked_unless(keep, c)
        })
    });
    run(&|t| {
        replace(t, &p.conn_string, |c| {
            let (value, tail) = split_trailing_backslashes(&c[2]);
            let inner = value.trim_matches(|ch| "\"'{}".contains(ch)).trim();
            // `;PWD=/app` in an environment dump is the working directory.
            let verdict = if c[1].to_ascii_lowercase().contains("pwd") {
                Verdict::UnlessPath
            } else {
                Verdict::Yes
            };
            if inner.is_empty() || keep_value(verdict, "password", inner, inner, false) {
                c[0].to_string()
            } else {
                format!("{}{MARK}{tail}", &c[1])
            }
        })
    });
    run(&|t| {
        replace(t, &p.xml, |c| {
            let verdict = names::text_key(&c[2]);
            let value = c[3].trim();
            let hide = match verdict {
                Verdict::No | Verdict::QueryOnly => false,
                v => !value.is_empty() && !keep_value(v, &c[2], value, value, false),
            };
            if hide {
                format!("{}{MARK}{}", &c[1], &c[4])
            } else {
                c[0].to_string()
            }
        })
    });
    run(&|t| flags(p, t));
    run(&|t| key_values(p, t));
    out
}

/// The match as it stands when `keep`, else its key part (group 1) and the mark.
fn masked_unless(keep: bool, c: &Captures) -> String {
    if keep {
        c[0].to_string()
    } else {
        format!("{}{MARK}", &c[1])
    }
}

fn replace(text: &str, re: &Regex, f: impl Fn(&Captures) -> String) -> Option<String> {
    match re.replace_all(text, |c: &Captures| f(c)) {
        std::borrow::Cow::Owned(s) if s != text => Some(s),
        _ => None,
    }
}

/// `abc\` → (`abc`, `\`): backslashes that escape the quote after a value belong to the
/// enclosing string, not to the value.
fn split_trailing_backslashes(s: &str) -> (&str, &str) {
    let t = s.trim_end_matches('\\');
    (t, &s[t.len()..])
}

/// A bearer "token" that is an ordinary word ("bearer authentication") is left alone.
pub(super) fn looks_like_credential(token: &str) -> bool {
    token.len() >= 20 || (token.len() >= 8 && token.chars().any(|c| !c.is_ascii_alphabetic()))
}

/// `scheme://user:password@host`, the user possibly empty (`redis://:pw@redis`). The
/// regex takes the rest of the token; the password runs to the last `@` before any `?`
/// or `#`, so unencoded `@` and `/` in passwords are covered (`postgres://u:p@ss@db`).
/// `host:8080/path@x` is a port and a path, not a password.
fn url_credentials(c: &Captures) -> String {
    let rest = &c[3];
    let limit = rest.find(['?', '#']).unwrap_or(rest.len());
    let Some(at) = rest[..limit].rfind('@') else {
        return c[0].to_string();
    };
    let password = &rest[..at];
    if password.is_empty() && c[2].is_empty() {
        return c[0].to_string();
    }
    if let Some((port, _)) = password.split_once('/') {
        if !port.is_empty() && port.len() <= 5 && port.chars().all(|ch| ch.is_ascii_digit()) {
            return c[0].to_string();
        }
    }
    if password == "***" || password.starts_with("[REDACTED") {
        return c[0].to_string();
    }
    format!("{}{}:***@{}", &c[1], &c[2], &rest[at + 1..])
}

/// Words after a flag that are usage text or prose, not its value.
const FLAG_PROSE: &[&str] = &[
    "string",
    "str",
    "value",
    "text",
    "<value>",
    "<string>",
    "is",
    "are",
    "was",
    "were",
    "must",
    "flag",
    "option",
    "required",
    "not",
    "and",
    "or",
    "the",
    "to",
    "for",
    "with",
    "without",
    "missing",
    "needs",
    "cannot",
    "can",
    "should",
    "will",
    "has",
    "have",
    "argument",
    "parameter",
    "expects",
    "requires",
    "only",
    "also",
    "if",
    "when",
    "of",
    "in",
    "from",
    "instead",
    "option.",
    "flag.",
    "required.",
    "given",
    "set",
    "unset",
    "empty",
    "specified",
];

/// Whether a value found after a credential key is left alone: booleans, placeholders,
/// masks, references (`$(DB_PASSWORD)`, `${VAR}`, `<from secret …>`, `{{ .Values.x }}`),
/// small numbers after "token" (counts and limits), paths after `PWD`, and words after a
/// bare `auth:`/`pass:` that do not look like credentials. `rest` is the text from the
/// value's start (references may run past the scanned value).
fn keep_value(verdict: Verdict, key: &str, value: &str, rest: &str, flag: bool) -> bool {
    let lower = value.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "true"
            | "false"
            | "null"
            | "none"
            | "nil"
            | "~"
            | "yes"
            | "no"
            | "on"
            | "off"
            | "undefined"
            | "redacted"
            | "hidden"
            | "masked"
            | "\"\""
            | "''"
    ) {
        return true;
    }
    // Our own markers, whole (`[REDACTED]`, `[REDACTED:jwt]`).
    if rest.starts_with("[REDACTED") && rest.find(']').is_some_and(|i| i + 1 >= value.len()) {
        return true;
    }
    if value.len() >= 3 && value.chars().all(|c| c == '*' || c == 'x' || c == 'X') {
        return true;
    }
    if let Some(p) = PATTERNS.as_ref() {
        if let Some(m) = p.reference.find(rest) {
            if m.end() >= value.len() {
                return true;
            }
        }
    }
    let digits = !value.is_empty() && value.chars().all(|c| c.is_ascii_digit());
    let words = names::words(key);
    // A key file, not key material: `--tls-key /certs/tls.key`, `ssl_key: /etc/ssl/k.pem`.
    if words.last().is_some_and(|w| w == "key") && looks_like_path(value) {
        return true;
    }
    if digits
        && value.len() < 6
        && words
            .last()
            .is_some_and(|w| w.ends_with("token") || w.ends_with("tokens"))
    {
        return true;
    }
    if flag {
        // Usage text and prose: `--password string`, `--token TOKEN`, `--token is
        // required`.
        // A placeholder is upper case *and* names a credential (`PASSWORD`, `DB_TOKEN`);
        // an upper-case password is still a password.
        if FLAG_PROSE.contains(&lower.as_str())
            || (value.chars().all(|c| c.is_ascii_uppercase() || c == '_')
                && (names::sensitive_name(value) || matches!(value, "VALUE" | "PASS" | "KEY")))
        {
            return true;
        }
    }
    match verdict {
        Verdict::UnlessPath => looks_like_path(value),
        Verdict::IfCredentialLike => {
            !(value.len() >= 8
                && (value.chars().any(|c| !c.is_ascii_alphabetic())
                    || (value.chars().any(|c| c.is_ascii_uppercase())
                        && value.chars().any(|c| c.is_ascii_lowercase()))))
        }
        _ => false,
    }
}

/// A filesystem path rather than key material. Base64 can start with `/` too
/// (`/K7MDENG/bPxR…`), so a path must also look like one: all-lowercase segments, or a
/// well-known directory, or a key/certificate file extension.
fn looks_like_path(value: &str) -> bool {
    let v = value
        .strip_prefix('~')
        .or_else(|| value.strip_prefix('.'))
        .unwrap_or(value);
    if !v.starts_with('/') || value.contains(['+', '=']) {
        return false;
    }
    const DIRS: &[&str] = &[
        "/etc/",
        "/var/",
        "/run/",
        "/secrets/",
        "/certs/",
        "/tmp/",
        "/home/",
        "/opt/",
        "/usr/",
        "/config/",
        "/data/",
        "/mnt/",
        "/app/",
        "/srv/",
        "/root/",
    ];
    const EXTS: &[&str] = &[
        ".pem", ".key", ".crt", ".cer", ".json", ".p12", ".pfx", ".jks", ".der", ".asc", ".gpg",
        ".txt", ".conf", ".yaml", ".yml", ".env",
    ];
    let lower_segments = v.bytes().all(|b| {
        b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'/' | b'.' | b'_' | b'-')
    });
    lower_segments
        || DIRS.iter().any(|d| v.starts_with(d))
        || EXTS.iter().any(|e| v.to_ascii_lowercase().ends_with(e))
}

/// Whether the value after a credential flag in an argv is left alone (placeholders,
/// references, key files: `--tls-key /certs/tls.key`).
pub(super) fn keep_flag_value(flag: &str, value: &str) -> bool {
    let verdict = match names::text_key(flag.trim_start_matches('-')) {
        Verdict::IfCredentialLike => Verdict::Yes,
        v => v,
    };
    keep_value(verdict, flag, value, value, true)
}

/// Whether a quote after a run of `run` backslashes closes a value whose opening quote
/// had `k` backslashes. Each level of string nesting turns a quote's `k` escapes into
/// `2k + 1` (`"`, `\"`, `\\\"`, …) and a literal backslash into two, so at the level
/// of the opening quote the closing one is the run that leaves `k` after whole pairs of
/// literal backslashes: `run ≡ k (mod 2(k+1))`. Unescaped, that is an even run (`\\"` is
/// a backslash, then the end); once escaped, `\"` ends and `\\\"` is a literal quote.
fn closes(run: usize, k: usize) -> bool {
    if (k + 1).is_power_of_two() {
        run % (2 * (k + 1)) == k
    } else {
        run == k
    }
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// `[A-Za-z_][A-Za-z0-9_.-]*[ \t]*[:=]` at `j`: the next key of a list of pairs.
fn key_at(b: &[u8], j: usize) -> bool {
    let mut i = j;
    match b.get(i) {
        Some(c) if c.is_ascii_alphabetic() || *c == b'_' => i += 1,
        _ => return false,
    }
    while b
        .get(i)
        .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
    {
        i += 1;
    }
    while b.get(i).is_some_and(|c| matches!(c, b' ' | b'\t')) {
        i += 1;
    }
    matches!(b.get(i), Some(b':' | b'='))
}

/// End of a quoted value starting at `start`, opened by `quote` escaped `k` times; the
/// value excludes the closing quote's own escapes. Unterminated values run to the end of
/// the line (a cut log line still withholds the rest).
fn quoted_end(b: &[u8], start: usize, quote: u8, k: usize) -> usize {
    let mut i = start;
    while i < b.len() {
        let c = b[i];
        if c == b'\n' || c == b'\r' {
            return i;
        }
        if c == quote && k == 0 && quote == b'\'' && b.get(i + 1) == Some(&b'\'') {
            // YAML's escaped quote inside single quotes: `'it''s'`.
            i += 2;
            continue;
        }
        if c == quote {
            let mut run = 0;
            while i > start + run && b[i - run - 1] == b'\\' {
                run += 1;
            }
            if closes(run, k) {
                // `closes` guarantees the run holds the quote's own `k` escapes.
                return i - k.min(run);
            }
        }
        i += 1;
    }
    b.len()
}

/// End of an unquoted value starting at `start` (see the module docs for the rules).
fn unquoted_end(b: &[u8], start: usize, query: bool) -> usize {
    let mut i = start;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        let ends = match c {
            b' ' | b'\t' | b'\n' | b'\r' | b'"' | b'\'' | b'`' => true,
            b'\\' => matches!(next, Some(b'n' | b'r' | b't' | b'"' | b'\'')),
            b'&' | b'#' if query => true,
            b',' | b';' | b'&' => match next {
                None => true,
                Some(n) => is_space(n) || matches!(n, b'"' | b'\'' | b'\\') || key_at(b, i + 1),
            },
            b')' | b']' | b'}' | b'>' => match next {
                None => true,
                Some(n) => {
                    is_space(n)
                        || matches!(
                            n,
                            b'"' | b'\'' | b'\\' | b',' | b';' | b')' | b']' | b'}' | b'>' | b'&'
                        )
                }
            },
            b'<' => next == Some(b'/'),
            _ => false,
        };
        if ends {
            break;
        }
        i += 1;
    }
    i
}

/// `password: |` (a YAML block scalar): the value is every following line indented
/// deeper than the key's line. Returns the span of the block's text.
fn block_span(text: &str, key_start: usize, after: usize) -> Option<(usize, usize)> {
    let b = text.as_bytes();
    // `|`, `>-`, `|+2`, then blanks to the end of the line; checked byte by byte so a
    // long line costs nothing here.
    if !matches!(b.get(after), Some(b'|' | b'>')) {
        return None;
    }
    let mut i = after + 1;
    while b
        .get(i)
        .is_some_and(|c| matches!(c, b'-' | b'+' | b'0'..=b'9'))
    {
        i += 1;
    }
    while b.get(i).is_some_and(|c| matches!(c, b' ' | b'\t' | b'\r')) {
        i += 1;
    }
    if !matches!(b.get(i), None | Some(b'\n')) {
        return None;
    }
    let line_end = i;
    let line_start = text[..key_start].rfind('\n').map_or(0, |i| i + 1);
    let key_indent = text[line_start..]
        .bytes()
        .take_while(|c| *c == b' ' || *c == b'-')
        .count();
    let mut pos = line_end + 1;
    let mut first: Option<usize> = None;
    let mut last_end = None;
    while pos < text.len() {
        let end = text[pos..].find('\n').map_or(text.len(), |i| pos + i);
        let line = &text[pos..end];
        let indent = line.bytes().take_while(|c| *c == b' ').count();
        if line.trim().is_empty() {
            pos = end + 1;
            continue;
        }
        if indent <= key_indent {
            break;
        }
        first.get_or_insert(pos + indent);
        last_end = Some(end.min(b.len()));
        pos = end + 1;
    }
    Some((first?, last_end?))
}

/// A text with some spans replaced by [`MARK`], built left to right as a scan finds them.
struct Masked<'t> {
    text: &'t str,
    out: String,
    /// Everything before this offset is in `out`; a span starting earlier overlaps one
    /// already masked.
    copied: usize,
    changed: bool,
}

impl<'t> Masked<'t> {
    fn new(text: &'t str) -> Self {
        Masked {
            text,
            out: String::new(),
            copied: 0,
            changed: false,
        }
    }

    /// Replace `text[start..end]` (at or after [`Masked::copied`]) with the mark.
    fn mask(&mut self, start: usize, end: usize) {
        self.out.push_str(&self.text[self.copied..start]);
        self.out.push_str(MARK);
        self.copied = end;
        self.changed = true;
    }

    /// The masked text, or None when nothing was masked.
    fn finish(mut self) -> Option<String> {
        if !self.changed {
            return None;
        }
        self.out.push_str(&self.text[self.copied..]);
        Some(self.out)
    }
}

/// `password=…`, `"password": "…"`, `{\"password\":\"…\"}`, `password: |` and the like.
fn key_values(p: &Patterns, text: &str) -> Option<String> {
    let b = text.as_bytes();
    let mut masked = Masked::new(text);
    let mut pos = 0;
    while pos < text.len() {
        let Some(c) = p.key_value.captures_at(text, pos) else {
            break;
        };
        let (Some(m), Some(key_m)) = (c.get(0), c.get(1)) else {
            break;
        };
        let after = m.end();
        pos = after.max(pos + 1);
        let sep = c.get(3).map_or(b'=', |s| s.as_str().as_bytes()[0]);
        let open = c.get(4);
        // `token::Type` is a path, `token == x` a comparison.
        if open.is_none() && b.get(after) == Some(&sep) {
            continue;
        }
        let key = key_m.as_str();
        // `'--token': must be set` is prose about a flag, not a pair.
        if key.starts_with('-') && sep == b':' {
            continue;
        }
        // An annotation key's domain (`nginx.ingress.kubernetes.io/auth-secret`) is part
        // of the name; the regex stops at the `/`. Looked back a bounded distance.
        let mut start = key_m.start();
        while start > 0
            && key_m.start() - start < 256
            && (b[start - 1].is_ascii_alphanumeric()
                || matches!(b[start - 1], b'.' | b'-' | b'_' | b'/'))
        {
            start -= 1;
        }
        let verdict = names::text_key(&text[start..key_m.end()]);
        let query = key_m.start() > 0 && matches!(b[key_m.start() - 1], b'?' | b'&');
        match verdict {
            Verdict::No => continue,
            Verdict::QueryOnly if !query => continue,
            _ => {}
        }
        let (vs, ve, block) = match open {
            Some(o) => {
                let q = o.as_str();
                let quote = q.as_bytes()[q.len() - 1];
                (after, quoted_end(b, after, quote, q.len() - 1), false)
            }
            None => match (sep == b':')
                .then(|| block_span(text, key_m.start(), after))
                .flatten()
            {
                Some((s, e)) => (s, e, true),
                None => (after, unquoted_end(b, after, query), false),
            },
        };
        let value = &text[vs..ve];
        if value.trim().is_empty() || vs < masked.copied {
            continue;
        }
        // A nested structure: its own keys are judged one by one.
        if !block && matches!(value.as_bytes()[0], b'{' | b'[') && structure_follows(value) {
            continue;
        }
        let check = if block { value.trim() } else { value };
        if keep_value(verdict, key, check, &text[vs..], false) {
            // Kept values are whole tokens (a boolean, a reference, a mask, a path), so
            // nothing inside needs a second look; skipping them keeps the scan linear.
            pos = ve.max(pos);
            continue;
        }
        masked.mask(vs, ve);
        pos = ve.max(pos);
    }
    masked.finish()
}

/// `{` or `[` that opens JSON/YAML flow structure rather than starting a password:
/// followed by a quote, a bracket, a blank, the end or a `key:` (`{name: foo}`).
fn structure_follows(value: &str) -> bool {
    let rest = &value[1..];
    rest.is_empty()
        || rest.starts_with(['"', '\'', '\\', '}', ']', ' ', '{', '['])
        || key_at(rest.as_bytes(), 0)
}

/// `--password VALUE`, `-token VALUE`, `"--password", "VALUE"` (an argv array in JSON),
/// and the YAML list form (`- --password` then `- VALUE`). `--password=VALUE` is a key/value
/// pair and handled there.
fn flags(p: &Patterns, text: &str) -> Option<String> {
    let b = text.as_bytes();
    let mut masked = Masked::new(text);
    let mut pos = 0;
    while pos < text.len() {
        let Some(c) = p.flag.captures_at(text, pos) else {
            break;
        };
        let Some(f) = c.get(1) else { break };
        let after = f.end();
        pos = after.max(pos + 1);
        if f.start() < masked.copied || !names::secret_flag(f.as_str()) {
            continue;
        }
        let Some((vs, quote)) = flag_value_start(text, f.start(), after) else {
            continue;
        };
        let ve = match quote {
            Some((q, k)) => quoted_end(b, vs, q, k),
            None => unquoted_end(b, vs, false),
        };
        let value = &text[vs..ve];
        if value.is_empty() {
            continue;
        }
        // Another flag, not a value: `--password --verbose`.
        if quote.is_none()
            && value.starts_with('-')
            && value
                .trim_start_matches('-')
                .chars()
                .all(|ch| ch.is_ascii_alphabetic() || ch == '-')
        {
            continue;
        }
        let verdict = names::text_key(f.as_str().trim_start_matches('-'));
        let verdict = if verdict == Verdict::IfCredentialLike {
            // `--pass VALUE`: on a command line the bare word is the flag's meaning.
            Verdict::Yes
        } else {
            verdict
        };
        if keep_value(verdict, f.as_str(), value, &text[vs..], true) {
            pos = ve.max(pos);
            continue;
        }
        masked.mask(vs, ve);
        pos = ve.max(pos);
    }
    masked.finish()
}

/// Where the value after a flag starts, and how it is quoted: after blanks, after
/// `", "` (the next element of an argv array), or on the next YAML list item.
fn flag_value_start(
    text: &str,
    flag_start: usize,
    after: usize,
) -> Option<(usize, Option<(u8, usize)>)> {
    let b = text.as_bytes();
    let quote_at = |i: usize| -> Option<(usize, u8, usize)> {
        let mut j = i;
        while b.get(j) == Some(&b'\\') {
            j += 1;
        }
        match b.get(j) {
            Some(q @ (b'"' | b'\'')) => Some((j + 1, *q, j - i)),
            _ => None,
        }
    };
    let mut i = after;
    // The flag's own closing quote, then a comma (the next element of an argv array) or
    // blanks and a quoted shell word.
    if let Some((j, _, _)) = quote_at(i) {
        let mut k = j;
        while matches!(b.get(k), Some(b' ' | b'\t')) {
            k += 1;
        }
        if b.get(k) == Some(&b',') {
            k += 1;
            while matches!(b.get(k), Some(b' ' | b'\t')) {
                k += 1;
            }
            let (vs, q, esc) = quote_at(k)?;
            return Some((vs, Some((q, esc))));
        }
        // `"--password" "VALUE"`; prose (`"--password" is required`) is left alone.
        if k == j {
            return None;
        }
        let (vs, q, esc) = quote_at(k)?;
        return Some((vs, Some((q, esc))));
    }
    let blanks = b[i..]
        .iter()
        .take_while(|c| matches!(c, b' ' | b'\t'))
        .count();
    if blanks > 0 {
        i += blanks;
        return match b.get(i) {
            None | Some(b'\n' | b'\r') => None,
            _ => match quote_at(i) {
                Some((vs, q, esc)) => Some((vs, Some((q, esc)))),
                None => Some((i, None)),
            },
        };
    }
    // YAML: `  - --password` then `  - VALUE` with the same prefix.
    if matches!(b.get(i), Some(b'\n')) || text[i..].starts_with("\r\n") {
        let line_start = text[..flag_start].rfind('\n').map_or(0, |x| x + 1);
        let prefix = &text[line_start..flag_start];
        if prefix.trim() != "-" {
            return None;
        }
        let next = i + if b[i] == b'\r' { 2 } else { 1 };
        if text[next..].starts_with(prefix) {
            let vs = next + prefix.len();
            return match quote_at(vs) {
                Some((v, q, esc)) => Some((v, Some((q, esc)))),
                None => Some((vs, None)),
            };
        }
    }
    None
}
