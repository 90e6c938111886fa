//! Names that go into request paths, checked before any request is built.
//!
//! The kube client puts names into URLs as given: its only check rejects an empty name.
//! A `#` cuts the path there and drops the query (a `dryRun=All` with it); `?` and `&`
//! add query parameters; `/` and `..` reach other objects. Every kind, namespace, name,
//! container and API version that comes from the model, a manifest or the user is
//! checked here against the Kubernetes naming rules, and path segments are
//! percent-encoded as well (defence in depth: a name that passes the rules never needs
//! encoding, but a future caller that skips them still cannot leave its segment).

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Why a name was refused; the message is for the model or the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {value:?}: {why}")]
pub struct NameError {
    pub what: &'static str,
    /// The value as given, shortened and with control characters escaped.
    pub value: String,
    pub why: String,
}

/// How a kind names its objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    /// DNS-1123 subdomain: lowercase letters, digits, `-` and `.`, at most 253
    /// characters, starting and ending with a letter or digit. Most kinds.
    Subdomain,
    /// A path segment: any printable ASCII but `/`, `%` and URL-special characters, not
    /// `.` or `..`. RBAC objects (`system:controller:job-controller`) use this.
    PathSegment,
}

/// The rule for a kind (by API group and kind name). RBAC kinds allow colons; every
/// other kind, built-in or custom, is held to the subdomain rule, which is what the API
/// server enforces for custom resources too.
pub fn rule_for(group: &str, kind: &str) -> NameRule {
    match (group, kind) {
        ("rbac.authorization.k8s.io", _) => NameRule::PathSegment,
        _ => NameRule::Subdomain,
    }
}

fn shown(value: &str) -> String {
    let mut s: String = value
        .chars()
        .take(80)
        .flat_map(char::escape_debug)
        .collect();
    if value.chars().count() > 80 {
        s.push('…');
    }
    s
}

fn err(what: &'static str, value: &str, why: impl Into<String>) -> NameError {
    NameError {
        what,
        value: shown(value),
        why: why.into(),
    }
}

/// `s` is not empty and at most `max` bytes long.
fn not_empty_nor_over(what: &'static str, s: &str, max: usize) -> Result<(), NameError> {
    if s.is_empty() {
        return Err(err(what, s, "it is empty"));
    }
    if s.len() > max {
        return Err(err(what, s, format!("it is longer than {max} characters")));
    }
    Ok(())
}

/// `s` holds only lowercase ASCII letters, digits and the characters in `also`
/// (`allowed` says so in words).
fn only(what: &'static str, s: &str, also: &str, allowed: &str) -> Result<(), NameError> {
    match s
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || also.contains(*c)))
    {
        Some(c) => Err(err(
            what,
            s,
            format!("{c:?} is not allowed ({allowed} only)"),
        )),
        None => Ok(()),
    }
}

/// DNS-1123 label: `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters.
fn dns1123_label(what: &'static str, s: &str) -> Result<(), NameError> {
    not_empty_nor_over(what, s, 63)?;
    only(what, s, "-", "lowercase letters, digits and '-'")?;
    if s.starts_with('-') || s.ends_with('-') {
        return Err(err(what, s, "it must start and end with a letter or digit"));
    }
    Ok(())
}

/// DNS-1123 subdomain: dot-separated labels, at most 253 characters.
fn dns1123_subdomain(what: &'static str, s: &str) -> Result<(), NameError> {
    not_empty_nor_over(what, s, 253)?;
    only(what, s, "-.", "lowercase letters, digits, '-' and '.'")?;
    for part in s.split('.') {
        if part.is_empty() || part.starts_with('-') || part.ends_with('-') {
            return Err(err(
                what,
                s,
                "each dot-separated part must start and end with a letter or digit",
            ));
        }
    }
    Ok(())
}

/// What the API server accepts as a path segment, narrowed to characters that need no
/// escaping in a URL path: no `/`, `%`, `?`, `#`, `&`, spaces or controls.
fn path_segment(what: &'static str, s: &str) -> Result<(), NameError> {
    not_empty_nor_over(what, s, 253)?;
    if s == "." || s == ".." {
        return Err(err(what, s, "'.' and '..' are not names"));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | ':' | '@' | '+')))
    {
        return Err(err(
            what,
            s,
            format!("{:?} is not allowed in an object name", c),
        ));
    }
    Ok(())
}

/// An object name under the rule of its kind.
pub fn check_name(rule: NameRule, name: &str) -> Result<(), NameError> {
    match rule {
        NameRule::Subdomain => dns1123_subdomain("object name", name),
        NameRule::PathSegment => path_segment("object name", name),
    }
}

/// A namespace: DNS-1123 label.
pub fn check_namespace(ns: &str) -> Result<(), NameError> {
    dns1123_label("namespace", ns)
}

/// A container name: DNS-1123 label.
pub fn check_container(name: &str) -> Result<(), NameError> {
    dns1123_label("container name", name)
}

/// An API group: empty (core) or a DNS-1123 subdomain.
pub fn check_group(group: &str) -> Result<(), NameError> {
    if group.is_empty() {
        return Ok(());
    }
    dns1123_subdomain("API group", group)
}

