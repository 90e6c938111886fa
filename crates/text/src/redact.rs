//! Redaction: the one place every tool output passes before it reaches the model.
//!
//! Three layers. Structured data we know is secret (Secret values, env values from
//! `secretKeyRef`, inline env values and ConfigMap entries under credential names,
//! credential flags in container `command`/`args`) never gets rendered at all: the
//! helpers here show references and sizes instead. Values withheld that way, and every
//! Secret value kai reads, are remembered ([`remember_secret`], [`remember_value`]) and
//! replaced wherever they reappear. Free text (logs, event messages, ConfigMap data,
//! annotations) goes through [`scrub`], which replaces remembered values and
//! credential-looking patterns with `[REDACTED…]` markers and keeps the key name, so the
//! model still sees *that* a password was set.
//!
//! The patterns err on the side of redacting: a false positive costs a little context,
//! a false negative sends a credential to a third party.

mod known;
mod names;
mod text;

#[cfg(test)]
mod table_tests;

use std::borrow::Cow;

use base64::Engine as _;
use serde_json::Value;

pub use known::{
    remember_k8s_secret, remember_secret, remember_value, MAX_REMEMBERED_LEN, MIN_REMEMBERED_LEN,
    SECRET_VALUE_MARK,
};
pub use names::sensitive_name;

/// The marker for a value whose key is kept (`password=[REDACTED]`).
pub const MARK: &str = "[REDACTED]";

/// Remove credentials from free text: first every value remembered in this process (see
/// [`remember_secret`]), then bearer tokens, `Authorization` and `Cookie` headers,
/// passwords in URLs of any scheme (also with an empty user), `password=`/`token:`/
/// `api_key=`-style pairs in plain, JSON, escaped-JSON, XML and YAML (block scalars too)
/// form, credential flags (`--password VALUE`, `mysql -p…`, `curl -u user:…`),
/// ADO.NET/JDBC/Azure connection strings, AWS keys, PEM/PGP/OpenSSH/PuTTY private keys,
/// JWTs and GitHub/GitLab/Slack/OpenAI/Stripe/Google tokens.
pub fn scrub(text: &str) -> String {
    scrub_cow(text).into_owned()
}

/// Replace only the remembered Secret values (no pattern rules): for records that must
/// stay faithful to the objects they describe, such as the audit log's before/after
/// states, where a pattern rule could mangle an ordinary value an undo restores.
pub fn scrub_known(text: &str) -> Cow<'_, str> {
    match known::replace_known(text) {
        Some(s) => Cow::Owned(s),
        None => Cow::Borrowed(text),
    }
}

/// Apply [`scrub_known`] to every string (and key) of a JSON value.
pub fn scrub_known_json(v: &mut Value) {
    match v {
        Value::String(s) => {
            if let Cow::Owned(o) = scrub_known(s) {
                *s = o;
            }
        }
        Value::Array(a) => a.iter_mut().for_each(scrub_known_json),
        Value::Object(m) => {
            let keys: Vec<String> = m.keys().cloned().collect();
            for k in keys {
                if let Some(mut child) = m.remove(&k) {
                    scrub_known_json(&mut child);
                    m.insert(scrub_known(&k).into_owned(), child);
                }
            }
        }
        _ => {}
    }
}

/// [`scrub`] without a copy when nothing matched.
pub fn scrub_cow(text: &str) -> Cow<'_, str> {
    let Some(p) = text::PATTERNS.as_ref() else {
        return Cow::Owned(format!("{MARK} (redaction unavailable, text withheld)"));
    };
    let known = known::replace_known(text);
    let cur = known.as_deref().unwrap_or(text);
    match (text::apply(p, cur), known) {
        (Some(s), _) | (None, Some(s)) => Cow::Owned(s),
        (None, None) => Cow::Borrowed(text),
    }
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
/// variable's name says it is a credential), or the reference it comes from. A value
/// withheld by name is remembered, so a copy elsewhere is scrubbed too.
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
        remember_value(value);
        return withheld_inline(value);
    }
    scrub(value)
}

fn withheld_inline(value: &str) -> String {
    format!("{MARK} ({} chars, set inline)", value.chars().count())
}

