//! Text in and out of kai, with no knowledge of clusters, models or terminals: what
//! every other kai crate uses to keep credentials and control sequences out of what it
//! sends, to bound what it parses, and to fit what it returns into a budget.

pub mod bounded;
pub mod budget;
pub mod egress;
pub mod quantity;
pub mod redact;
pub mod suggest;

/// 3200 → "3,200": a count (of tokens, bytes) as people read it.
pub fn group_digits(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `s` cut to at most `max` bytes on a char boundary.
pub fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Choose the process-wide TLS crypto provider (ring, as kube uses) before any TLS
/// connection. Idempotent; safe to call from tests.
#[cfg(feature = "tls")]
pub fn init_crypto() {
    // Err only means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[cfg(test)]
mod tests {
    #[test]
    fn digits_are_grouped_in_threes_from_the_right() {
        assert_eq!(super::group_digits(0), "0");
        assert_eq!(super::group_digits(999), "999");
        assert_eq!(super::group_digits(3200), "3,200");
        assert_eq!(super::group_digits(1234567), "1,234,567");
    }

    #[test]
    fn cut_keeps_whole_characters() {
        assert_eq!(super::cut("héllo", 10), "héllo");
        assert_eq!(super::cut("héllo", 2), "h");
        assert_eq!(super::cut("héllo", 3), "hé");
        assert_eq!(super::cut("", 0), "");
    }
}
