//! Redaction by known value: every secret value kai has read in this process (Secret
//! data, env values withheld by name, ConfigMap values withheld by key name) is replaced
//! wherever it shows up again, whatever the text around it looks like: a password echoed
//! in a log line with no `password=` in front, a token inside an annotation, a
//! base64-encoded copy in someone's ConfigMap.
//!
//! One Aho-Corasick automaton over all remembered forms, rebuilt lazily by the first
//! [`replace_known`] after the set changed, so remembering a whole list of Secrets costs
//! one rebuild. Readers share it through an `Arc`; the lock is held only to clone it.

use std::collections::HashSet;
use std::sync::{Arc, LazyLock, PoisonError, RwLock};

use aho_corasick::{AhoCorasick, MatchKind};
use base64::Engine as _;
use serde_json::Value;

/// What a remembered value is replaced with.
pub const SECRET_VALUE_MARK: &str = "[REDACTED:secret-value]";

/// Values shorter than this (in bytes) are not remembered: a Secret holding `app`, `1`
/// or `dev` would otherwise blank out every occurrence of a common word. Short values
/// are still withheld where they are read (Secret data is never rendered); they just
/// are not hunted for elsewhere.
pub const MIN_REMEMBERED_LEN: usize = 4;

/// Values longer than this are files and bundles (Helm releases, CA bundles), not
/// credentials copied into a log line; the pattern rules still see them.
pub const MAX_REMEMBERED_LEN: usize = 16 * 1024;

/// Bounds on the registry (forms, total bytes): a cluster with thousands of Secrets must
/// not turn every scrub into a scan over megabytes of patterns.
const MAX_FORMS: usize = 50_000;
const MAX_TOTAL_BYTES: usize = 8 * 1024 * 1024;

/// Last words of Secret keys whose values identify rather than authenticate (`DB_HOST`,
/// `username`, `namespace`, `ca.crt`): blanking every `postgres.default.svc`, `app` or
/// `kube-system` in the output would hide the evidence a diagnosis needs. A key whose
/// name says credential ([`super::sensitive_name`]) is always remembered.
const IDENTIFYING_WORDS: &[&str] = &[
    "namespace",
    "username",
    "user",
    "login",
    "host",
    "hostname",
    "port",
    "database",
    "dbname",
    "db",
    "server",
    "endpoint",
    "region",
    "email",
    "ca",
    "crt",
    "cert",
    "certificate",
    "id",
    "name",
    "env",
    "environment",
    "mode",
    "bucket",
    "project",
    "cluster",
    "zone",
    "tenant",
];

/// Values so common that hunting for them would blank ordinary words everywhere
/// ("password authentication failed", the `postgres` image). They are guessable, so
/// hiding every occurrence protects nothing; after a key (`password=postgres`) the
/// pattern rules still withhold them.
const UBIQUITOUS: &[&str] = &[
    "password",
    "passwd",
    "postgres",
    "postgresql",
    "admin",
    "administrator",
    "root",
    "secret",
    "changeme",
    "default",
    "example",
    "mysql",
    "redis",
    "guest",
    "user",
    "test",
    "testing",
    "demo",
    "sample",
    "token",
    "development",
    "production",
    "staging",
    "local",
    "localhost",
];

/// Secret types that hold no credentials worth hunting for and are large.
const SKIPPED_TYPES: &[&str] = &["helm.sh/release.v1"];

enum Matcher {
    Automaton(AhoCorasick),
    /// Only if the automaton cannot be built (it always can within the bounds above).
    Plain(Vec<String>),
}

#[derive(Default)]
struct Known {
    forms: HashSet<String>,
    bytes: usize,
    /// Built from `forms` by the first reader after a change.
    matcher: Option<Arc<Matcher>>,
    dirty: bool,
    warned_full: bool,
}

static KNOWN: LazyLock<RwLock<Known>> = LazyLock::new(|| RwLock::new(Known::default()));

/// Whether a value is worth remembering at all.
fn worth(s: &str) -> bool {
    if s.len() < MIN_REMEMBERED_LEN || s.len() > MAX_REMEMBERED_LEN {
        return false;
    }
    let lower = s.trim().to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "true" | "false" | "null" | "none" | "yes" | "no" | "enabled" | "disabled"
    ) || UBIQUITOUS.contains(&lower.as_str())
    {
        return false;
    }
    // Ports, counts and ids: replacing every `5432` or `8080` would wreck the output.
    if s.len() < 6 && s.chars().all(|c| c.is_ascii_digit()) {
        return false;
    }
    // Markers of our own, and anything inside one (a value `DACT` would otherwise eat
    // into every `[REDACTED]` on the next scrub).
    !(s.starts_with("[REDACTED")
        || s.starts_with("<redacted")
        || SECRET_VALUE_MARK.contains(s)
        || "<redacted: bytes, held a credential> (chars, set inline)".contains(s))
}

