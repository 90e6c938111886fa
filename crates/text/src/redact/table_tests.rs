//! Table-driven cases for [`super::scrub`]: hostile inputs (each plants a value that must
//! vanish and names a fragment that must survive) and ordinary text that must come out
//! unchanged.
//!
//! The registry of known values is process-wide and tests run in parallel: values
//! planted here are never remembered by any test (structural tests use their own
//! `zq-…` values), so these rows see the pattern rules only.

use super::*;

/// (input, planted value that must vanish, fragment that must remain)
const HOSTILE: &[(&str, &str, &str)] = &[
    // 1. Connection strings: other schemes, empty user, encoded and unencoded specials.
    (
        "mongodb+srv://app:s3cr3tMongo@cluster0/db",
        "s3cr3tMongo",
        "mongodb+srv://app:***@cluster0/db",
    ),
    (
        "redis://:s3cr3tpass@redis:6379/0",
        "s3cr3tpass",
        "redis://:***@redis:6379/0",
    ),
    (
        "amqp://guest:pw123456@rabbit",
        "pw123456",
        "amqp://guest:***@rabbit",
    ),
    ("postgres://user:p%40ss@db", "p%40ss", "postgres://user:***@db"),
    (
        "dsn=postgres://u:p@ss@db:5432/app",
        "p@ss",
        "@db:5432/app",
    ),
    ("postgres://u:ab/cd@db/app", "ab/cd", "postgres://u:***@db/app"),
    (
        "redis://default:s3cr3tdef@redis:6379",
        "s3cr3tdef",
        "@redis:6379",
    ),
    (
        "jdbc:postgresql://db/app?user=app&password=s3cr3tJdbc&ssl=true",
        "s3cr3tJdbc",
        "user=app&password=[REDACTED]&ssl=true",
    ),
    (
        "Server=tcp:x.database.windows.net;User ID=a;Password=s3cr3tAdo;",
        "s3cr3tAdo",
        "Server=tcp:x.database.windows.net;User ID=a;Password=",
    ),
    (
        "Driver={ODBC};Server=x;Uid=a;Pwd=s3cr3tPwd;",
        "s3cr3tPwd",
        "Uid=a;Pwd=",
    ),
    (
        "Server=x;Password=two words here;Database=app",
        "words here",
        "Database=app",
    ),
    // 2. JSON, escaped JSON, other quoting.
    (
        r#"level=error msg="bad cfg {\"password\":\"hunter2xyz\"}""#,
        "hunter2xyz",
        r#"{\"password\":\""#,
    ),
    (
        r#"{"user": "app", "password": "hunter2xyz"}"#,
        "hunter2xyz",
        r#""user": "app""#,
    ),
    (
        r#"{"password": "pa\"ss-w0rd", "next": 1}"#,
        "ss-w0rd",
        r#""next": 1"#,
    ),
    (
        "{'password': 'py-s3cr3t', 'host': 'db'}",
        "py-s3cr3t",
        "'host': 'db'",
    ),
    (
        r#"password = "spaced value here""#,
        "value here",
        "password = ",
    ),
    (r#"{"apiKey":"AbC123xyz"}"#, "AbC123xyz", r#""apiKey""#),
    ("token: 'quoted-tok-123'", "quoted-tok-123", "token: '"),
    // 3. Flags.
    ("run --password s3cr3tFlag", "s3cr3tFlag", "run --password "),
    (
        "app --db-password s3cr3tFlag2 --host db",
        "s3cr3tFlag2",
        "--host db",
    ),
    (
        "cli --token abcdef123456 --verbose",
        "abcdef123456",
        "--verbose",
    ),
    ("app --password=s3cr3tEq", "s3cr3tEq", "--password="),
    (
        r#"app --password "two words" --x"#,
        "two words",
        "--x",
    ),
    (
        "mysql -h db -u root -ps3cr3tMy mydb",
        "s3cr3tMy",
        "mysql -h db -u root -p",
    ),
    (
        r#"sh -c "mysql -u root -p's3cr3t q' app""#,
        "s3cr3t q",
        "mysql -u root -p",
    ),
    (
        "curl -u admin:s3cr3tCurl https://x",
        "s3cr3tCurl",
        "curl -u admin:",
    ),
    ("sshpass -p s3cr3tSsh ssh host", "s3cr3tSsh", "ssh host"),
    (
        "redis-cli -h r -a s3cr3tRedCli ping",
        "s3cr3tRedCli",
        "ping",
    ),
    (
        "openssl pkcs12 -in x.p12 -passin pass:s3cr3tOssl",
        "s3cr3tOssl",
        "-passin pass:",
    ),
    (
        "PGPASSWORD=s3cr3tPg psql -h db",
        "s3cr3tPg",
        "psql -h db",
    ),
    // 4. Cloud connection strings and keys.
    (
        "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=Zm9vYmFyYmF6cXV4+/abc==;EndpointSuffix=core.windows.net",
        "Zm9vYmFyYmF6cXV4",
        "EndpointSuffix=core.windows.net",
    ),
    (
        "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=c2VjcmV0a2V5dmFsdWU=",
        "c2VjcmV0a2V5dmFsdWU",
        "SharedAccessKeyName=RootManageSharedAccessKey",
    ),
    (
        "BlobEndpoint=https://a.blob.core.windows.net/;SharedAccessSignature=sv=2020-08-04&ss=b&srt=sco&sp=rl&se=2030-01-01&sig=AbCd%2Bef123",
        "AbCd%2Bef123",
        "SharedAccessSignature=",
    ),
    (
        "GET https://a.blob.core.windows.net/c/x?sv=2020&sig=Zm9vYmFyc2ln%3D&se=2030",
        "Zm9vYmFyc2ln",
        "se=2030",
    ),
    (
        "https://b.s3.amazonaws.com/k?X-Amz-Credential=AKIDX%2F2024&X-Amz-Signature=0123abcdef99&X-Amz-Date=1",
        "0123abcdef99",
        "X-Amz-Date=1",
    ),
    (
        r#"{"type": "service_account", "private_key_id": "abc123", "private_key": "-----BEGIN PRIVATE KEY-----\nMIIEvgIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n", "client_email": "x@y.iam.gserviceaccount.com"}"#,
        "MIIEvgIBADAN",
        "client_email",
    ),
    (
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "wJalrXUtnFEMI",
        "aws_secret_access_key = ",
    ),
    (
        "export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "wJalrXUtnFEMI",
        "AWS_SECRET_ACCESS_KEY=",
    ),
    // 5. Separators inside values.
    ("password=ab&cd1234 user=app", "cd1234", "user=app"),
    ("password=ab;cd5678", "cd5678", "password="),
    ("password=ab,cd9012 next", "cd9012", " next"),
    (
        "password=${DB_PASSWORD}x-literal",
        "x-literal",
        "password=",
    ),
    // 6. Private-key blocks.
    (
        "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQOYBGRzdGVzdAEIAK\n=abcd\n-----END PGP PRIVATE KEY BLOCK-----\nafter",
        "lQOYBGRzdGVzdAEIAK",
        "after",
    ),
    (
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----",
        "b3BlbnNzaC1rZXktdjEA",
        "OPENSSH PRIVATE KEY",
    ),
    (
        "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,ABC\n\nMIIEowIBAAKCAQEAencrypted\n-----END RSA PRIVATE KEY-----",
        "MIIEowIBAAKCAQEAencrypted",
        "RSA PRIVATE KEY",
    ),
    (
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIFHzBJBgkqhkiG9w0BBQ0w\n-----END ENCRYPTED PRIVATE KEY-----",
        "MIIFHzBJBgkqhkiG9w0BBQ0w",
        "ENCRYPTED PRIVATE KEY",
    ),
    (
        "PuTTY-User-Key-File-2: ssh-rsa\nEncryption: none\nPrivate-Lines: 2\nAAAAgQCputtyprivate\nAAAAQQDmore\nPrivate-MAC: abc",
        "AAAAgQCputtyprivate",
        "Private-MAC",
    ),
    // 7. Docker registry auth.
    (
        r#"{"auths":{"reg.io":{"auth":"dXNlcjpwYXNz"}}}"#,
        "dXNlcjpwYXNz",
        r#""reg.io""#,
    ),
    (
        r#"msg="{\"auths\":{\"reg.io\":{\"auth\":\"dXNlcjpwYXNz\"}}}""#,
        "dXNlcjpwYXNz",
        "reg.io",
    ),
    // 8. Credential env names in text.
    ("DB_PASS=s3cr3tDbPass", "s3cr3tDbPass", "DB_PASS="),
    ("MYSQL_PWD=s3cr3tMysqlPwd", "s3cr3tMysqlPwd", "MYSQL_PWD="),
    ("REDIS_AUTH=s3cr3tRedis", "s3cr3tRedis", "REDIS_AUTH="),
    (
        r#"GPG_PASSPHRASE: "correct horse battery""#,
        "horse battery",
        "GPG_PASSPHRASE",
    ),
    (
        "SECRET_KEY_BASE=0123456789abcdef",
        "0123456789abcdef",
        "SECRET_KEY_BASE=",
    ),
    ("secret_id=vault-s3cr3t-id", "vault-s3cr3t-id", "secret_id="),
    // YAML block scalars, argv arrays, XML, headers.
    (
        "password: |\n  line-one-s3cr3t\n  line-two\nuser: app",
        "line-one-s3cr3t",
        "user: app",
    ),
    (
        r#"["--password", "s3cr3tArr"]"#,
        "s3cr3tArr",
        r#""--password""#,
    ),
    (
        r#"cmd=[\"--password\", \"s3cr3tArrEsc\"]"#,
        "s3cr3tArrEsc",
        "--password",
    ),
    (
        "args:\n- --password\n- s3cr3tYaml\n- --port=80",
        "s3cr3tYaml",
        "--port=80",
    ),
    (
        "<config><password>s3cr3tXml</password></config>",
        "s3cr3tXml",
        "</password></config>",
    ),
    (
        "Cookie: session=abc123def456; csrftoken=xyz",
        "abc123def456",
        "Cookie: ",
    ),
    (
        r#"{\"Authorization\":\"Basic dXNlcjpwYXNzd29yZA==\"}"#,
        "dXNlcjpwYXNzd29yZA",
        "Authorization",
    ),
    (
        "map[Authorization:[Basic dXNlcjpnb21hcA==] Accept:[*/*]]",
        "dXNlcjpnb21hcA",
        "Accept:[*/*]",
    ),
    // JSON escaped twice (a log line inside a JSON log inside a JSON string).
    (
        r#"{\\\"password\\\":\\\"dbl-esc-pw\\\", \\\"user\\\":1}"#,
        "dbl-esc-pw",
        r#"\\\"user\\\":1"#,
    ),
    ("password: 'it''s-s3cr3t'", "s-s3cr3t", "password: '"),
    (
        "machine api.example.com\n  login bot\n  password netrc-s3cr3t",
        "netrc-s3cr3t",
        "login bot",
    ),
    // Base64 key material may start with `/`; it is not a key file path.
    ("ssl_key: /K7MDENG/bPxRfiCYzz", "K7MDENG", "ssl_key: "),
    ("java -Dpassword=jvm-s3cr3t -jar app.jar", "jvm-s3cr3t", "-jar app.jar"),
    (
        "//registry.npmjs.org/:_authToken=npm_s3cr3tTok",
        "npm_s3cr3tTok",
        "//registry.npmjs.org/:_authToken=",
    ),
    (
        "client-key-data: LS0tLS1CRUdJTiBSU0E=",
        "LS0tLS1CRUdJTiBSU0E",
        "client-key-data: ",
    ),
    (
        "sh -c redis-server --requirepass s3cr3tReq --port 6379",
        "s3cr3tReq",
        "--port 6379",
    ),
    (
        "keytool -importkeystore -storepass changeit99 -keypass changeit98",
        "changeit9",
        "keytool -importkeystore -storepass ",
    ),
    (
        "credentials: {user: a, password: s3cr3tFlow}",
        "s3cr3tFlow",
        "{user: a, password: ",
    ),
    (
        "&Config{Host:db Password:gostruct-pw Port:5432}",
        "gostruct-pw",
        "Port:5432}",
    ),
];

/// Ordinary text that must come out unchanged.
const BENIGN: &[&str] = &[
    "token bucket refilled",
    "secretName: db-creds",
    "passwordFile: /etc/pw",
    "tokenExpirationSeconds: 3600",
    "Bearer authentication enabled",
    "key: app",
    "- key: app\n  operator: In\n  values: [web]",
    "max_tokens=500",
    "TOKEN_TTL_SECONDS=300",
    "PWD=/app",
    "OLDPWD=/",
    "cache_key=user:123",
    "routing_key=orders.created",
    "SharedAccessKeyName=RootManageSharedAccessKey",
    "DB_PASSWORD: <from secret db-creds key password>",
    "password: ${DB_PASSWORD}",
    "password=$(DB_PASSWORD)",
    r#"password: "{{ .Values.db.password }}""#,
    "automountServiceAccountToken: false",
    "see https://example.com:8443/users/bob",
    "listening on http://0.0.0.0:8080",
    "FATAL: password authentication failed for user \"app\"",
    "use token::Token;",
    "if token == expected {",
    "secretKeyRef:\n  name: db\n  key: password",
    r#""--password" is required"#,
    "error: --token is required",
    "psql -h db -p 5432 -U app",
    "docker run -u 1000:1000 img",
    "mysql -u root -p mydb",
    "auth: ldap",
    "authMode: oauth",
    "private_key_id: abc123",
    "tls.key: <redacted: 1675 bytes>",
    "passed=42 failed=0",
    "author: bob",
    "--token-ttl 300",
    "--password-file /run/secrets/pw",
    "--tls-key /certs/tls.key",
    "sig: valid",
    "tokens: 1234",
    "password: \"\"",
    "password: null",
    "password=********",
    "kubectl create secret generic x --from-literal=key=val",
    "couldn't find key password in Secret app/db-creds",
    "MountVolume.SetUp failed for volume \"creds\" : secret \"db-creds\" not found",
    "Readiness probe failed: HTTP probe failed with statuscode: 503",
    "INFO worker=3 request id=abc3 path=/api/v1/items status=200 took=12ms",
    "Cookie consent banner shown",
    "Access denied for user 'root'@'localhost' (using password: YES)",
    "ssl_key: /etc/ssl/private/server.key",
    "tls_key_file=/etc/tls.key",
    "password_set=true",
    "tokenType: Bearer",
    "imagePullSecrets:\n- name: regcred",
    "client-certificate-data: LS0tLS1CRUdJTiBDRVJU",
    "secretRef:\n  name: app-env",
    "nginx.ingress.kubernetes.io/auth-secret: basic-auth",
    "nginx.ingress.kubernetes.io/auth-type: basic",
    "secret: {name: foo}",
    "auth: {type: basic}",
    "Liveness: exec [mysqladmin -uroot -p$MYSQL_ROOT_PASSWORD ping]",
    "Using token from /var/run/secrets/kubernetes.io/serviceaccount/token",
    "token refresh failed: 401 Unauthorized",
    "Error: Invalid value for '--token': must be set",
    "password_hash: $2y$10$abcdefghijklmnopqrstuv",
    "access_token_expires_in=3600",
];

#[test]
fn hostile_rows_lose_their_planted_value() {
    assert!(HOSTILE.len() >= 40, "{}", HOSTILE.len());
    let mut failures = Vec::new();
    for (input, planted, keep) in HOSTILE {
        assert!(input.contains(planted), "bad row {input:?}");
        let out = scrub(input);
        if out.contains(planted) || !out.contains(keep) {
            failures.push(format!(
                "{input:?}\n   -> {out:?}\n   (must lose {planted:?}, keep {keep:?})"
            ));
        }
        // Idempotent: tool outputs are sometimes scrubbed twice (values, then the YAML).
        assert_eq!(scrub(&out), out, "second scrub changed {out:?}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn benign_rows_are_untouched() {
    let failures: Vec<String> = BENIGN
        .iter()
        .filter_map(|t| {
            let out = scrub(t);
            (out != *t).then(|| format!("{t:?}\n   -> {out:?}"))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_megabyte_is_scrubbed_and_adversarial_shapes_finish() {
    // Realistic: a long log with credentials planted in the middle and at the end.
    let mut log = String::with_capacity(1 << 20);
    let mut i = 0;
    while log.len() < (1 << 20) {
        log.push_str(&format!(
            "2024-05-01T10:00:{:02}Z INFO worker={i} path=/api/v1/items status=200 token bucket ok\n",
            i % 60
        ));
        if i == 5000 {
            log.push_str("conn postgres://app:planted-mid-pw@db:5432/app\n");
        }
        i += 1;
    }
    log.push_str(r#"{"password":"planted-end-pw"}"#);
    let out = scrub(&log);
    assert!(!out.contains("planted-mid-pw"));
    assert!(!out.contains("planted-end-pw"));
    assert!(out.contains("status=200 token bucket ok"));

    // Shapes that would make a careless scanner quadratic (a quarter megabyte each, which
    // a quadratic pass would not finish): one huge line of pairs, kept values nested in
    // each other, an unterminated escaped quote, keys with no end, flags with no values.
    let shapes = [
        "password=a ".repeat(25_000),
        "PWD=/a/".repeat(40_000),
        "auth=".repeat(50_000),
        format!("password: \"{}", "x\\\"".repeat(80_000)),
        "tokentokentoken".repeat(18_000),
        "--password ".repeat(25_000),
        "mysql ".repeat(45_000),
        format!("postgres://u:{}", "@".repeat(1 << 18)),
        "a,".repeat(130_000) + "password=x",
    ];
    for s in &shapes {
        let out = scrub(s);
        assert!(!out.is_empty());
    }
    assert!(!scrub(&shapes[0]).contains("=a "));
}
