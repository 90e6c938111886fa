//! What kai knows about models by name: list prices and context windows, as data in
//! `crates/llm/models.toml` compiled into the binary.
//!
//! A model is found by its exact name, else by the longest known name it starts with,
//! followed by a separator (`gpt-4o-mini-2024-07-18` → `gpt-4o-mini`, never `gpt-4o`).
//! Case is ignored, and a vendor prefix (`openai/gpt-4o`, as routers name models) is
//! dropped. Unknown models simply have no facts: no cost estimate, no window.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde::Deserialize;

const MODELS_TOML: &str = include_str!("../models.toml");

/// Characters that may follow a known name in a longer one (a date, a tag, a variant).
const SEPARATORS: &[char] = &['-', ':', '@', '.', '/', '_'];

/// One entry of the table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelInfo {
    /// USD per million prompt tokens.
    pub input_per_mtok: Option<f64>,
    /// USD per million completion tokens.
    pub output_per_mtok: Option<f64>,
    /// Tokens the model accepts, prompt and answer together.
    pub context_window: Option<u64>,
}

impl ModelInfo {
    /// (input, output) per million tokens, when both are known.
    pub fn prices(&self) -> Option<(f64, f64)> {
        self.input_per_mtok.zip(self.output_per_mtok)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    models: BTreeMap<String, ModelInfo>,
}

fn parse(text: &str) -> Result<BTreeMap<String, ModelInfo>, String> {
    let table: Table = toml::from_str(text).map_err(|e| e.to_string())?;
    // Names are matched lowercased; a table entry in another case could never match.
    if let Some(name) = table.models.keys().find(|n| n.to_ascii_lowercase() != **n) {
        return Err(format!("model name {name:?} is not lowercase"));
    }
    Ok(table.models)
}

static MODELS: LazyLock<BTreeMap<String, ModelInfo>> = LazyLock::new(|| {
    parse(MODELS_TOML).unwrap_or_else(|e| {
        // A unit test parses the file, so this is a build that skipped its tests; no
        // facts is a safe degradation (no cost estimate), not a reason to stop.
        tracing::warn!("the built-in model table does not parse: {e}");
        BTreeMap::new()
    })
});

/// The built-in facts for `model` and the table name they are filed under.
pub fn lookup(model: &str) -> Option<(&'static str, &'static ModelInfo)> {
    lookup_in(&MODELS, model)
}

fn lookup_in<'t>(
    table: &'t BTreeMap<String, ModelInfo>,
    model: &str,
) -> Option<(&'t str, &'t ModelInfo)> {
    let lower = model.trim().to_ascii_lowercase();
    let name = lower.rsplit_once('/').map_or(lower.as_str(), |(_, n)| n);
    if let Some((k, v)) = table.get_key_value(name) {
        return Some((k.as_str(), v));
    }
    table
        .iter()
        .filter(|(known, _)| {
            name.strip_prefix(known.as_str())
                .is_some_and(|rest| rest.starts_with(SEPARATORS))
        })
        .max_by_key(|(known, _)| known.len())
        .map(|(k, v)| (k.as_str(), v))
}

/// Tokens `model` accepts (prompt and answer together), if kai knows the model.
pub fn context_window(model: &str) -> Option<u64> {
    lookup(model).and_then(|(_, m)| m.context_window)
}

/// List prices (input, output) per million tokens, if kai knows them.
pub fn known_price(model: &str) -> Option<(f64, f64)> {
    lookup(model).and_then(|(_, m)| m.prices())
}

