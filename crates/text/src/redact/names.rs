//! Which names say "this holds a credential": env var names, ConfigMap keys, `key=`
//! pairs in free text, command-line flags.
//!
//! Names are split into lowercase words (`DB_PASSWORD`, `dbPassword`, `db.password` and
//! `x-api-key` all split the same way) and judged by their words, so `TOKEN_TTL_SECONDS`
//! (a duration), `CACHE_KEY_PREFIX` (a prefix) and `secretName` (a reference) are told
//! apart from `API_TOKEN`, `SECRET_KEY` and `client_secret`.

/// Trailing words that only say how a credential is encoded: `PASSWORD_B64`,
/// `SIGNING_KEY_PEM` are judged by the word before.
const ENCODING_WORDS: &[&str] = &[
    "b64",
    "base64",
    "value",
    "val",
    "pem",
    "json",
    "hex",
    "raw",
    "enc",
    "encoded",
    "str",
    "string",
    "data",
    "txt",
    "text",
    "plain",
    "plaintext",
];

/// A last word that makes the whole name *about* a credential rather than the credential:
/// where it lives (`_FILE`, `_PATH`, `secretName`, `secretKeyRef`), how long it lasts
/// (`TOKEN_TTL_SECONDS`), how it is shaped (`PASSWORD_MIN_LENGTH`), whether it is on.
/// URLs and endpoints are judged by content instead (credentials in a URL are scrubbed).
const NON_SECRET_LAST: &[&str] = &[
    "file",
    "files",
    "path",
    "paths",
    "dir",
    "directory",
    "name",
    "names",
    "ref",
    "refs",
    "reference",
    "ttl",
    "seconds",
    "secs",
    "sec",
    "ms",
    "millis",
    "minutes",
    "mins",
    "hours",
    "days",
    "timeout",
    "expiry",
    "expiration",
    "expires",
    "lifetime",
    "duration",
    "age",
    "length",
    "len",
    "size",
    "count",
    "enabled",
    "enable",
    "disabled",
    "required",
    "mode",
    "type",
    "kind",
    "id",
    "header",
    "prefix",
    "suffix",
    "format",
    "algorithm",
    "algo",
    "alg",
    "version",
    "policy",
    "min",
    "max",
    "limit",
    "interval",
    "audience",
    "issuer",
    "url",
    "uri",
    "endpoint",
    "host",
    "hostname",
    "port",
    "user",
    "username",
    "location",
    "namespace",
    "region",
    "provider",
    "source",
    "store",
    "mount",
    "field",
    "scope",
    "scopes",
    "label",
    "labels",
    "annotation",
    "rotation",
    "requests",
    "request",
    "volume",
    "items",
    "keys",
];

/// First words that make the name a switch: `ENABLE_AUTH`, `DISABLE_TOKEN_CHECK`.
const SWITCH_FIRST: &[&str] = &[
    "enable", "disable", "use", "require", "skip", "no", "allow", "verify",
];

/// `X_KEY` is a credential unless X names a lookup key of some store.
const NON_SECRET_KEY_QUALIFIERS: &[&str] = &[
    "cache",
    "partition",
    "sort",
    "routing",
    "primary",
    "foreign",
    "object",
    "shard",
    "hash",
    "lookup",
    "label",
    "group",
    "idempotency",
    "dedup",
    "dedupe",
    "unique",
    "composite",
    "index",
    "row",
    "map",
    "s3",
    "bucket",
    "redis",
    "message",
    "event",
    "topic",
    "public",
    "pub",
    "publishable",
    "site",
    "field",
    "node",
    "selector",
    "match",
    "config",
    "annotation",
    "sharding",
    "ordering",
    "range",
    "metric",
    "tenant",
];

/// Words (or word endings) that name the credential itself.
const STRONG_ENDINGS: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "credential",
    "credentials",
    "pwd",
    "apikey",
    "accesskey",
    "secretkey",
    "privatekey",
    "authkey",
    "accountkey",
    "masterkey",
    "signingkey",
    "encryptionkey",
    "sessionkey",
    // Single-word flags and settings: redis `--requirepass`/`masterauth`, keytool
    // `-storepass`/`-keypass`.
    "requirepass",
    "masterauth",
    "masterpass",
    "storepass",
    "keypass",
    "dbpass",
    "rootpass",
    "adminpass",
    "userpass",
];