/// An API version as Kubernetes writes them: `v1`, `v2beta1`, `v1alpha3`.
pub fn check_version(version: &str) -> Result<(), NameError> {
    let bad = || {
        err(
            "API version",
            version,
            "expected a version like v1, v1beta1 or v2alpha1",
        )
    };
    let rest = version.strip_prefix('v').ok_or_else(bad)?;
    let digits = rest.chars().take_while(char::is_ascii_digit).count();
    if digits == 0 || digits > 3 {
        return Err(bad());
    }
    let tail = &rest[digits..];
    if tail.is_empty() {
        return Ok(());
    }
    let n = tail
        .strip_prefix("alpha")
        .or_else(|| tail.strip_prefix("beta"))
        .ok_or_else(bad)?;
    if n.is_empty() || n.len() > 3 || !n.chars().all(|c| c.is_ascii_digit()) {
        return Err(bad());
    }
    Ok(())
}

/// An `apiVersion` for `group` and `version` (both checked on their own): exactly
/// `version` for the core group, `group/version` otherwise. The client builds read
/// paths from it as given, and `/v1` splits into the core group and `v1` without being
/// one (it made `/api//v1/...`).
pub fn check_api_version(api_version: &str, group: &str, version: &str) -> Result<(), NameError> {
    let ok = if group.is_empty() {
        api_version == version
    } else {
        api_version
            .strip_prefix(group)
            .and_then(|rest| rest.strip_prefix('/'))
            == Some(version)
    };
    if ok {
        Ok(())
    } else {
        let want = if group.is_empty() {
            version.to_string()
        } else {
            format!("{group}/{version}")
        };
        Err(err(
            "API version",
            api_version,
            format!("expected {want:?}"),
        ))
    }
}

/// A resource's plural name as discovery reports it (lowercase, no separators). Checked
/// because a custom resource's plural comes from the cluster, which is untrusted too.
pub fn check_plural(plural: &str) -> Result<(), NameError> {
    dns1123_label("resource", plural)
}

/// Everything but unreserved characters and `:`/`@`/`+` (which RBAC names use and a
/// path segment allows) is escaped.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b':')
    .remove(b'@')
    .remove(b'+');

/// Percent-encode one path segment.
pub fn encode_segment(s: &str) -> String {
    let enc = utf8_percent_encode(s, SEGMENT).to_string();
    // `.` and `..` stay special in a path even though they are unreserved.
    match enc.as_str() {
        "." => "%2E".into(),
        ".." => "%2E%2E".into(),
        _ => enc,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_names_pass() {
        for n in [
            "web",
            "backend-75579ddc-74n4t",
            "a",
            "db.example.com",
            "x1-2",
        ] {
            check_name(NameRule::Subdomain, n).unwrap();
        }
        for n in [
            "system:controller:job-controller",
            "edit",
            "kai_test",
            "a@b",
        ] {
            check_name(NameRule::PathSegment, n).unwrap();
        }
        for ns in ["default", "kube-system", "shop", "a1"] {
            check_namespace(ns).unwrap();
        }
    }

    #[test]
    fn url_special_and_hostile_names_are_refused() {
        let hostile = [
            "web#",
            "web#x?dryRun=None",
            "web?dryRun=All&x=1",
            "web&follow=true",
            "../secrets/db",
            "a/b",
            "web%23",
            "web x",
            "web\n",
            "web\u{0}",
            "Web",
            "-web",
            "web-",
            "web..x",
            ".",
            "..",
            "",
            "wéb",
            "web\u{202e}",
            "web;rm -rf",
        ];
        for n in hostile {
            assert!(check_name(NameRule::Subdomain, n).is_err(), "{n:?}");
            assert!(check_namespace(n).is_err(), "{n:?}");
        }
        for n in [
            "a#b", "a?b", "a&b", "a/b", "a%2fb", ".", "..", "a b", "a\tb", "",
        ] {
            assert!(check_name(NameRule::PathSegment, n).is_err(), "{n:?}");
        }
        assert!(check_name(NameRule::Subdomain, &"a".repeat(254)).is_err());
        assert!(check_namespace(&"a".repeat(64)).is_err());
        check_namespace(&"a".repeat(63)).unwrap();
    }

    #[test]
    fn errors_say_what_and_why_without_raw_controls() {
        let e = check_name(NameRule::Subdomain, "web#\x1b[2J").unwrap_err();
        let m = e.to_string();
        assert!(m.contains("invalid object name"), "{m}");
        assert!(m.contains("'#' is not allowed"), "{m}");
        assert!(!m.contains('\x1b'), "{m}");
    }

    #[test]
    fn versions_and_groups() {
        for v in ["v1", "v1beta1", "v2alpha3", "v10"] {
            check_version(v).unwrap();
        }
        for v in [
            "", "1", "v", "v1#", "v1/../x", "v1beta", "V1", "v1?x=1", "v1gamma1",
        ] {
            assert!(check_version(v).is_err(), "{v:?}");
        }
        check_api_version("v1", "", "v1").unwrap();
        check_api_version("apps/v1", "apps", "v1").unwrap();
        for (av, g, v) in [
            ("/v1", "", "v1"),
            ("v1", "apps", "v1"),
            ("apps/v2", "apps", "v1"),
            ("appsx/v1", "apps", "v1"),
            ("apps//v1", "apps", "v1"),
        ] {
            assert!(check_api_version(av, g, v).is_err(), "{av:?}");
        }
        check_group("").unwrap();
        check_group("apps").unwrap();
        check_group("networking.k8s.io").unwrap();
        assert!(check_group("apps/v1").is_err());
        assert!(check_group("a#b").is_err());
    }

    #[test]
    fn segments_are_encoded() {
        for (raw, want) in [
            ("web", "web"),
            ("system:node:x", "system:node:x"),
            ("a#b?c&d/e f%", "a%23b%3Fc%26d%2Fe%20f%25"),
            ("..", "%2E%2E"),
            ("é", "%C3%A9"),
        ] {
            assert_eq!(encode_segment(raw), want, "{raw:?}");
        }
    }
}