/// The prices to show for `model`: the configured ones when the configuration sets
/// either (a profile that prices only one side means the other is unknown, not the
/// list price), else the built-in list prices.
pub fn prices(
    model: &str,
    configured_input: Option<f64>,
    configured_output: Option<f64>,
) -> (Option<f64>, Option<f64>) {
    match (configured_input, configured_output) {
        (None, None) => known_price(model).unzip(),
        configured => configured,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn the_data_file_parses_and_every_entry_is_sane() {
        let table = parse(MODELS_TOML).unwrap();
        assert!(table.len() >= 9, "{} entries", table.len());
        for (name, m) in &table {
            assert!(
                !name.is_empty() && !name.contains(char::is_whitespace),
                "{name:?}"
            );
            assert!(
                !name.ends_with(SEPARATORS),
                "{name:?} ends in a separator and can never match as a prefix"
            );
            assert!(
                m.input_per_mtok.is_some() || m.context_window.is_some(),
                "{name} says nothing"
            );
            assert_eq!(
                m.input_per_mtok.is_some(),
                m.output_per_mtok.is_some(),
                "{name}: a price needs both sides"
            );
            for p in [m.input_per_mtok, m.output_per_mtok].into_iter().flatten() {
                assert!(p.is_finite() && p > 0.0 && p < 1000.0, "{name}: price {p}");
            }
            if let (Some(i), Some(o)) = (m.input_per_mtok, m.output_per_mtok) {
                assert!(o >= i, "{name}: output is never cheaper than input");
            }
            if let Some(w) = m.context_window {
                assert!((4_096..=10_000_000).contains(&w), "{name}: window {w}");
            }
        }
        // The static table is that same table (not the empty fallback).
        assert_eq!(MODELS.len(), table.len());
    }

    #[test]
    fn bad_tables_are_rejected() {
        assert!(parse("[models.\"a\"]\ninput_per_mtok = \"cheap\"").is_err());
        assert!(
            parse("[models.\"a\"]\nprice = 1.0").is_err(),
            "unknown field"
        );
        assert!(parse("[models.\"GPT-X\"]\ncontext_window = 8192").is_err());
        assert!(
            parse("[models.\"a\"]\n[models.\"a\"]").is_err(),
            "duplicate"
        );
    }

    #[test]
    fn dated_and_tagged_names_find_their_entry_and_never_a_bigger_sibling() {
        assert_eq!(known_price("gpt-4o-mini-2024-07-18"), Some((0.15, 0.60)));
        assert_eq!(known_price("gpt-4o-mini"), Some((0.15, 0.60)));
        assert_eq!(known_price("gpt-4o"), Some((2.50, 10.00)));
        assert_eq!(known_price("GPT-4o-2024-08-06"), Some((2.50, 10.00)));
        assert_eq!(known_price("openai/gpt-4.1-mini"), Some((0.40, 1.60)));
        assert_eq!(lookup("gpt-5-nano-2025-08-07").unwrap().0, "gpt-5-nano");
        assert_eq!(lookup("gpt-5-2025-08-07").unwrap().0, "gpt-5");
        assert_eq!(known_price("llama3"), None);
        assert_eq!(known_price("gpt-4oz"), None, "a prefix needs a separator");
        assert_eq!(known_price(""), None);
        assert_eq!(context_window("gpt-4o-mini-2024-07-18"), Some(128_000));
        assert_eq!(context_window("gpt-4.1-nano"), Some(1_047_576));
        assert_eq!(context_window("qwen2.5:7b"), None);
    }

    #[test]
    fn the_longest_prefix_wins_whatever_the_order() {
        let table = parse(
            "[models.\"m\"]\ncontext_window = 8192\n[models.\"m-large\"]\ncontext_window = 32768\n[models.\"m-large-v2\"]\ncontext_window = 65536",
        )
        .unwrap();
        let window = |name: &str| lookup_in(&table, name).and_then(|(_, m)| m.context_window);
        assert_eq!(window("m-large-v2-0501"), Some(65_536));
        assert_eq!(window("m-large-0501"), Some(32_768));
        assert_eq!(window("m-small"), Some(8_192));
        assert_eq!(window("m:latest"), Some(8_192));
        assert_eq!(window("mx"), None);
    }

    #[test]
    fn configured_prices_override_the_list() {
        assert_eq!(prices("gpt-4o", None, None), (Some(2.50), Some(10.00)));
        assert_eq!(
            prices("gpt-4o", Some(1.0), Some(2.0)),
            (Some(1.0), Some(2.0))
        );
        assert_eq!(
            prices("gpt-4o", Some(1.0), None),
            (Some(1.0), None),
            "one configured side does not borrow the other from the list"
        );
        assert_eq!(prices("local-model", None, None), (None, None));
        assert_eq!(
            prices("local-model", Some(0.0), Some(0.0)),
            (Some(0.0), Some(0.0))
        );
    }
}