/// Lowercase words of a name: split at anything not alphanumeric and at lower→upper
/// case changes (`dbPassword` → `db`, `password`; `APIKey` stays one word, `apikey`).
pub(super) fn words(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for ch in name.chars() {
        if ch.is_ascii_alphanumeric() {
            if ch.is_ascii_uppercase() && prev_lower && !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            prev_lower = ch.is_ascii_lowercase() || ch.is_ascii_digit();
            cur.push(ch.to_ascii_lowercase());
        } else {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            prev_lower = false;
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The words that matter: trailing digits dropped from each (`password2`), trailing
/// encoding words dropped from the end (`PASSWORD_B64`).
fn core_words(name: &str) -> Vec<String> {
    let mut w: Vec<String> = words(name)
        .into_iter()
        .map(|w| {
            let t = w.trim_end_matches(|c: char| c.is_ascii_digit());
            // `password2` → `password`, but `s3` stays `s3`.
            if t.len() < 3 {
                w
            } else {
                t.to_string()
            }
        })
        .collect();
    while w.len() > 1
        && w.last()
            .is_some_and(|l| ENCODING_WORDS.contains(&l.as_str()))
    {
        w.pop();
    }
    w
}

fn strong(word: &str) -> bool {
    // `oldpwd` is the shell's previous directory, not a password.
    word != "oldpwd" && STRONG_ENDINGS.iter().any(|e| word.ends_with(e))
}

/// How a name is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Not a credential name.
    No,
    /// The value is a credential (unless it is a placeholder, reference or boolean).
    Yes,
    /// A bare word (`auth`, `pass`) that is a credential only when the value looks like one
    /// (`auth: dXNlcjpwYXNz` in a Docker config, not `auth: ldap`).
    IfCredentialLike,
    /// A credential only inside a URL query (`?sig=…`, `&X-Amz-Signature=…`).
    QueryOnly,
    /// A credential unless the value is a path (`PWD=/app` is the shell's directory).
    UnlessPath,
}

/// The verdict on a `key=value` / `key: value` key, a flag name or an XML tag found in
/// free text. Stricter than [`sensitive_name`]: the credential word must be the *last*
/// word, because text mentions credentials in many other ways (`secretName`,
/// `passwordFile`, `max_tokens`, `tokenExpirationSeconds`).
pub(super) fn text_key(key: &str) -> Verdict {
    let w = core_words(key);
    // `nginx.ingress.kubernetes.io/auth-secret: basic-auth`: a domain-qualified
    // annotation ending in "secret" names a Secret object.
    if let Some((domain, _)) = key.split_once('/') {
        if domain.contains('.') && w.last().is_some_and(|l| l == "secret" || l == "secrets") {
            return Verdict::No;
        }
    }
    let Some((last, prev)) = last_two(&w) else {
        return Verdict::No;
    };
    if NON_SECRET_LAST.contains(&last) {
        // A Vault AppRole `secret_id` is a credential, not an identifier.
        return if last == "id" && prev == Some("secret") {
            Verdict::Yes
        } else {
            Verdict::No
        };
    }
    if w.len() == 1 && (last == "pwd" || last == "oldpwd") {
        return Verdict::UnlessPath;
    }
    if last.ends_with("pwd") && last != "oldpwd" {
        return Verdict::UnlessPath;
    }
    if strong(last) {
        return Verdict::Yes;
    }
    match last {
        // Rails' `SECRET_KEY_BASE`.
        "base" if prev == Some("key") => text_key(&w[..w.len() - 1].join("_")),
        "pass" | "auth" if w.len() >= 2 => Verdict::Yes,
        "pass" | "auth" => Verdict::IfCredentialLike,
        "key" => match prev {
            Some(q) if !NON_SECRET_KEY_QUALIFIERS.contains(&q) => Verdict::Yes,
            _ => Verdict::No,
        },
        "signature" | "sig" => {
            if w.iter().any(|x| x == "access") {
                // Azure `SharedAccessSignature=` is a credential wherever it appears.
                Verdict::Yes
            } else {
                Verdict::QueryOnly
            }
        }
        _ => Verdict::No,
    }
}

/// The last word of `w` and the one before it, if any.
fn last_two(w: &[String]) -> Option<(&str, Option<&str>)> {
    let (last, rest) = w.split_last()?;
    Some((last.as_str(), rest.last().map(String::as_str)))
}

/// An env var or key name that says it holds a credential (`DB_PASSWORD`, `DB_PASS`,
/// `MYSQL_PWD`, `REDIS_AUTH`, `GPG_PASSPHRASE`, `GOOGLE_CREDENTIALS`, `API_KEY`,
/// `SECRET_KEY_BASE`, `ENCRYPTION_KEY`), as opposed to one that refers to or describes one
/// (`DB_PASSWORD_FILE`, `SECRET_NAME`, `TOKEN_TTL_SECONDS`, `CACHE_KEY_PREFIX`,
/// `MAX_TOKENS`). Used where a value is withheld by name alone (env vars, ConfigMap keys),
/// so it leans towards yes: a credential word anywhere in the name counts unless the
/// last word says the value is something else.
pub fn sensitive_name(name: &str) -> bool {
    let w = core_words(name);
    let Some((last, prev)) = last_two(&w) else {
        return false;
    };
    if w.len() == 1 && (last == "pwd" || last == "oldpwd") {
        return false;
    }
    if NON_SECRET_LAST.contains(&last) {
        return last == "id" && prev == Some("secret");
    }
    if w.len() >= 2
        && w.first()
            .is_some_and(|f| SWITCH_FIRST.contains(&f.as_str()))
    {
        return false;
    }
    if w.iter().any(|x| strong(x)) {
        return true;
    }
    match last {
        "pass" | "auth" => true,
        "key" => prev.is_some_and(|q| !NON_SECRET_KEY_QUALIFIERS.contains(&q)),
        _ => false,
    }
}

/// A command-line flag (`--db-password`, `-token`, `--pass`) whose value is a credential.
/// The name may carry its dashes.
pub(super) fn secret_flag(flag: &str) -> bool {
    let name = flag.trim_start_matches('-');
    if name.len() < 3 {
        // `-p` is a port for psql and a password only for the MySQL family; see the
        // command rules in `text`.
        return false;
    }
    matches!(
        text_key(name),
        Verdict::Yes | Verdict::IfCredentialLike | Verdict::UnlessPath
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitting() {
        assert_eq!(words("DB_PASSWORD"), ["db", "password"]);
        assert_eq!(words("dbPassword"), ["db", "password"]);
        assert_eq!(words("x-api-key"), ["x", "api", "key"]);
        assert_eq!(
            words("SharedAccessKeyName"),
            ["shared", "access", "key", "name"]
        );
        assert_eq!(words("APIKey"), ["apikey"]);
        assert_eq!(words("OAuth2Token"), ["oauth2", "token"]);
    }

    #[test]
    fn sensitive_names() {
        for n in [
            "DB_PASSWORD",
            "DB_PASS",
            "MYSQL_PWD",
            "REDIS_AUTH",
            "GPG_PASSPHRASE",
            "DOCKER_CREDENTIALS",
            "API_KEY",
            "SECRET_KEY",
            "PRIVATE_KEY",
            "SECRET_KEY_BASE",
            "ENCRYPTION_KEY",
            "STRIPE_KEY",
            "PGPASSWORD",
            "clientSecret",
            "db.password",
            "VAULT_SECRET_ID",
            "API_TOKEN",
            "DB_PASSWORD2",
            "JWT_SECRET",
            "SIGNING_KEY_PEM",
            "PASSWORD_B64",
            "AZURE_STORAGE_ACCOUNT_KEY",
            "db_password",
        ] {
            assert!(sensitive_name(n), "{n} should be sensitive");
        }
        for n in [
            "TOKEN_TTL_SECONDS",
            "CACHE_KEY_PREFIX",
            "CACHE_KEY",
            "ROUTING_KEY",
            "S3_KEY",
            "DB_PASSWORD_FILE",
            "SECRET_NAME",
            "secretName",
            "secretKeyRef",
            "MAX_TOKENS",
            "TOKENIZERS_PARALLELISM",
            "PASSWORD_MIN_LENGTH",
            "AWS_ACCESS_KEY_ID",
            "TOKEN_URL",
            "NEXTAUTH_URL",
            "PWD",
            "OLDPWD",
            "LOG_LEVEL",
            "BYPASS_CACHE",
            "PUBLIC_KEY",
            "ENABLE_AUTH",
            "SECRETS_MANAGER_REGION",
            "KEYCLOAK_URL",
            "config.yaml",
            "key",
        ] {
            assert!(!sensitive_name(n), "{n} should not be sensitive");
        }
    }

    #[test]
    fn text_keys() {
        assert_eq!(text_key("password"), Verdict::Yes);
        assert_eq!(text_key("X-API-KEY"), Verdict::Yes);
        assert_eq!(text_key("AccountKey"), Verdict::Yes);
        assert_eq!(text_key("SharedAccessKey"), Verdict::Yes);
        assert_eq!(text_key("SharedAccessKeyName"), Verdict::No);
        assert_eq!(text_key("SharedAccessSignature"), Verdict::Yes);
        assert_eq!(text_key("sig"), Verdict::QueryOnly);
        assert_eq!(text_key("auth"), Verdict::IfCredentialLike);
        assert_eq!(text_key("key"), Verdict::No);
        assert_eq!(text_key("Pwd"), Verdict::UnlessPath);
        assert_eq!(text_key("secretName"), Verdict::No);
        assert_eq!(text_key("tokenExpirationSeconds"), Verdict::No);
        assert_eq!(text_key("passwordFile"), Verdict::No);
        assert_eq!(text_key("max_tokens"), Verdict::No);
        assert_eq!(text_key("private_key_id"), Verdict::No);
        assert_eq!(text_key("password_value"), Verdict::Yes);
        assert_eq!(text_key("cpu_value"), Verdict::No);
        assert_eq!(text_key("SECRET_KEY_BASE"), Verdict::Yes);
        assert!(secret_flag("--db-password"));
        assert!(secret_flag("--pass"));
        assert!(secret_flag("-token"));
        assert!(!secret_flag("-p"));
        assert!(!secret_flag("--password-file"));
        assert!(!secret_flag("--token-ttl"));
    }
}
