//! Redaction: the one place every tool output passes before it reaches the model.
//!
//! Two layers. Structured data we know is secret (Secret values, env values from
//! `secretKeyRef`) never gets rendered at all: the helpers here show references and
//! sizes instead. Free text (logs, event messages, ConfigMap data, annotations) goes
//! through [`scrub`], which replaces credential-looking patterns with `[REDACTED…]`
//! markers and keeps the key name, so the model still sees *that* a password was set.
//!
//! The patterns err on the side of redacting: a false positive costs a little context,
//! a false negative sends a credential to a third party.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::{Captures, Regex};
use serde_json::Value;

/// The marker for a value whose key is kept (`password=[REDACTED]`).
pub const MARK: &str = "[REDACTED]";

struct Patterns {
    pem: Regex,
    jwt: Regex,
    vendor: Regex,
    aws_id: Regex,
    auth_header: Regex,
    bearer: Regex,
    url_creds: Regex,
    key_value: Regex,
}

static PATTERNS: LazyLock<Option<Patterns>> = LazyLock::new(|| {
    // Compiled once; a pattern that fails to compile is a defect caught by the tests, and
    // `scrub` then falls back to withholding the text entirely rather than leaking it.
    Some(Patterns {
        pem: Regex::new(
            r"-----BEGIN ([A-Z0-9 ]*PRIVATE KEY)-----[\s\S]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\z)",
        )
        .ok()?,
        jwt: Regex::new(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*").ok()?,
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
        ))
        .ok()?,
        aws_id: Regex::new(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b").ok()?,
        auth_header: Regex::new(
            r#"(?i)\b((?:proxy-)?authorization["']?[ \t]*[:=][ \t]*["']?(?:(?:bearer|basic|token|digest|negotiate)[ \t]+)?)([^\s"',;\[]+)"#,
        )
        .ok()?,
        bearer: Regex::new(r"(?i)\b(bearer[ \t]+)([A-Za-z0-9._~+/-]+=*)").ok()?,
        url_creds: Regex::new(r"\b([a-zA-Z][a-zA-Z0-9+.-]{1,20}://)([^/\s:@]+):([^/\s@]+)@").ok()?,
        key_value: Regex::new(concat!(
            r#"(?i)([A-Za-z0-9_.-]*(?:password|passwd|passphrase|secret|token|api[_-]?key|apikey|access[_-]?key|auth[_-]?key|credentials?|private[_-]?key)[A-Za-z0-9_.-]*)"#,
            r#"("?'?[ \t]*[:=][ \t]*["']?)"#,
            r#"([^\s"',;&<>\[\]{}()]+)"#
        ))
        .ok()?,
    })
});

/// Remove credential patterns from free text: bearer tokens and `Authorization`
/// headers, passwords in URLs, `password=`/`token:`/`api_key=`-style pairs, AWS access
/// key ids, PEM private keys, JWTs and GitHub/GitLab/Slack/OpenAI/Stripe/Google tokens.
pub fn scrub(text: &str) -> String {
    scrub_cow(text).into_owned()
}