/// Inline env values anywhere in an object's JSON (`{name: DB_PASSWORD, value: hunter2}`
/// in a Pod, Deployment or CRD template): withheld (and remembered) when the name says
/// credential, scrubbed by content otherwise (`DATABASE_URL=postgres://u:pw@db`). YAML
/// puts name and value on separate lines, where [`scrub`] cannot pair them.
pub fn redact_env_values(v: &mut Value) {
    match v {
        Value::Object(map) => {
            let sensitive = map.get("name").and_then(Value::as_str).map(sensitive_name);
            if let (Some(sensitive), Some(Value::String(val))) = (sensitive, map.get_mut("value")) {
                if sensitive && !val.is_empty() {
                    remember_value(val);
                    *val = withheld_inline(val);
                } else if let Cow::Owned(s) = scrub_cow(val) {
                    *val = s;
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

/// Credentials passed on a command line, anywhere in an object's JSON: every array of
/// strings is treated as an argv (`command`, `args`, probe `exec.command`, a CRD's
/// `extraArgs`). A credential flag's value is withheld whether it is the next element
/// (`["--password", "s3cr3t"]`) or attached (`--password=s3cr3t`, MySQL's `-ps3cr3t`);
/// every other element is scrubbed by content (`["sh", "-c", "mysql -p's3cr3t' …"]`).
/// Withheld values are remembered.
pub fn redact_args(v: &mut Value) {
    match v {
        Value::Object(map) => map.iter_mut().for_each(|(_, child)| redact_args(child)),
        Value::Array(items) => {
            if items.iter().any(Value::is_string) {
                // Runs of consecutive strings are one argv each.
                let mut run: Vec<usize> = Vec::new();
                for i in 0..=items.len() {
                    if items.get(i).is_some_and(Value::is_string) {
                        run.push(i);
                        continue;
                    }
                    if !run.is_empty() {
                        let mut argv: Vec<String> = run
                            .iter()
                            .filter_map(|&j| items.get(j).and_then(Value::as_str))
                            .map(str::to_string)
                            .collect();
                        redact_argv(&mut argv);
                        for (&j, a) in run.iter().zip(argv) {
                            if let Some(slot) = items.get_mut(j) {
                                *slot = Value::String(a);
                            }
                        }
                        run.clear();
                    }
                }
            }
            items.iter_mut().for_each(redact_args);
        }
        _ => {}
    }
}

/// An argv for display (`describe`'s `Command:`/`Args:` lines), credentials withheld.
pub fn display_args(args: &[String]) -> String {
    let mut argv = args.to_vec();
    redact_argv(&mut argv);
    argv.join(" ")
}

/// The programs whose password flag is short (`-p`, `-a`) and means something else
/// elsewhere (`psql -p` is a port).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Program {
    Mysql,
    Sshpass,
    RedisCli,
    Other,
}

fn program(arg: &str) -> Option<Program> {
    let base = arg.rsplit('/').next().unwrap_or(arg);
    Some(match base {
        "mysql" | "mysqldump" | "mysqladmin" | "mysqlimport" | "mysqlcheck" | "mysqlpump"
        | "mysqlsh" | "mysqlbinlog" | "mariadb" | "mariadb-dump" | "mariadb-admin" => {
            Program::Mysql
        }
        "sshpass" => Program::Sshpass,
        "redis-cli" => Program::RedisCli,
        _ => return None,
    })
}

fn withhold(slot: &mut String, prefix: &str) {
    let value = &slot[prefix.len()..];
    if value.is_empty() || text::keep_flag_value(prefix, value) {
        return;
    }
    remember_value(value);
    *slot = format!("{prefix}{MARK}");
}

fn redact_argv(args: &mut [String]) {
    let mut prog = Program::Other;
    let mut i = 0;
    while i < args.len() {
        let a = args[i].clone();
        let next_is_value = args.get(i + 1).is_some_and(|n| !n.starts_with("--"));
        if a.starts_with('-') && a.len() > 1 {
            if let Some((flag, _)) = a.split_once('=') {
                if names::secret_flag(flag) {
                    withhold(&mut args[i], &format!("{flag}="));
                }
            } else if names::secret_flag(&a) && next_is_value {
                if let Some(next) = args.get_mut(i + 1) {
                    if !text::keep_flag_value(&a, next) {
                        withhold(next, "");
                    }
                }
                i += 2;
                continue;
            } else if prog == Program::Mysql && a.starts_with("-p") && a.len() > 2 {
                withhold(&mut args[i], "-p");
            } else if prog == Program::Sshpass && a.starts_with("-p") {
                if a.len() > 2 {
                    withhold(&mut args[i], "-p");
                } else if let Some(next) = args.get_mut(i + 1) {
                    withhold(next, "");
                    i += 2;
                    continue;
                }
            } else if prog == Program::RedisCli && a == "-a" {
                if let Some(next) = args.get_mut(i + 1) {
                    withhold(next, "");
                    i += 2;
                    continue;
                }
            } else if a == "-u" || a == "--user" {
                // curl: `-u user:password`; `docker -u 1000:1000` is a uid:gid.
                if let Some(next) = args.get_mut(i + 1) {
                    if let Some((user, pw)) = next.clone().split_once(':') {
                        let numeric =
                            |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
                        if !(numeric(user) && numeric(pw)) {
                            withhold(next, &format!("{user}:"));
                            i += 2;
                            continue;
                        }
                    }
                }
            }
        } else if let Some(p) = program(&a) {
            prog = p;
        }
        if let Cow::Owned(s) = scrub_cow(&args[i]) {
            args[i] = s;
        }
        i += 1;
    }
}

/// A ConfigMap's `data`/`binaryData`, judged entry by entry: withheld (and remembered)
/// when the key name says credential (`db_password`), scrubbed by content otherwise
/// (`config.yaml: "password: s3cr3t"`). A `binaryData` entry that decodes to text holding
/// a credential is withheld whole. The caller decides the object is a ConfigMap.
pub fn redact_configmap(obj: &mut Value) {
    for field in ["data", "binaryData"] {
        let Some(map) = obj.get_mut(field).and_then(Value::as_object_mut) else {
            continue;
        };
        for (key, v) in map.iter_mut() {
            let Some(s) = v.as_str() else { continue };
            let binary = field == "binaryData";
            let decoded = if binary {
                base64::engine::general_purpose::STANDARD
                    .decode(s.trim())
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
            } else {
                None
            };
            let n = if binary {
                base64_decoded_len(s)
            } else {
                s.len()
            };
            if sensitive_name(key) {
                remember_value(s);
                if let Some(d) = &decoded {
                    remember_value(d);
                }
                *v = Value::String(format!("<redacted: {n} bytes>"));
            } else if !binary {
                if let Cow::Owned(x) = scrub_cow(s) {
                    *v = Value::String(x);
                }
            } else if decoded
                .as_deref()
                .is_some_and(|d| matches!(scrub_cow(d), Cow::Owned(_)))
            {
                *v = Value::String(format!("<redacted: {n} bytes, held a credential>"));
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn patterns_compile() {
        if let Err(e) = text::build() {
            panic!("{e}");
        }
        assert!(text::PATTERNS.is_some());
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
            {"name": "DB_PASSWORD", "value": "zq-env-pw-41ab"},
            {"name": "LOG_LEVEL", "value": "debug"}
        ]}]}});
        redact_env_values(&mut v);
        let text = v.to_string();
        assert!(!text.contains("zq-env-pw-41ab"), "{text}");
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
        // A "does not hang" bound (debug build, shared CI cores); the bench measures.
        assert!(took < std::time::Duration::from_secs(5), "{took:?}");
    }

    // The registry of known values is process-wide and tests run in parallel: every
    // value remembered below is unique to its test (`zq-…`), and no other test's
    // expected output contains it.

    #[test]
    fn remembered_secret_values_are_replaced_in_every_form() {
        use base64::Engine as _;
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let secret = serde_json::json!({
            "kind": "Secret",
            "metadata": {"name": "app"},
            "type": "Opaque",
            "data": {
                "password": b64("zq-data-pw-7c1e\n"),
                "username": b64("zq-user-admin"),
                "short": b64("ab1"),
            },
            "stringData": {"api": "zq-string-\"quoted\"-91"}
        });
        remember_secret(&secret);
        // Decoded (trimmed), base64 and unpadded base64, JSON-escaped, percent-encoded.
        for (text, gone) in [
            ("echo zq-data-pw-7c1e done".to_string(), "zq-data-pw-7c1e"),
            (
                format!("blob {} end", b64("zq-data-pw-7c1e\n")),
                "emEtZGF0YS1wdy03YzFl",
            ),
            (
                format!("x={}", b64("zq-string-\"quoted\"-91").trim_end_matches('=')),
                "emEtc3RyaW5nLS",
            ),
            (
                r#"{"note":"zq-string-\"quoted\"-91"}"#.to_string(),
                "quoted",
            ),
            ("u=zq-string-%22quoted%22-91".to_string(), "quoted"),
        ] {
            let out = scrub(&text);
            assert!(!out.contains(gone), "{text} -> {out}");
            assert!(out.contains(SECRET_VALUE_MARK), "{out}");
        }
        // Identifying keys and values below the minimum are not hunted for.
        assert_eq!(scrub("user zq-user-admin ab1"), "user zq-user-admin ab1");
        // Remembering the same object again adds nothing.
        let n = known::remembered_forms();
        remember_secret(&secret);
        assert_eq!(known::remembered_forms(), n);
    }

    #[test]
    fn remembered_values_win_over_pattern_rules_and_short_values_are_ignored() {
        remember_value("zq-Plain-Value-3d");
        remember_value("zq1");
        let out = scrub("connected with zq-Plain-Value-3d, password=zq-Plain-Value-3d zq1");
        assert_eq!(
            out,
            "connected with [REDACTED:secret-value], password=[REDACTED:secret-value] zq1"
        );
    }

    #[test]
    fn guessable_and_identifying_secret_values_are_not_hunted_for() {
        use base64::Engine as _;
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        remember_secret(&serde_json::json!({"data": {
            "POSTGRES_PASSWORD": b64("postgres"),
            "DB_HOST": b64("zq-db-host.default.svc"),
            "client_id": b64("zq-client-id-0042"),
            "VAULT_SECRET_ID": b64("zq-vault-secret-id-43"),
        }}));
        let text = "user postgres cannot reach zq-db-host.default.svc as zq-client-id-0042";
        assert_eq!(scrub(text), text);
        assert!(!scrub("login zq-vault-secret-id-43").contains("zq-vault"));
    }

    #[test]
    fn typed_and_docker_config_secrets_are_remembered() {
        use base64::Engine as _;
        use k8s_openapi::api::core::v1::Secret;
        use k8s_openapi::ByteString;
        let auth = base64::engine::general_purpose::STANDARD.encode("robot:zq-docker-pw-55");
        let cfg = format!(r#"{{"auths":{{"reg.io":{{"auth":"{auth}"}}}}}}"#);
        let s = Secret {
            type_: Some("kubernetes.io/dockerconfigjson".into()),
            data: Some(
                [(
                    ".dockerconfigjson".to_string(),
                    ByteString(cfg.into_bytes()),
                )]
                .into_iter()
                .collect(),
            ),
            ..Default::default()
        };
        remember_k8s_secret(&s);
        let out = scrub("login robot / zq-docker-pw-55 ok");
        assert!(!out.contains("zq-docker-pw-55"), "{out}");
        // Helm release Secrets are skipped (large, no credentials worth hunting).
        let helm = serde_json::json!({"type": "helm.sh/release.v1",
            "stringData": {"release": "zq-helm-release-blob"}});
        remember_secret(&helm);
        assert_eq!(scrub("zq-helm-release-blob"), "zq-helm-release-blob");
    }

    #[test]
    fn env_withheld_by_name_is_remembered_and_other_values_are_scrubbed_by_content() {
        use k8s_openapi::api::core::v1::EnvVar;
        let pw = EnvVar {
            name: "MYSQL_PWD".into(),
            value: Some("zq-env-display-88".into()),
            ..Default::default()
        };
        assert!(env_display(&pw).starts_with("[REDACTED] (17 chars"));
        assert!(!scrub("echo zq-env-display-88").contains("zq-env-display-88"));
        let ttl = EnvVar {
            name: "TOKEN_TTL_SECONDS".into(),
            value: Some("300".into()),
            ..Default::default()
        };
        assert_eq!(env_display(&ttl), "300");

        let mut v = serde_json::json!({"spec": {"containers": [{"env": [
            {"name": "REDIS_AUTH", "value": "zq-redis-auth-61"},
            {"name": "DATABASE_URL", "value": "postgres://u:zq-url-pw-62@h/db"},
            {"name": "STORAGE", "value": "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=zq-acct-key-63==;EndpointSuffix=x"},
            {"name": "TOKEN_TTL_SECONDS", "value": "300"},
        ]}]}});
        redact_env_values(&mut v);
        let text = v.to_string();
        for gone in ["zq-redis-auth-61", "zq-url-pw-62", "zq-acct-key-63"] {
            assert!(!text.contains(gone), "{gone}: {text}");
        }
        assert!(text.contains("postgres://u:***@h/db"), "{text}");
        assert!(text.contains("EndpointSuffix=x"), "{text}");
        assert!(text.contains(r#""value":"300""#), "{text}");
        assert!(!scrub("auth zq-redis-auth-61").contains("zq-redis-auth-61"));
    }

    #[test]
    fn argv_arrays_lose_credential_values() {
        let mut v = serde_json::json!({"spec": {"template": {"spec": {
            "initContainers": [{"command": ["sh", "-c", "mysql -u root -p'zq-sh-pw-71' app < /x.sql"]}],
            "containers": [{
                "command": ["/bin/app"],
                "args": ["--password", "zq-arg-pw-72", "--db-token=zq-arg-tok-73", "--port", "8080",
                         "--password-file", "/run/pw", "--token-ttl", "300"],
                "livenessProbe": {"exec": {"command": ["mysqladmin", "-u", "root", "-pzq-probe-pw-74", "ping"]}},
            }, {
                "args": ["redis-cli", "-a", "zq-redis-cli-75", "-u", "admin:zq-curl-76"]
            }]
        }}}});
        redact_args(&mut v);
        let text = v.to_string();
        for gone in [
            "zq-sh-pw-71",
            "zq-arg-pw-72",
            "zq-arg-tok-73",
            "zq-probe-pw-74",
            "zq-redis-cli-75",
            "zq-curl-76",
        ] {
            assert!(!text.contains(gone), "{gone}: {text}");
        }
        for kept in [
            r#""--password","[REDACTED]""#,
            r#""--db-token=[REDACTED]""#,
            r#""--port","8080""#,
            r#""--password-file","/run/pw""#,
            r#""--token-ttl","300""#,
            r#""-p[REDACTED]","ping""#,
            r#""admin:[REDACTED]""#,
        ] {
            assert!(text.contains(kept), "{kept}: {text}");
        }
        // Values withheld structurally are remembered.
        assert!(!scrub("echo zq-arg-pw-72").contains("zq-arg-pw-72"));
        // A `-p` outside the MySQL family is not a password; `-u uid:gid` is not a login.
        let mut v = serde_json::json!({"args": ["psql", "-p", "5432", "-u", "1000:1000"]});
        redact_args(&mut v);
        assert_eq!(
            v["args"],
            serde_json::json!(["psql", "-p", "5432", "-u", "1000:1000"])
        );
        assert_eq!(
            display_args(&["app".into(), "--token".into(), "zq-display-77".into()]),
            "app --token [REDACTED]"
        );
    }

    #[test]
    fn configmaps_are_judged_by_key_name_and_by_content() {
        use base64::Engine as _;
        let bin = base64::engine::general_purpose::STANDARD.encode("api_key=zq-bin-key-83\n");
        let mut cm = serde_json::json!({
            "kind": "ConfigMap",
            "data": {
                "db_password": "zq-cm-pw-81",
                "config.yaml": "db:\n  password: zq-cm-yaml-82\n  host: db\n",
                "CACHE_KEY_PREFIX": "app:",
                "log_level": "debug",
            },
            "binaryData": {"settings.ini": bin, "logo.png": "iVBORw0KGgo="}
        });
        redact_configmap(&mut cm);
        let text = cm.to_string();
        for gone in ["zq-cm-pw-81", "zq-cm-yaml-82", "zq-bin-key-83"] {
            assert!(!text.contains(gone), "{gone}: {text}");
        }
        assert_eq!(cm["data"]["db_password"], "<redacted: 11 bytes>");
        assert_eq!(
            cm["data"]["config.yaml"],
            "db:\n  password: [REDACTED]\n  host: db\n"
        );
        assert_eq!(cm["data"]["CACHE_KEY_PREFIX"], "app:");
        assert_eq!(cm["data"]["log_level"], "debug");
        assert_eq!(cm["binaryData"]["logo.png"], "iVBORw0KGgo=");
        assert!(!scrub("pw zq-cm-pw-81").contains("zq-cm-pw-81"));
    }
}
