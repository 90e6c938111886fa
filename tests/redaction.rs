//! The scrubber on realistic text: what a crash-looping app logs, what events say, what a
//! ConfigMap holds. Pattern-by-pattern cases live in `crates/text/src/redact.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kai::cluster::budget::fit_log;
use kai::redact::{
    redact_args, redact_configmap, redact_env_values, redact_secret_value, remember_secret, scrub,
    sensitive_name, SECRET_VALUE_MARK,
};

const JWT: &str = "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEyMyJ9.eyJpc3MiOiJrdWJlcm5ldGVzIiwic3ViIjoiYXBwIn0.Zm9vYmFyYmF6cXV4";

#[test]
fn a_crash_log_keeps_its_evidence_and_loses_its_credentials() {
    let log = format!(
        "2024-05-01T10:00:00Z starting backend v1.4.2\n\
         2024-05-01T10:00:00Z config: DATABASE_URL=postgres://app:Sup3rS3cret@db:5432/app\n\
         2024-05-01T10:00:01Z calling auth service with Authorization: Bearer {JWT}\n\
         2024-05-01T10:00:01Z aws: using key AKIAIOSFODNN7EXAMPLE\n\
         2024-05-01T10:00:02Z github token ghp_abcdefghijklmnopqrstuvwxyz0123456789\n\
         2024-05-01T10:00:02Z FATAL: password authentication failed for user \"app\"\n"
    );
    let out = scrub(&log);
    for secret in [
        "Sup3rS3cret",
        JWT,
        "eyJpc3Mi",
        "AKIAIOSFODNN7EXAMPLE",
        "ghp_abcdefghij",
    ] {
        assert!(!out.contains(secret), "{secret} leaked:\n{out}");
    }
    assert!(out.contains("FATAL: password authentication failed for user \"app\""));
    assert!(out.contains("postgres://app:***@db:5432/app"));
    assert!(out.contains("Authorization: Bearer [REDACTED"));
    assert_eq!(out.lines().count(), log.lines().count());
}

#[test]
fn scrubbing_then_budgeting_a_3000_line_log_keeps_the_fatal_line_and_no_token() {
    let mut log = String::new();
    for i in 0..1500 {
        log.push_str(&format!(
            "2024-05-01T10:{:02}:{:02}Z waiting for database db:5432 (attempt {i})\n",
            i / 60 % 60,
            i % 60
        ));
    }
    log.push_str(&format!(
        "2024-05-01T10:30:00Z retrying with Authorization: Bearer {JWT}\n"
    ));
    log.push_str("2024-05-01T10:30:01Z FATAL: password authentication failed for user \"app\"\n");
    for i in 0..1500 {
        log.push_str(&format!(
            "2024-05-01T10:31:{:02}Z shutting down worker {i}\n",
            i % 60
        ));
    }
    let start = std::time::Instant::now();
    let out = fit_log(&scrub(&log), 8000, "use tail_lines/since_seconds");
    let took = start.elapsed();
    assert!(
        out.contains("FATAL: password authentication failed"),
        "{out}"
    );
    assert!(!out.contains("eyJ"), "{out}");
    assert!(out.len() < 8500, "{}", out.len());
    assert!(out.contains("repeated 1500 times"), "{out}");
    assert!(took < std::time::Duration::from_secs(1), "{took:?}");
}

/// A Secret `name` holding one key (its value base64-encoded, as the API returns it).
fn secret(name: &str, key: &str, b64: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name},
        "data": {key: b64}
    })
}

#[test]
fn secrets_and_inline_env_never_show_values() {
    let mut secret = secret("db-creds", "password", "czNjcjN0LXZhbHVl");
    redact_secret_value(&mut secret);
    assert_eq!(secret["data"]["password"], "<redacted: 12 bytes>");

    let mut deploy = serde_json::json!({"spec": {"template": {"spec": {"containers": [{
        "name": "app",
        "env": [{"name": "STRIPE_API_KEY", "value": "live-key-material"}, {"name": "PORT", "value": "8080"}]
    }]}}}});
    redact_env_values(&mut deploy);
    let text = deploy.to_string();
    assert!(!text.contains("live-key-material"));
    assert!(text.contains("8080"));
}