/// [`scrub`] without a copy when nothing matched.
pub fn scrub_cow(text: &str) -> Cow<'_, str> {
    let Some(p) = PATTERNS.as_ref() else {
        return Cow::Owned(format!("{MARK} (redaction unavailable, text withheld)"));
    };
    let mut out: Cow<'_, str> = Cow::Borrowed(text);
    // Order matters: whole blocks and self-identifying tokens first, so the contextual
    // rules below see `[REDACTED:…]` and leave it alone.
    replace(&mut out, &p.pem, |c: &Captures| {
        format!(
            "-----BEGIN {}----- [REDACTED:private-key] -----END {}-----",
            &c[1], &c[1]
        )
    });
    replace(&mut out, &p.jwt, |_: &Captures| {
        "[REDACTED:jwt]".to_string()
    });
    replace(&mut out, &p.vendor, |_: &Captures| {
        "[REDACTED:token]".to_string()
    });
    replace(&mut out, &p.aws_id, |_: &Captures| {
        "[REDACTED:aws-access-key-id]".to_string()
    });
    replace(&mut out, &p.auth_header, |c: &Captures| {
        // `Authorization: Bearer [REDACTED:jwt]`: the regex backtracks to take the scheme
        // word as the value; the credential is already gone.
        let scheme = ["bearer", "basic", "token", "digest", "negotiate"];
        if scheme.iter().any(|s| c[2].eq_ignore_ascii_case(s)) {
            c[0].to_string()
        } else {
            format!("{}{MARK}", &c[1])
        }
    });
    replace(&mut out, &p.bearer, |c: &Captures| {
        let token = &c[2];
        if looks_like_credential(token) {
            format!("{}{MARK}", &c[1])
        } else {
            c[0].to_string()
        }
    });
    replace(&mut out, &p.url_creds, |c: &Captures| {
        format!("{}{}:***@", &c[1], &c[2])
    });
    replace(&mut out, &p.key_value, |c: &Captures| {
        let (key, sep, value) = (&c[1], &c[2], &c[3]);
        if keep_value(key, value) {
            c[0].to_string()
        } else {
            format!("{key}{sep}{MARK}")
        }
    });
    out
}

fn replace(text: &mut Cow<'_, str>, re: &Regex, f: impl Fn(&Captures) -> String) {
    if let Cow::Owned(s) = re.replace_all(text, |c: &Captures| f(c)) {
        *text = Cow::Owned(s);
    }
}

/// A bearer "token" that is an ordinary word ("bearer authentication") is left alone.
fn looks_like_credential(token: &str) -> bool {
    token.len() >= 20 || (token.len() >= 8 && token.chars().any(|c| !c.is_ascii_alphabetic()))
}

/// Whether a matched `key: value` pair is left alone. The regex finds any key that
/// *mentions* a credential word; only keys that *end* in one hold the credential itself
/// (`password`, `client_secret`, `x-api-key`), while `secretName: db-creds`,
/// `tokenExpirationSeconds` or `passwordFile` say where one lives. Booleans and values
/// already rendered as references (`<from secret …>`) carry nothing either.
fn keep_value(key: &str, value: &str) -> bool {
    const CREDENTIAL_ENDINGS: &[&str] = &[
        "password",
        "passwd",
        "passphrase",
        "secret",
        "token",
        "apikey",
        "api_key",
        "api-key",
        "accesskey",
        "access_key",
        "access-key",
        "authkey",
        "auth_key",
        "auth-key",
        "privatekey",
        "private_key",
        "private-key",
        "secretkey",
        "secret_key",
        "secret-key",
        "credential",
        "credentials",
        "key_base",
        "_value",
        "_b64",
        "_base64",
    ];
    let k = key
        .trim_matches(|c: char| c == '"' || c == '\'')
        .to_ascii_lowercase();
    let stem = k.trim_end_matches(|c: char| c.is_ascii_digit() || c == '_' || c == '-');
    if !CREDENTIAL_ENDINGS.iter().any(|e| stem.ends_with(e)) {
        return true;
    }
    if stem.ends_with("_value") || stem.ends_with("_b64") || stem.ends_with("_base64") {
        // Only when the key also names a credential ("password_value", not "cpu_value").
        if !["password", "passwd", "secret", "token", "key"]
            .iter()
            .any(|w| stem.contains(w))
        {
            return true;
        }
    }
    let v = value.to_ascii_lowercase();
    if matches!(v.as_str(), "true" | "false" | "null" | "none" | "nil") {
        return true;
    }
    // A short number after "token" is a count or a limit, not a credential.
    if k.contains("token") && value.len() < 6 && value.chars().all(|c| c.is_ascii_digit()) {
        return true;
    }
    value.starts_with("[REDACTED") || value.chars().all(|c| c == '*')
}

