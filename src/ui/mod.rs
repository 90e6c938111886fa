//! Rendering events for people and for programs.
//!
//! stdout carries the answer (and JSON); stderr carries progress: the spinner, one line
//! per tool call, usage and notices. Front ends hand every [`Event`] to a sink.

pub mod human;
pub mod json;
pub mod markdown;
pub mod prompt;
pub mod spinner;
pub mod term;

use crate::llm::Usage;

/// Short human size: 812 B, 4.2 KB.
pub fn human_bytes(n: usize) -> String {
    if n < 1024 {
        format!("{n} B")
    } else if n < 1024 * 1024 {
        format!("{:.1} KB", n as f64 / 1024.0)
    } else {
        format!("{:.1} MB", n as f64 / (1024.0 * 1024.0))
    }
}

/// "tokens: 3,120 in (2,048 cached) / 410 out (≈ $0.0007)". "cached" is the part of
/// the prompt the provider says it read from its prompt cache; it appears only when the
/// provider reported some. The cost prices every prompt token at the full input price
/// (kai has no cached-input prices), so with caching it is an upper bound.
pub fn usage_line(usage: &Usage, prices: Option<(f64, f64)>) -> String {
    let cached = if usage.cached_tokens > 0 {
        format!(" ({} cached)", group(usage.cached_tokens))
    } else {
        String::new()
    };
    let mut s = format!(
        "tokens: {} in{cached} / {} out",
        group(usage.prompt_tokens),
        group(usage.completion_tokens)
    );
    if let Some((i, o)) = prices {
        let cost =
            crate::llm::pricing::cost_usd(usage.prompt_tokens, usage.completion_tokens, i, o);
        s.push_str(&format!(" (≈ ${cost:.4})"));
    }
    s
}

fn group(n: u64) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_line_groups_digits_and_prices() {
        let u = Usage {
            prompt_tokens: 12345,
            completion_tokens: 67,
            total_tokens: 12412,
            cached_tokens: 0,
        };
        assert_eq!(usage_line(&u, None), "tokens: 12,345 in / 67 out");
        assert!(usage_line(&u, Some((0.15, 0.6))).contains("$0.0019"));
        let cached = Usage {
            cached_tokens: 10240,
            ..u
        };
        assert_eq!(
            usage_line(&cached, None),
            "tokens: 12,345 in (10,240 cached) / 67 out"
        );
        // No cached-input prices: the cost stays the full-price estimate.
        assert!(usage_line(&cached, Some((0.15, 0.6))).ends_with("(≈ $0.0019)"));
    }

    #[test]
    fn bytes_are_short() {
        assert_eq!(human_bytes(812), "812 B");
        assert_eq!(human_bytes(4300), "4.2 KB");
    }
}