#[test]
fn ordinary_operational_text_is_untouched() {
    let text = "Back-off restarting failed container app in pod backend-7d9c-x\n\
                MountVolume.SetUp failed for volume \"creds\" : secret \"db-creds\" not found\n\
                Error: couldn't find key password in Secret shop/db-creds\n\
                Readiness probe failed: HTTP probe failed with statuscode: 503\n\
                Successfully assigned shop/backend-7d9c-x to node-1\n\
                secretName: db-creds\n\
                tokenExpirationSeconds: 3607";
    assert_eq!(scrub(text), text);
}

#[test]
fn a_secret_read_once_is_scrubbed_wherever_it_reappears() {
    // The value has no `password=` in front of it anywhere below: only the registry of
    // known values can catch it.
    let mut secret = secret("payments", "stripe", "aXQtcmVhcHBlYXJzLTQ0Mg==");
    remember_secret(&secret);
    redact_secret_value(&mut secret);
    assert_eq!(secret["data"]["stripe"], "<redacted: 16 bytes>");
    let log = "2024-05-01T10:00:00Z retrying charge with it-reappears-442 (attempt 3)\n\
               2024-05-01T10:00:01Z dumping env blob aXQtcmVhcHBlYXJzLTQ0Mg==\n";
    let out = scrub(log);
    assert!(!out.contains("it-reappears-442"), "{out}");
    assert!(!out.contains("aXQtcmVhcHBlYXJzLTQ0Mg"), "{out}");
    assert_eq!(out.matches(SECRET_VALUE_MARK).count(), 2, "{out}");
    assert!(out.contains("(attempt 3)"));
}

#[test]
fn a_deployment_and_its_configmap_lose_every_planted_credential() {
    let mut deploy = serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment",
    "spec": {"template": {"spec": {"containers": [{
        "name": "api",
        "command": ["/app", "--db-password", "planted-arg-pw-1"],
        "args": ["--api-token=planted-arg-tok-2", "--listen", ":8080"],
        "env": [
            {"name": "DB_PASS", "value": "planted-env-pw-3"},
            {"name": "DATABASE_URL", "value": "mysql://app:planted-url-pw-4@db:3306/app"},
            {"name": "TOKEN_TTL_SECONDS", "value": "300"}
        ]
    }]}}}});
    redact_env_values(&mut deploy);
    redact_args(&mut deploy);
    let mut cm = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
        "data": {"db_password": "planted-cm-pw-5",
                 "app.properties": "spring.datasource.password=planted-cm-pw-6\nserver.port=8080\n"}});
    redact_configmap(&mut cm);
    let text = format!(
        "{}{}",
        scrub(&serde_yaml::to_string(&deploy).unwrap()),
        scrub(&serde_yaml::to_string(&cm).unwrap())
    );
    assert!(!text.contains("planted-"), "{text}");
    for kept in [
        "--listen",
        ":8080",
        "TOKEN_TTL_SECONDS",
        "'300'",
        "server.port=8080",
        "db_password",
    ] {
        assert!(text.contains(kept), "{kept} missing:\n{text}");
    }
}

#[test]
fn credential_names_are_told_from_names_about_credentials() {
    for n in [
        "DB_PASS",
        "MYSQL_PWD",
        "REDIS_AUTH",
        "GPG_PASSPHRASE",
        "GCP_CREDENTIALS",
        "API_KEY",
        "SECRET_KEY",
        "PRIVATE_KEY",
    ] {
        assert!(sensitive_name(n), "{n}");
    }
    for n in [
        "TOKEN_TTL_SECONDS",
        "CACHE_KEY_PREFIX",
        "DB_PASSWORD_FILE",
        "SECRET_NAME",
        "LOG_LEVEL",
    ] {
        assert!(!sensitive_name(n), "{n}");
    }
}