/// Replace every value of a Secret (`data`, `stringData`) with `<redacted: N bytes>` and
/// drop annotations that may hold a copy (last-applied-configuration). Works on the
/// JSON form of any object; a no-op for objects without those fields.
pub fn redact_secret_value(obj: &mut Value) {
    for field in ["data", "stringData"] {
        if let Some(map) = obj.get_mut(field).and_then(Value::as_object_mut) {
            for (_, v) in map.iter_mut() {
                let n = match v.as_str() {
                    Some(s) if field == "data" => base64_decoded_len(s),
                    Some(s) => s.len(),
                    None => 0,
                };
                *v = Value::String(format!("<redacted: {n} bytes>"));
            }
        }
    }
    if let Some(ann) = obj
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        ann.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
}

/// The decoded size of a base64 string, without decoding it.
pub fn base64_decoded_len(s: &str) -> usize {
    let s = s.trim();
    let pad = s.chars().rev().take_while(|c| *c == '=').count();
    (s.len() / 4 * 3).saturating_sub(pad)
        + match s.len() % 4 {
            2 => 1,
            3 => 2,
            _ => 0,
        }
}

/// How an env var is shown: a literal value (scrubbed, and withheld entirely when the
/// variable's name says it is a credential), or the reference it comes from.
pub fn env_display(env: &k8s_openapi::api::core::v1::EnvVar) -> String {
    if let Some(from) = &env.value_from {
        if let Some(s) = &from.secret_key_ref {
            return format!("<from secret {} key {}>", s.name, s.key);
        }
        if let Some(c) = &from.config_map_key_ref {
            return format!("<from configmap {} key {}>", c.name, c.key);
        }
        if let Some(f) = &from.field_ref {
            return format!("<field {}>", f.field_path);
        }
        if let Some(r) = &from.resource_field_ref {
            return format!("<resource {}>", r.resource);
        }
        return "<from a reference>".into();
    }
    let value = env.value.as_deref().unwrap_or("");
    if value.is_empty() {
        return "\"\"".into();
    }
    if sensitive_name(&env.name) {
        return format!("{MARK} ({} chars, set inline)", value.chars().count());
    }
    scrub(value)
}

