//! Kubernetes quantities as numbers (`100m` → 0.1, `64Mi` → 67108864), for comparing a
//! request with its limit. Unparsable quantities are `None` (the schema pass or the API
//! server says why; a rule just does not compare them).

use serde_json::Value;

pub fn parse(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => parse_str(s),
        _ => None,
    }
}

pub fn parse_str(s: &str) -> Option<f64> {
    let s = s.trim();
    const SUFFIXES: &[(&str, f64)] = &[
        ("Ki", 1024.0),
        ("Mi", 1048576.0),
        ("Gi", 1073741824.0),
        ("Ti", 1099511627776.0),
        ("Pi", 1125899906842624.0),
        ("Ei", 1152921504606846976.0),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
    ];
    for (suffix, mult) in SUFFIXES {
        if let Some(num) = s.strip_suffix(suffix) {
            return num.parse::<f64>().ok().map(|n| n * mult);
        }
    }
    s.parse::<f64>().ok().filter(|n| n.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse_str("100m"), Some(0.1));
        assert_eq!(parse_str("2"), Some(2.0));
        assert_eq!(parse_str("64Mi"), Some(67108864.0));
        assert_eq!(parse_str("1G"), Some(1e9));
        assert_eq!(parse_str("1e3"), Some(1000.0));
        assert_eq!(parse_str("lots"), None);
    }
}
