//! Output budgets: every tool result is cut to fit a tool's budget (`ToolEnv::budget_tokens` in kai-tools), and says
//! what was cut and how to ask for more. Pure functions, so the shape of what the model
//! sees is tested without a cluster.
//!
//! Logs keep their head (start-up) and tail (the crash), fold runs of repeated lines,
//! and rescue error-looking lines from the cut middle, because a crash loop's cause is
//! often one FATAL line among thousands of retries.

use std::sync::LazyLock;

use regex::Regex;

/// Rough size of a token for English text and logs; good enough to budget with.
pub const CHARS_PER_TOKEN: usize = 4;
/// Lines longer than this are cut (minified JSON, base64 blobs).
pub const MAX_LINE_CHARS: usize = 1000;
/// Fewer repeats than this are shown as they are.
const MIN_REPEATS: usize = 3;
/// Longest repeating block of lines that is detected (retry loops print 2–4 lines).
const MAX_PERIOD: usize = 4;

/// kai's one token estimator (no tokenizer: budgets only need the order of magnitude).
/// Every budget in kai — tool output, pre-gathering, the agent's context — counts with
/// these three functions.
pub fn estimate_tokens(text: &str) -> usize {
    tokens_for_bytes(text.len())
}

/// Estimated tokens of `bytes` bytes of text, rounded up.
pub fn tokens_for_bytes(bytes: usize) -> usize {
    bytes.div_ceil(CHARS_PER_TOKEN)
}

/// Bytes of text that fit `tokens` estimated tokens.
pub fn bytes_for_tokens(tokens: usize) -> usize {
    tokens.saturating_mul(CHARS_PER_TOKEN)
}

/// A tool output's budget in characters for `tokens`: never so small that an error
/// message or a short listing would not fit.
pub fn chars_for(tokens: usize) -> usize {
    bytes_for_tokens(tokens).max(400)
}