/// Withhold inline values of credential-named env vars anywhere in an object's JSON
/// (`{name: DB_PASSWORD, value: hunter2}` in a Pod, Deployment or CRD template): YAML
/// puts name and value on separate lines, where [`scrub`] cannot pair them.
pub fn redact_env_values(v: &mut Value) {
    match v {
        Value::Object(map) => {
            let sensitive = map
                .get("name")
                .and_then(Value::as_str)
                .is_some_and(sensitive_name);
            if sensitive {
                if let Some(Value::String(val)) = map.get_mut("value") {
                    if !val.is_empty() {
                        *val = format!("{MARK} ({} chars, set inline)", val.chars().count());
                    }
                }
            }
            for (_, child) in map.iter_mut() {
                redact_env_values(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_env_values),
        _ => {}
    }
}

/// An env var or key name that says it holds a credential.
pub fn sensitive_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "password",
        "passwd",
        "secret",
        "token",
        "apikey",
        "api_key",
        "access_key",
        "private_key",
        "credential",
    ]
    .iter()
    .any(|w| n.contains(w))
        && !["_file", "_path", "_name", "_ref"]
            .iter()
            .any(|s| n.ends_with(s))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn patterns_compile() {
        assert!(PATTERNS.is_some());
    }

    fn redacts(input: &str, secret: &str) {
        let out = scrub(input);
        assert!(
            !out.contains(secret),
            "{input:?} -> {out:?} still has {secret:?}"
        );
        assert!(out.contains("[REDACTED") || out.contains("***"), "{out:?}");
    }

    fn keeps(input: &str) {
        assert_eq!(scrub(input), input);
    }

    #[test]
    fn authorization_headers() {
        redacts(
            "Authorization: Bearer abc123def456ghi789",
            "abc123def456ghi789",
        );
        redacts("authorization=Basic dXNlcjpwYXNz", "dXNlcjpwYXNz");
        redacts(
            r#"{"Authorization": "Bearer tok_9f8e7d6c5b4a"}"#,
            "tok_9f8e7d6c5b4a",
        );
        redacts(
            "curl -H 'Authorization: token 0123456789abcdef'",
            "0123456789abcdef",
        );
        redacts(
            "sent header bearer 9a8b7c6d5e4f3a2b1c0d",
            "9a8b7c6d5e4f3a2b1c0d",
        );
        let out = scrub("Authorization: Bearer abc123def456ghi789");
        assert!(out.starts_with("Authorization: Bearer [REDACTED]"), "{out}");
    }

    #[test]
    fn bearer_words_are_not_tokens() {
        keeps("the bearer authentication scheme is configured");
        keeps("Bearer of bad news");
    }

    #[test]
    fn url_credentials() {
        let out = scrub("connecting to postgres://app:s3cr3t@db:5432/app");
        assert_eq!(out, "connecting to postgres://app:***@db:5432/app");
        redacts("amqp://guest:guestpw@rabbit/", "guestpw");
        keeps("see https://example.com/docs?page=2");
        keeps("listening on http://0.0.0.0:8080");
    }

    #[test]
    fn key_value_pairs() {
        assert_eq!(
            scrub("password=hunter2 user=app"),
            "password=[REDACTED] user=app"
        );
        redacts("DB_PASSWORD: hunter2", "hunter2");
        redacts("passwd:letmein", "letmein");
        redacts("client_secret=abcdef", "abcdef");
        redacts("token=deadbeefcafe", "deadbeefcafe");
        redacts("api_key=AbCdEf123", "AbCdEf123");
        redacts("X-API-KEY: AbCdEf123", "AbCdEf123");
        redacts(r#"{"password": "hunter2"}"#, "hunter2");
        redacts(
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "wJalrXUtnFEMI",
        );
        let out = scrub(r#"{"password": "hunter2"}"#);
        assert!(out.contains("\"password\""), "{out}");
    }

    #[test]
    fn references_and_plain_words_are_kept() {
        keeps("FATAL: password authentication failed for user \"app\"");
        keeps("secretName: db-creds");
        keeps("DB_PASSWORD: <from secret db-creds key password>");
        keeps("secret \"db-creds\" not found");
        keeps("automountServiceAccountToken: false");
        keeps("max_tokens=500");
        keeps("couldn't find key password in Secret app/db-creds");
        keeps("secretKeyRef:");
        keeps("tokenExpirationSeconds: 3600");
        keeps("level=info msg=\"request served\" status=200 path=/healthz");
    }

    #[test]
    fn cloud_and_vendor_tokens() {
        redacts("key AKIAIOSFODNN7EXAMPLE used", "AKIAIOSFODNN7EXAMPLE");
        redacts("ASIAY34FZKBOKMUTVV7A", "ASIAY34FZKBOKMUTVV7A");
        redacts("ghp_1234567890abcdefghijABCDEFGHIJ123456", "ghp_1234567890");
        redacts(
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnop",
            "github_pat_11ABC",
        );
        redacts("slack xoxb-1234567890-abcdefghij", "xoxb-1234567890");
        redacts(
            "OPENAI_KEY sk-proj-abcdefghijklmnopqrstuvwx",
            "sk-proj-abcdef",
        );
        redacts("sk_live_abcdefghijklmnop1234", "sk_live_abcdef");
        keeps("AKIA is a prefix; AKIAshort is not a key");
        keeps("task-runner sk-1 started");
    }

    #[test]
    fn jwts() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.c2lnbmF0dXJlX2hlcmU";
        redacts(&format!("got token {jwt} from idp"), "eyJzdWIiOiJhZG1pbiJ9");
        let out = scrub(&format!("Authorization: Bearer {jwt}"));
        assert!(!out.contains("eyJ"), "{out}");
        assert!(out.starts_with("Authorization: Bearer [REDACTED"), "{out}");
    }

    #[test]
    fn pem_private_keys() {
        let pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA1234\nabcdEFGH\n-----END RSA PRIVATE KEY-----";
        let out = scrub(&format!("key:\n{pem}\nafter"));
        assert!(!out.contains("MIIEpAIBAAKCAQEA1234"), "{out}");
        assert!(out.contains("[REDACTED:private-key]"));
        assert!(out.ends_with("after"));
        // A truncated block (cut log) is still withheld to the end.
        let out = scrub("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC");
        assert!(!out.contains("MIIEvQ"), "{out}");
        keeps("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----");
    }

    #[test]
    fn secret_objects_show_sizes_only() {
        let mut s = serde_json::json!({
            "kind": "Secret",
            "metadata": {"name": "db", "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": "{\"data\":{\"password\":\"aHVudGVyMg==\"}}",
                "team": "a"}},
            "data": {"password": "aHVudGVyMg==", "user": "YXBw"},
            "stringData": {"extra": "plain"}
        });
        redact_secret_value(&mut s);
        let text = s.to_string();
        assert!(!text.contains("aHVudGVyMg"), "{text}");
        assert!(!text.contains("plain"), "{text}");
        assert_eq!(s["data"]["password"], "<redacted: 7 bytes>");
        assert_eq!(s["data"]["user"], "<redacted: 3 bytes>");
        assert_eq!(s["stringData"]["extra"], "<redacted: 5 bytes>");
        assert_eq!(s["metadata"]["annotations"]["team"], "a");
    }

    #[test]
    fn inline_env_values_in_objects() {
        let mut v = serde_json::json!({"spec": {"containers": [{"env": [
            {"name": "DB_PASSWORD", "value": "hunter2"},
            {"name": "LOG_LEVEL", "value": "debug"}
        ]}]}});
        redact_env_values(&mut v);
        let text = v.to_string();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("debug"));
    }

    #[test]
    fn env_values() {
        use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, SecretKeySelector};
        let from_secret = EnvVar {
            name: "DB_PASSWORD".into(),
            value_from: Some(EnvVarSource {
                secret_key_ref: Some(SecretKeySelector {
                    name: "db-creds".into(),
                    key: "password".into(),
                    optional: None,
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            env_display(&from_secret),
            "<from secret db-creds key password>"
        );
        let inline = EnvVar {
            name: "API_TOKEN".into(),
            value: Some("abc".into()),
            ..Default::default()
        };
        assert!(!env_display(&inline).contains("abc"));
        let plain = EnvVar {
            name: "LOG_LEVEL".into(),
            value: Some("debug".into()),
            ..Default::default()
        };
        assert_eq!(env_display(&plain), "debug");
        let url = EnvVar {
            name: "DATABASE_URL".into(),
            value: Some("postgres://app:pw123@db/app".into()),
            ..Default::default()
        };
        assert_eq!(env_display(&url), "postgres://app:***@db/app");
    }

    #[test]
    fn long_logs_are_scrubbed_quickly() {
        let mut log = String::new();
        for i in 0..3000 {
            log.push_str(&format!(
                "2024-05-01T10:00:{:02}Z INFO worker={i} request id=abc{i} path=/api/v1/items status=200 took=12ms\n",
                i % 60
            ));
        }
        log.push_str("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.sig_abc\n");
        let start = std::time::Instant::now();
        let out = scrub(&log);
        let took = start.elapsed();
        assert!(!out.contains("eyJzdWIi"));
        // Generous bound (debug build, shared CI cores); the bench measures properly.
        assert!(took < std::time::Duration::from_millis(500), "{took:?}");
    }
}

/// Remember a Secret's values so they are scrubbed wherever they appear later.
/// (Placeholder: the full registry lands with the redaction work.)
pub fn remember_secret(_obj: &Value) {}
