//! Known list prices (USD per million tokens) for the cost estimate. A profile's own
//! prices win; an unknown model simply shows no cost.

/// (input, output) per million tokens.
pub fn known_price(model: &str) -> Option<(f64, f64)> {
    let m = model.to_ascii_lowercase();
    // Longest prefixes first: "gpt-4o-mini" must not match "gpt-4o".
    const TABLE: &[(&str, f64, f64)] = &[
        ("gpt-4o-mini", 0.15, 0.60),
        ("gpt-4o", 2.50, 10.00),
        ("gpt-4.1-nano", 0.10, 0.40),
        ("gpt-4.1-mini", 0.40, 1.60),
        ("gpt-4.1", 2.00, 8.00),
        ("o4-mini", 1.10, 4.40),
        ("gpt-5-mini", 0.25, 2.00),
        ("gpt-5-nano", 0.05, 0.40),
        ("gpt-5", 1.25, 10.00),
    ];
    TABLE
        .iter()
        .find(|(p, _, _)| m.starts_with(p))
        .map(|(_, i, o)| (*i, *o))
}

pub fn cost_usd(prompt_tokens: u64, completion_tokens: u64, input: f64, output: f64) -> f64 {
    (prompt_tokens as f64 * input + completion_tokens as f64 * output) / 1_000_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mini_is_not_priced_as_its_big_sibling() {
        assert_eq!(known_price("gpt-4o-mini-2024-07-18"), Some((0.15, 0.60)));
        assert_eq!(known_price("gpt-4o"), Some((2.50, 10.00)));
        assert_eq!(known_price("llama3"), None);
    }

    #[test]
    fn cost_is_per_million() {
        let c = cost_usd(1_000_000, 500_000, 0.15, 0.60);
        assert!((c - 0.45).abs() < 1e-9, "{c}");
    }
}