/// The line with every word that contains a digit (timestamps, ids, counters,
/// durations) replaced by `#`, so that "retry 1 of 5 at 10:00:01" and "retry 2 of 5 at
/// 10:00:03" compare equal.
pub fn normalize_line(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if word.chars().any(|c| c.is_ascii_digit()) {
            out.push('#');
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in line.chars() {
        if c.is_alphanumeric() || c == '_' {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// Cut a line longer than `max` chars, saying how much went.
pub fn cut_line(line: &str, max: usize) -> String {
    let n = line.chars().count();
    if n <= max {
        return line.to_string();
    }
    let head: String = line.chars().take(max).collect();
    format!("{head} … [{} more chars cut]", n - max)
}

/// Fold runs of identical or near-identical lines (and repeating blocks of up to four
/// lines) into the first occurrence plus "… (repeated N times)". When the copies differ
/// in their numbers, the last copy is shown too, so the newest timestamp survives.
pub fn fold_repeats(lines: &[String]) -> Vec<String> {
    let keys: Vec<String> = lines.iter().map(|l| normalize_line(l)).collect();
    let n = lines.len();
    let mut out = Vec::with_capacity(n.min(4096));
    let mut i = 0;
    while i < n {
        let mut best: Option<(usize, usize)> = None; // (period, repeats)
        for p in 1..=MAX_PERIOD {
            if i + 2 * p > n {
                break;
            }
            // A block that is itself one line repeated is a period-1 run.
            if p > 1 && keys[i..i + p].iter().all(|k| *k == keys[i]) {
                continue;
            }
            let mut reps = 1;
            while i + (reps + 1) * p <= n
                && keys[i + reps * p..i + (reps + 1) * p] == keys[i..i + p]
            {
                reps += 1;
            }
            if reps >= MIN_REPEATS && best.is_none_or(|(bp, br)| reps * p > bp * br) {
                best = Some((p, reps));
            }
        }
        match best {
            Some((p, reps)) => {
                out.extend(lines[i..i + p].iter().cloned());
                let last = i + (reps - 1) * p;
                let identical = lines[i..i + p] == lines[last..last + p];
                let what = if p == 1 {
                    String::new()
                } else {
                    format!("these {p} lines ")
                };
                if identical {
                    out.push(format!("… ({what}repeated {reps} times)"));
                } else {
                    out.push(format!(
                        "… ({what}repeated {reps} times with varying numbers; the last:)"
                    ));
                    out.extend(lines[last..last + p].iter().cloned());
                }
                i += reps * p;
            }
            None => {
                out.push(lines[i].clone());
                i += 1;
            }
        }
    }
    out
}

static IMPORTANT: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b(fatal|panic|panicked|error|err|exception|traceback|caused by|failed|failure|killed|oom|out of memory|denied|refused|timed? ?out|unable|cannot|can't|no such|not found|segfault|exit(ed)? (code|status))\b",
    )
    .ok()
});

/// Whether a log line looks like it says what went wrong.
pub fn is_important(line: &str) -> bool {
    IMPORTANT.as_ref().is_some_and(|re| re.is_match(line))
}

/// Fit a log into `budget_chars`: cut very long lines, fold repeats, then keep the head
/// and the tail, plus the error-looking lines of the cut middle. `more` tells the model
/// how to ask for a different window (e.g. "use tail_lines/since_seconds").
pub fn fit_log(text: &str, budget_chars: usize, more: &str) -> String {
    let raw_count = text.lines().count();
    let mut long_cut = 0usize;
    let lines: Vec<String> = text
        .lines()
        .map(|l| {
            if l.len() > MAX_LINE_CHARS && l.chars().count() > MAX_LINE_CHARS {
                long_cut += 1;
                cut_line(l, MAX_LINE_CHARS)
            } else {
                l.to_string()
            }
        })
        .collect();
    let folded = fold_repeats(&lines);
    let mut notes = Vec::new();
    if folded.len() < lines.len() {
        notes.push(format!(
            "{} repeated lines folded",
            lines.len() - folded.len()
        ));
    }
    if long_cut > 0 {
        notes.push(format!(
            "{long_cut} lines longer than {MAX_LINE_CHARS} chars cut"
        ));
    }
    let total: usize = folded.iter().map(|l| l.len() + 1).sum();
    if total <= budget_chars {
        let mut out = folded.join("\n");
        if !notes.is_empty() {
            out.push_str(&format!("\n[log: {raw_count} lines; {}]", notes.join("; ")));
        }
        return out;
    }

    // Head for start-up context, tail for the crash; the rest goes to rescued lines.
    let footer_reserve = 300;
    let usable = budget_chars.saturating_sub(footer_reserve).max(200);
    let head_budget = usable / 4;
    let rescue_budget = usable / 6;
    let mut head_end = 0;
    let mut used = 0;
    while head_end < folded.len() && used + folded[head_end].len() < head_budget {
        used += folded[head_end].len() + 1;
        head_end += 1;
    }
    let head_used = used;

    // Rescue error-looking lines from the middle (after the head, before a provisional
    // tail), one per distinct shape, newest kept when over budget.
    let mut tail_budget = usable.saturating_sub(head_used);
    let mut tail_start = folded.len();
    let mut used = 0;
    while tail_start > head_end
        && used + folded[tail_start - 1].len() < tail_budget.saturating_sub(rescue_budget)
    {
        used += folded[tail_start - 1].len() + 1;
        tail_start -= 1;
    }
    let mut rescued: Vec<&String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut rescue_used = 0;
    for line in folded[head_end..tail_start].iter().rev() {
        if line.starts_with("… (") || !is_important(line) || !seen.insert(normalize_line(line)) {
            continue;
        }
        if rescue_used + line.len() + 3 > rescue_budget {
            break;
        }
        rescue_used += line.len() + 3;
        rescued.push(line);
    }
    rescued.reverse();
    // Give what the rescue did not need back to the tail.
    tail_budget = tail_budget.saturating_sub(rescue_used);
    while tail_start > head_end && used + folded[tail_start - 1].len() < tail_budget {
        used += folded[tail_start - 1].len() + 1;
        tail_start -= 1;
    }
    let rescued: Vec<&String> = rescued
        .into_iter()
        .filter(|l| !folded[tail_start..].iter().any(|t| std::ptr::eq(t, *l)))
        .collect();

    let cut = tail_start - head_end;
    let mut out = String::with_capacity(budget_chars + 256);
    for l in &folded[..head_end] {
        out.push_str(l);
        out.push('\n');
    }
    if rescued.is_empty() {
        out.push_str(&format!("… [{cut} lines cut here]\n"));
    } else {
        out.push_str(&format!(
            "… [{cut} lines cut here; {} error-looking lines from them kept:]\n",
            rescued.len()
        ));
        for l in &rescued {
            out.push_str("  ");
            out.push_str(l);
            out.push('\n');
        }
        out.push_str("… [end of kept lines]\n");
    }
    for l in &folded[tail_start..] {
        out.push_str(l);
        out.push('\n');
    }
    notes.push(format!(
        "showing the first {head_end} and last {} lines, {cut} cut to fit the output budget",
        folded.len() - tail_start
    ));
    out.push_str(&format!(
        "[log: {raw_count} lines; {}; {more}]",
        notes.join("; ")
    ));
    out
}

/// Align `rows` under `headers` and cut to `budget_chars`, saying how many rows went and
/// how to narrow (`more`, e.g. "narrow with label_selector").
pub fn fit_table(
    headers: &[&str],
    rows: &[Vec<String>],
    budget_chars: usize,
    more: &str,
) -> String {
    const MAX_CELL: usize = 60;
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| cut_cell(c, MAX_CELL)).collect())
        .collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in &cells {
        for (i, c) in r.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let fmt_row = |r: &[String]| -> String {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(c);
            } else {
                let w = widths.get(i).copied().unwrap_or(0);
                line.push_str(c);
                line.push_str(&" ".repeat(w.saturating_sub(c.chars().count()) + 2));
            }
        }
        line.trim_end().to_string()
    };
    let header: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    let mut out = fmt_row(&header);
    let reserve = 120;
    let mut shown = 0;
    for r in &cells {
        let line = fmt_row(r);
        if out.len() + line.len() + 1 + reserve > budget_chars && shown > 0 {
            break;
        }
        out.push('\n');
        out.push_str(&line);
        shown += 1;
    }
    if shown < cells.len() {
        out.push_str(&format!(
            "\n… {} more rows ({} in total), {more}",
            cells.len() - shown,
            cells.len()
        ));
    }
    out
}

