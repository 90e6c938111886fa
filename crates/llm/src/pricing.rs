//! The cost estimate. Known list prices live in the model table ([`crate::models`]);
//! a profile's own prices win; an unknown model simply shows no cost.

/// (input, output) per million tokens, from the built-in model table.
pub fn known_price(model: &str) -> Option<(f64, f64)> {
    crate::models::known_price(model)
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
