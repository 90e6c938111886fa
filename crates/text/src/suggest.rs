//! "Did you mean ...?": names close to a misspelt one.

/// Names that are close to `wanted` (prefix or small edit distance), at most three.
pub fn suggest(wanted: &str, candidates: &[String]) -> Vec<String> {
    let w = wanted.to_ascii_lowercase();
    let mut scored: Vec<(usize, &String)> = candidates
        .iter()
        .map(|c| {
            let l = c.to_ascii_lowercase();
            let d = if l.starts_with(&w) || w.starts_with(&l) {
                0
            } else {
                edit_distance(&w, &l)
            };
            (d, c)
        })
        .filter(|(d, _)| *d <= 2)
        .collect();
    scored.sort();
    scored.into_iter().take(3).map(|(_, c)| c.clone()).collect()
}

/// Levenshtein distance between two names.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_are_close_names() {
        let kinds: Vec<String> = ["Deployment", "DaemonSet", "Pod", "Service"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(suggest("deploymnt", &kinds), vec!["Deployment".to_string()]);
        assert_eq!(suggest("servic", &kinds), vec!["Service".to_string()]);
        assert!(suggest("frobnicator", &kinds).is_empty());
    }
}