fn cut_cell(c: &str, max: usize) -> String {
    let one_line = c.replace('\n', " ");
    if one_line.chars().count() <= max {
        one_line
    } else {
        let s: String = one_line.chars().take(max - 1).collect();
        format!("{s}…")
    }
}

/// Cut free text (describe output, YAML) at a line boundary to `budget_chars`.
pub fn fit_text(text: &str, budget_chars: usize, more: &str) -> String {
    if text.len() <= budget_chars {
        return text.to_string();
    }
    let reserve = 160;
    let mut out = String::new();
    let mut lines = text.lines();
    let mut kept = 0;
    for l in lines.by_ref() {
        let l = cut_line(l, MAX_LINE_CHARS);
        if out.len() + l.len() + 1 + reserve > budget_chars {
            let rest = 1 + lines.count();
            out.push_str(&format!("… [output cut: {rest} more lines; {more}]"));
            return out;
        }
        out.push_str(&l);
        out.push('\n');
        kept += 1;
    }
    let _ = kept;
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn normalizes_numbers_and_ids() {
        assert_eq!(
            normalize_line("2024-05-01T10:00:01Z retry 3 of 5 id=ab12cd"),
            normalize_line("2024-05-01T10:00:09Z retry 4 of 5 id=ff99ee")
        );
        assert_ne!(
            normalize_line("connect ok"),
            normalize_line("connect failed")
        );
    }

    #[test]
    fn folds_identical_runs() {
        let mut lines = s(&["start"]);
        lines.extend(std::iter::repeat_n("waiting for db".to_string(), 812));
        lines.push("FATAL: gave up".into());
        let out = fold_repeats(&lines);
        assert_eq!(
            out,
            s(&[
                "start",
                "waiting for db",
                "… (repeated 812 times)",
                "FATAL: gave up"
            ])
        );
    }

    #[test]
    fn folds_near_identical_runs_and_keeps_the_last() {
        let lines: Vec<String> = (0..100)
            .map(|i| format!("10:00:{i:02} retry {i}"))
            .collect();
        let out = fold_repeats(&lines);
        assert_eq!(out.len(), 3, "{out:?}");
        assert_eq!(out[0], "10:00:00 retry 0");
        assert!(out[1].contains("repeated 100 times with varying numbers"));
        assert_eq!(out[2], "10:00:99 retry 99");
    }

    #[test]
    fn folds_repeating_blocks() {
        let mut lines = Vec::new();
        for i in 0..50 {
            lines.push(format!("attempt {i}: connecting"));
            lines.push("error: connection refused".to_string());
        }
        let out = fold_repeats(&lines);
        assert!(out.len() <= 5, "{out:?}");
        assert!(out
            .iter()
            .any(|l| l.contains("these 2 lines repeated 50 times")));
    }

    #[test]
    fn short_runs_are_left_alone() {
        let lines = s(&["a", "a", "b"]);
        assert_eq!(fold_repeats(&lines), lines);
    }

    #[test]
    fn small_logs_pass_unchanged() {
        assert_eq!(fit_log("one\ntwo", 1000, "use tail_lines"), "one\ntwo");
    }

    #[test]
    fn long_logs_keep_head_tail_and_the_fatal_line() {
        let mut log = String::new();
        log.push_str("starting backend v1.4.2\n");
        let words = ["alpha", "beta", "gamma", "delta", "epsilon"];
        for i in 0..1500 {
            // Varying words (not only numbers) so the lines do not fold away.
            log.push_str(&format!(
                "debug: handled {} request {i} via {}\n",
                words[i % 5],
                words[i % 3]
            ));
        }
        log.push_str("FATAL: password authentication failed for user \"app\"\n");
        for i in 0..1500 {
            log.push_str(&format!(
                "trace: unrelated {} line number {i}\n",
                words[i % 5]
            ));
        }
        let out = fit_log(
            &log,
            4000,
            "use tail_lines/since_seconds for another window",
        );
        assert!(out.len() <= 4400, "{}", out.len());
        assert!(out.starts_with("starting backend"));
        assert!(
            out.contains("FATAL: password authentication failed"),
            "{out}"
        );
        assert!(out.contains("lines cut"));
        assert!(out.contains("use tail_lines/since_seconds"));
        assert!(out
            .trim_end()
            .lines()
            .nth_back(1)
            .unwrap()
            .contains("line number 1499"));
    }

    #[test]
    fn very_long_lines_are_cut() {
        let line = "x".repeat(5000);
        let out = fit_log(&line, 100_000, "");
        assert!(out.len() < 1200);
        assert!(out.contains("4000 more chars cut"));
    }

    #[test]
    fn tables_are_aligned_and_cut() {
        let rows: Vec<Vec<String>> = (0..100)
            .map(|i| vec![format!("pod-{i}"), "Running".into()])
            .collect();
        let out = fit_table(
            &["NAME", "STATUS"],
            &rows,
            600,
            "narrow with label_selector",
        );
        assert!(out.starts_with("NAME    STATUS\npod-0   Running"), "{out}");
        assert!(out.len() <= 600);
        assert!(out.contains("more rows (100 in total), narrow with label_selector"));
        let out = fit_table(&["NAME", "STATUS"], &rows[..2], 600, "");
        assert_eq!(out, "NAME   STATUS\npod-0  Running\npod-1  Running");
    }

    #[test]
    fn text_is_cut_at_a_line() {
        let text: String = (0..100).map(|i| format!("line {i}\n")).collect();
        let out = fit_text(&text, 400, "ask for less");
        assert!(out.len() <= 400);
        assert!(out.ends_with("more lines; ask for less]"), "{out}");
        assert_eq!(fit_text("short", 400, ""), "short");
    }

    #[test]
    fn token_estimate() {
        assert_eq!(estimate_tokens("abcdefgh"), 2);
        assert_eq!(chars_for(1000), 4000);
    }
}
