//! Kubernetes resource quantities ("500m", "1.5", "128Mi", "1G", "1e3") as plain
//! numbers: the one parser kai has (kai-analyze's rules, kai-cluster's describe and
//! kai-manifest's lint rules all use it).

/// Parse a quantity into base units (cores for CPU, bytes for memory); None when it is
/// not one.
pub fn parse_quantity(q: &str) -> Option<f64> {
    let q = q.trim();
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+'))
        .unwrap_or(q.len());
    let (num, suffix) = q.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mult = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "u" => 1e-6,
        "n" => 1e-9,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024.0_f64.powi(4),
        "Pi" => 1024.0_f64.powi(5),
        "Ei" => 1024.0_f64.powi(6),
        s if s.starts_with('e') || s.starts_with('E') => 10f64.powi(s[1..].parse().ok()?),
        _ => return None,
    };
    Some(n * mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cpu_and_memory() {
        assert_eq!(parse_quantity("500m"), Some(0.5));
        assert_eq!(parse_quantity("100m"), Some(0.1));
        assert_eq!(parse_quantity("2"), Some(2.0));
        assert_eq!(parse_quantity("128Mi"), Some(134_217_728.0));
        assert_eq!(parse_quantity("64Mi"), Some(67108864.0));
        assert_eq!(parse_quantity("1G"), Some(1e9));
        assert_eq!(parse_quantity("1e3"), Some(1000.0));
        assert_eq!(parse_quantity("abc"), None);
        assert_eq!(parse_quantity("lots"), None);
        // Suffixes describe's own parser used to miss.
        assert_eq!(parse_quantity("250u"), Some(250e-6));
        assert_eq!(parse_quantity("1Pi"), Some(1024f64.powi(5)));
        assert_eq!(parse_quantity(" 2Ki "), Some(2048.0));
        // Exa, binary and decimal, which the manifest rules' parser knew.
        assert_eq!(parse_quantity("1E"), Some(1e18));
        assert_eq!(parse_quantity("1Ei"), Some(1024f64.powi(6)));
    }
}