/// A value and the forms it is likely to reappear in: trimmed (`echo pw | base64` leaves
/// a newline), JSON-escaped (inside a JSON string), percent-encoded (inside a URL).
fn text_forms(s: &str, out: &mut Vec<String>) {
    let t = s.trim();
    for v in [s, t] {
        out.push(v.to_string());
        if let Ok(json) = serde_json::to_string(v) {
            let inner = &json[1..json.len() - 1];
            if inner != v {
                out.push(inner.to_string());
            }
        }
        let pct = percent_encode(v);
        if pct != v {
            out.push(pct);
        }
    }
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The base64 forms of raw bytes: padded (as in a Secret's `data`) and unpadded.
fn b64_forms(bytes: &[u8], out: &mut Vec<String>) {
    let padded = base64::engine::general_purpose::STANDARD.encode(bytes);
    let bare = padded.trim_end_matches('=').to_string();
    if bare != padded {
        out.push(bare);
    }
    out.push(padded);
}

fn insert(forms: Vec<String>) {
    let forms: Vec<String> = forms.into_iter().filter(|f| worth(f)).collect();
    if forms.is_empty() {
        return;
    }
    {
        // The common case, the same Secret read again: no write lock, no rebuild.
        let k = KNOWN.read().unwrap_or_else(PoisonError::into_inner);
        if forms.iter().all(|f| k.forms.contains(f)) {
            return;
        }
    }
    let mut k = KNOWN.write().unwrap_or_else(PoisonError::into_inner);
    for f in forms {
        if k.forms.contains(&f) {
            continue;
        }
        if k.forms.len() >= MAX_FORMS || k.bytes + f.len() > MAX_TOTAL_BYTES {
            if !k.warned_full {
                k.warned_full = true;
                tracing::warn!(
                    "redaction: the known-secret registry is full ({} values); later values are caught by pattern only",
                    k.forms.len()
                );
            }
            break;
        }
        k.bytes += f.len();
        k.forms.insert(f);
        k.dirty = true;
    }
}

/// Remember a secret value seen in this process (an env value withheld by name, a
/// ConfigMap value under a credential key): [`super::scrub`] replaces every later
/// occurrence, in any of its usual forms, with [`SECRET_VALUE_MARK`].
pub fn remember_value(s: &str) {
    let mut forms = Vec::new();
    text_forms(s, &mut forms);
    insert(forms);
}

/// Remember the values of a Secret, given as its JSON (`data` base64, `stringData`
/// plain). Both the decoded text and the base64 string are remembered. Cheap to call
/// again with the same object. Call it on the raw object, before redacting it.
pub fn remember_secret(obj: &Value) {
    if obj
        .get("type")
        .and_then(Value::as_str)
        .is_some_and(|t| SKIPPED_TYPES.contains(&t))
    {
        return;
    }
    let mut forms = Vec::new();
    if let Some(data) = obj.get("data").and_then(Value::as_object) {
        for (key, v) in data {
            let Some(b64) = v.as_str() else { continue };
            if skipped_key(key) {
                continue;
            }
            let b64 = b64.trim();
            match base64::engine::general_purpose::STANDARD.decode(b64) {
                Ok(bytes) => {
                    if decoded_worth(&bytes) {
                        forms.push(b64.to_string());
                        forms.push(b64.trim_end_matches('=').to_string());
                    }
                    decoded_forms(key, &bytes, &mut forms);
                }
                Err(_) => forms.push(b64.to_string()),
            }
        }
    }
    if let Some(data) = obj.get("stringData").and_then(Value::as_object) {
        for (key, v) in data {
            let Some(s) = v.as_str() else { continue };
            if skipped_key(key) {
                continue;
            }
            if decoded_worth(s.as_bytes()) {
                b64_forms(s.as_bytes(), &mut forms);
            }
            decoded_forms(key, s.as_bytes(), &mut forms);
        }
    }
    insert(forms);
}

/// The base64 form of a value is hunted for only if the value itself would be: the
/// encoding of `dev` is a four-letter string that appears in unrelated blobs.
fn decoded_worth(bytes: &[u8]) -> bool {
    match std::str::from_utf8(bytes) {
        Ok(t) => worth(t.trim()),
        // Binary (a keystore): long enough to be unique.
        Err(_) => bytes.len() >= MIN_REMEMBERED_LEN,
    }
}

/// [`remember_secret`] for a typed Secret (its `data` already decoded).
pub fn remember_k8s_secret(s: &k8s_openapi::api::core::v1::Secret) {
    if s.type_
        .as_deref()
        .is_some_and(|t| SKIPPED_TYPES.contains(&t))
    {
        return;
    }
    let mut forms = Vec::new();
    for (key, bytes) in s.data.iter().flatten() {
        if !skipped_key(key) {
            if decoded_worth(&bytes.0) {
                b64_forms(&bytes.0, &mut forms);
            }
            decoded_forms(key, &bytes.0, &mut forms);
        }
    }
    for (key, v) in s.string_data.iter().flatten() {
        if !skipped_key(key) {
            if decoded_worth(v.as_bytes()) {
                b64_forms(v.as_bytes(), &mut forms);
            }
            decoded_forms(key, v.as_bytes(), &mut forms);
        }
    }
    insert(forms);
}

fn skipped_key(key: &str) -> bool {
    if super::sensitive_name(key) {
        return false;
    }
    super::names::words(key)
        .last()
        .is_some_and(|w| IDENTIFYING_WORDS.contains(&w.as_str()))
}

/// Forms of one decoded value; a Docker config also contributes its `auth`, `password`
/// and token fields, which reappear on their own (a registry login in a log).
fn decoded_forms(key: &str, bytes: &[u8], out: &mut Vec<String>) {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    text_forms(text, out);
    if key == ".dockerconfigjson" || key == ".dockercfg" {
        if let Ok(cfg) = serde_json::from_str::<Value>(text) {
            let auths = cfg.get("auths").unwrap_or(&cfg);
            for (_, entry) in auths.as_object().into_iter().flatten() {
                for field in ["auth", "password", "identitytoken", "registrytoken"] {
                    if let Some(v) = entry.get(field).and_then(Value::as_str) {
                        text_forms(v, out);
                        if field == "auth" {
                            // `user:password`, base64-encoded.
                            let decoded = base64::engine::general_purpose::STANDARD
                                .decode(v)
                                .ok()
                                .and_then(|b| String::from_utf8(b).ok());
                            if let Some((_, pw)) =
                                decoded.as_deref().and_then(|d| d.split_once(':'))
                            {
                                text_forms(pw, out);
                            }
                        }
                    }
                }
            }
        }
    }
}

fn matcher() -> Option<Arc<Matcher>> {
    {
        let k = KNOWN.read().unwrap_or_else(PoisonError::into_inner);
        if !k.dirty {
            return k.matcher.clone();
        }
    }
    let mut k = KNOWN.write().unwrap_or_else(PoisonError::into_inner);
    if k.dirty {
        k.dirty = false;
        k.matcher = if k.forms.is_empty() {
            None
        } else {
            let m = match AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostLongest)
                .build(k.forms.iter())
            {
                Ok(ac) => Matcher::Automaton(ac),
                Err(e) => {
                    tracing::warn!("redaction: known-value automaton: {e}; using plain search");
                    let mut v: Vec<String> = k.forms.iter().cloned().collect();
                    // Longest first, so a value is not half-replaced by a shorter one.
                    v.sort_by_key(|s| std::cmp::Reverse(s.len()));
                    Matcher::Plain(v)
                }
            };
            Some(Arc::new(m))
        };
    }
    k.matcher.clone()
}

/// Replace every remembered value in `text`; `None` when there was none.
pub(super) fn replace_known(text: &str) -> Option<String> {
    let m = matcher()?;
    match &*m {
        Matcher::Automaton(ac) => {
            if !ac.is_match(text) {
                return None;
            }
            let mut out = String::with_capacity(text.len());
            ac.replace_all_with(text, &mut out, |_, _, dst| {
                dst.push_str(SECRET_VALUE_MARK);
                true
            });
            Some(out)
        }
        Matcher::Plain(values) => {
            let mut out: Option<String> = None;
            for v in values {
                let cur = out.as_deref().unwrap_or(text);
                if cur.contains(v.as_str()) {
                    out = Some(cur.replace(v.as_str(), SECRET_VALUE_MARK));
                }
            }
            out
        }
    }
}

/// How many forms are remembered (tests: repeated calls add nothing).
#[cfg(test)]
pub(super) fn remembered_forms() -> usize {
    KNOWN
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .forms
        .len()
}
