//! What the model reads of the pre-gathered results: each fact once, findings first,
//! within [`CONTEXT_BUDGET`]. Pure text: nothing here reads the cluster.

/// The whole pre-gathered context may use this many per-tool budgets.
pub const TOTAL_BUDGET_FACTOR: usize = 3;

/// The parts of the pre-gathered context, in the order the model reads them. The runbook
/// excerpt comes last (the docs gatherer adds it, within [`ContextBudget::runbook`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Part {
    /// The analyzers' findings: cause, evidence lines, proposed fix.
    Findings,
    /// `describe` of the target and its worst pods, minus what was already shown.
    Describe,
    /// Logs of the worst pod, minus the lines the findings quote.
    Logs,
}

/// How the first request's context budget is split, in bytes of tool output. The first
/// request must fit 8 KB with the system prompt and the tool declarations (about 6 KB
/// of it), so the context gets what is left. What a part does not use flows on to the
/// next, in order (findings, describe, logs): a short finding leaves room for more
/// describe lines, and a huge log cannot take the findings' share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContextBudget {
    pub findings: usize,
    pub describe: usize,
    pub logs: usize,
    /// The cause's runbook excerpt, last ([`crate::docs::PREGATHER_RUNBOOK_BYTES`]).
    pub runbook: usize,
}

/// The split every pre-gathering uses.
pub const CONTEXT_BUDGET: ContextBudget = ContextBudget {
    findings: 1050,
    describe: 570,
    logs: 250,
    runbook: 330,
};

impl ContextBudget {
    /// The three cluster parts' total.
    pub fn cluster_total(&self) -> usize {
        self.findings + self.describe + self.logs
    }

    /// This split scaled down (each part in proportion) so the cluster parts fit `cap`
    /// bytes: a session with a small per-tool budget gets a smaller context.
    pub fn within(&self, cap: usize) -> ContextBudget {
        let total = self.cluster_total();
        if total <= cap || total == 0 {
            return *self;
        }
        ContextBudget {
            findings: self.findings * cap / total,
            describe: self.describe * cap / total,
            logs: self.logs * cap / total,
            runbook: self.runbook,
        }
    }

    fn share(&self, part: Part) -> usize {
        match part {
            Part::Findings => self.findings,
            Part::Describe => self.describe,
            Part::Logs => self.logs,
        }
    }
}

/// One pre-gathered output on its way into the context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    pub part: Part,
    /// Its weight among the pieces of its part when they must share.
    pub weight: usize,
    pub text: String,
}

/// Describe lines shorter than this are structure (`Env:`, `app:`) and stay even when
/// repeated; longer ones are facts, shown once.
const MIN_FACT_CHARS: usize = 12;

/// Describe lines that carry nothing for a diagnosis the arguments or the findings do
/// not already say: the namespace (it is in the call), ages and addresses, and the
/// routine events every healthy start also has.
fn routine(fact: &str) -> bool {
    const FIELDS: &[&str] = &["Namespace: ", "Age: ", "Started: ", "IP: ", "Revision: "];
    const EVENTS: &[&str] = &[
        "Scheduled",
        "Pulled",
        "Created",
        "Started",
        "SuccessfulCreate",
        "ScalingReplicaSet",
    ];
    if FIELDS.iter().any(|f| fact.starts_with(f)) {
        return true;
    }
    // `2s ago  Normal  Created (x8): Created container app`
    let mut words = fact.split_whitespace().skip_while(|w| *w != "Normal");
    words.next().is_some()
        && words
            .next()
            .is_some_and(|reason| EVENTS.iter().any(|e| reason.trim_end_matches(':') == *e))
}

/// The content of a line as a fact: trimmed, without the findings' evidence bar.
fn fact(line: &str) -> &str {
    line.trim().trim_start_matches('│').trim()
}

/// Make `pieces` one context without repetition, within `budget`: every line a finding
/// quotes is left out of the describe and log parts, every describe line shown once (a
/// pod's template lines in its Deployment's describe and its own), then each part is cut
/// to its share plus what earlier parts left, shared among its pieces by weight. Logs
/// are cut as logs (head, tail and error-looking lines kept). What each cut left out is
/// said in the text. Returns the bytes left unused.
pub fn compose(pieces: &mut [Piece], budget: &ContextBudget) -> usize {
    use std::collections::HashSet;
    let quoted: HashSet<String> = pieces
        .iter()
        .filter(|p| p.part == Part::Findings)
        .flat_map(|p| p.text.lines().map(|l| fact(l).to_string()))
        .filter(|l| l.len() >= MIN_FACT_CHARS)
        .collect();
    // "N problems found." repeats the header's count.
    for p in pieces.iter_mut().filter(|p| p.part == Part::Findings) {
        if let Some(i) = p.text.trim_end().rfind('\n') {
            let last = p.text[i..].trim();
            if last.ends_with(" found.") && last.split(' ').count() == 3 {
                p.text = p.text[..i].trim_end().to_string() + "\n";
            }
        }
    }
    let mut shown = quoted.clone();
    for p in pieces.iter_mut().filter(|p| p.part != Part::Findings) {
        let mut kept = Vec::new();
        let mut dropped = 0usize;
        let mut plain = 0usize;
        for (i, line) in p.text.lines().enumerate() {
            let f = fact(line);
            // The first line says what the output is (a log's header): always kept.
            let repeat = i > 0
                && f.len() >= MIN_FACT_CHARS
                && !f.ends_with(':')
                && match p.part {
                    Part::Logs => quoted.contains(f),
                    _ => shown.contains(f),
                };
            if repeat {
                dropped += 1;
                continue;
            }
            if i > 0 && p.part == Part::Describe && routine(f) {
                plain += 1;
                continue;
            }
            if p.part == Part::Describe && f.len() >= MIN_FACT_CHARS {
                shown.insert(f.to_string());
            }
            kept.push(line);
        }
        let mut notes = Vec::new();
        if dropped > 0 {
            let what = if p.part == Part::Logs {
                "quoted in the findings"
            } else {
                "shown above"
            };
            notes.push(format!(
                "{dropped} line{} already {what}",
                if dropped == 1 { "" } else { "s" }
            ));
        }
        if plain > 0 {
            notes.push(format!("{plain} routine (ages, IPs, normal start events)"));
        }
        if !notes.is_empty() {
            p.text = format!("{}\n[kai: left out {}]", kept.join("\n"), notes.join(", "));
        }
    }
    let mut carry = 0usize;
    for part in [Part::Findings, Part::Describe, Part::Logs] {
        let avail = budget.share(part) + carry;
        let idx: Vec<usize> = (0..pieces.len())
            .filter(|&i| pieces[i].part == part)
            .collect();
        let needs: Vec<usize> = idx.iter().map(|&i| pieces[i].text.len()).collect();
        let weights: Vec<usize> = idx.iter().map(|&i| pieces[i].weight).collect();
        let allotted = allot(avail, &needs, &weights);
        let mut used = 0;
        for (&i, max) in idx.iter().zip(allotted) {
            let p = &mut pieces[i];
            if p.text.len() > max {
                p.text = cut(p.part, &p.text, max);
            }
            used += p.text.len();
        }
        carry = avail.saturating_sub(used);
    }
    carry
}

/// `text` in at most `max` bytes (or, below a useful minimum, as few as say what was cut).
fn cut(part: Part, text: &str, max: usize) -> String {
    match part {
        Part::Logs => {
            let (head, body) = text.split_once('\n').unwrap_or((text, ""));
            let room = max.saturating_sub(head.len() + 1);
            // fit_log's head, rescued lines and footer need room; in less, the end of
            // the log (what the process said last) is what to keep.
            if room >= 1500 {
                let body = kai_text::budget::fit_log(body, room, "call get_logs for more");
                return format!("{head}\n{body}");
            }
            let lines: Vec<&str> = body.lines().collect();
            let mut start = lines.len();
            let mut used = 0;
            let marker = |n: usize| format!("… [{n} earlier lines: call get_logs]\n");
            while start > 0 {
                let l = lines[start - 1];
                if used + l.len() + 1 + marker(start - 1).len() > room {
                    break;
                }
                used += l.len() + 1;
                start -= 1;
            }
            let mut out = format!("{head}\n");
            if start > 0 {
                out.push_str(&marker(start));
            }
            out.push_str(&lines[start..].join("\n"));
            out
        }
        Part::Describe => cut_lines(text, max, "describe"),
        // In rank order, evidence before fix: the evidence is what the model cannot get
        // elsewhere without a call, and a cut finding says how to see the rest.
        Part::Findings => cut_lines(text, max, "analyze"),
    }
}

/// The whole lines of `text` that fit `max` bytes with a last line saying how many were
/// cut and which tool shows them all (shares are small: the marker is all it reserves).
fn cut_lines(text: &str, max: usize, tool: &str) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let lines: Vec<&str> = text.lines().collect();
    let marker = |n: usize| format!("… [{n} more lines: call {tool}]");
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        let line = kai_text::budget::cut_line(line, kai_text::budget::MAX_LINE_CHARS);
        if out.len() + line.len() + 1 + marker(lines.len() - i - 1).len() > max {
            out.push_str(&marker(lines.len() - i));
            return out;
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// `avail` bytes shared among pieces that need `needs` bytes, by `weights`: a piece that
/// needs less than its share gets what it needs and the rest is shared again among the
/// others, so nothing is left unused while a piece still wants more.
pub fn allot(avail: usize, needs: &[usize], weights: &[usize]) -> Vec<usize> {
    let mut out = vec![0usize; needs.len()];
    let mut open: Vec<usize> = (0..needs.len()).collect();
    let mut left = avail;
    while !open.is_empty() {
        let wsum: usize = open.iter().map(|&i| weights[i].max(1)).sum();
        let fits: Vec<usize> = open
            .iter()
            .copied()
            .filter(|&i| needs[i] <= left * weights[i].max(1) / wsum)
            .collect();
        if fits.is_empty() {
            for &i in &open {
                out[i] = left * weights[i].max(1) / wsum;
            }
            break;
        }
        for i in fits {
            out[i] = needs[i];
            left -= needs[i];
            open.retain(|&j| j != i);
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn piece(part: Part, weight: usize, text: &str) -> Piece {
        Piece {
            part,
            weight,
            text: text.to_string(),
        }
    }

    const FINDINGS: &str = "Analyzer findings for deployment/backend:\n\
Deployment shop/backend\n  CRITICAL crash-loop-app-error  container \"app\" keeps exiting\n\
      │ 10:00:00.245 ERROR pq: password authentication failed\n\
      │ 10:00:00.246 FATAL: password authentication failed for user \"app\"\n\
      fix: fix the error its previous log shows\n";

    fn huge_log() -> String {
        let mut log = String::from("Logs of pod backend-1, container app (previous instance):\n");
        for i in 0..5000 {
            log.push_str(&format!(
                "10:00:{i:05} INFO GET /api/items/{i} status=200\n"
            ));
        }
        log.push_str("10:00:00.245 ERROR pq: password authentication failed\n");
        log.push_str("10:00:00.246 FATAL: password authentication failed for user \"app\"\n");
        log.push_str("10:00:00.247 INFO shutting down\n");
        log
    }

    #[test]
    fn a_huge_log_cannot_starve_the_findings() {
        let mut pieces = vec![
            piece(Part::Findings, 1, FINDINGS),
            piece(Part::Logs, 2, &huge_log()),
        ];
        compose(&mut pieces, &CONTEXT_BUDGET);
        assert_eq!(pieces[0].text, FINDINGS, "findings fit their share whole");
        // The log gets its share plus what the findings and the (absent) describe left.
        let log_max = CONTEXT_BUDGET.cluster_total() - FINDINGS.len();
        assert!(pieces[1].text.len() <= log_max, "{}", pieces[1].text.len());
        assert!(pieces[1].text.starts_with("Logs of pod backend-1"));
        assert!(pieces[1].text.contains("shutting down"), "the tail is kept");
    }

    #[test]
    fn lines_the_findings_quote_are_not_repeated() {
        let describe_pod = "Pod: backend-1\nContainers:\n  app:\n    Image: shop/backend:1.4.2\n    Env:\n      DB_USER: app\n";
        let describe_dep = "Deployment: backend\nPod template:\n  app:\n    Image: shop/backend:1.4.2\n    Env:\n      DB_USER: app\n";
        let log = "Logs of pod backend-1:\n10:00:00.001 INFO starting\n10:00:00.245 ERROR pq: password authentication failed\n10:00:00.246 FATAL: password authentication failed for user \"app\"\n10:00:00.247 INFO shutting down\n";
        let mut pieces = vec![
            piece(Part::Findings, 1, FINDINGS),
            piece(Part::Describe, 3, describe_pod),
            piece(Part::Describe, 2, describe_dep),
            piece(Part::Logs, 2, log),
        ];
        compose(&mut pieces, &CONTEXT_BUDGET);
        let all: String = pieces.iter().map(|p| p.text.clone() + "\n").collect();
        assert_eq!(
            all.matches("FATAL: password authentication").count(),
            1,
            "{all}"
        );
        assert_eq!(all.matches("ERROR pq: password").count(), 1, "{all}");
        assert_eq!(all.matches("Image: shop/backend:1.4.2").count(), 1, "{all}");
        // Short structural lines stay where they are.
        assert_eq!(all.matches("Env:").count(), 2, "{all}");
        assert!(pieces[3].text.contains("starting") && pieces[3].text.contains("shutting down"));
        assert!(pieces[3]
            .text
            .contains("[kai: left out 2 lines already quoted in the findings]"));
        assert!(
            pieces[2].text.contains("already shown above]"),
            "{}",
            pieces[2].text
        );
        assert!(
            pieces[1].text.contains("Image: shop/backend:1.4.2"),
            "the pod keeps its own"
        );
    }

    #[test]
    fn each_part_stays_within_its_share_and_unused_share_flows_on() {
        let big = |head: &str| {
            let mut s = format!("{head}\n");
            for i in 0..400 {
                s.push_str(&format!("  line {i} of something worth {i} bytes\n"));
            }
            s
        };
        // Everything oversized: each part ends within its own share.
        let mut pieces = vec![
            piece(Part::Findings, 1, &big("Analyzer findings")),
            piece(Part::Describe, 1, &big("Pod: a")),
            piece(Part::Logs, 1, &big("Logs of pod a:")),
        ];
        compose(&mut pieces, &CONTEXT_BUDGET);
        assert!(pieces[0].text.len() <= CONTEXT_BUDGET.findings);
        assert!(pieces[1].text.len() <= CONTEXT_BUDGET.describe);
        assert!(pieces[2].text.len() <= CONTEXT_BUDGET.logs);
        assert!(
            pieces[0].text.contains("call analyze"),
            "{}",
            pieces[0].text
        );
        // Short findings: the describe part gets their unused share.
        let short = "Analyzer findings: none\n";
        let mut pieces = vec![
            piece(Part::Findings, 1, short),
            piece(Part::Describe, 1, &big("Pod: a")),
        ];
        let left = compose(&mut pieces, &CONTEXT_BUDGET);
        assert!(pieces[1].text.len() > CONTEXT_BUDGET.describe);
        assert!(
            pieces[1].text.len() <= CONTEXT_BUDGET.describe + CONTEXT_BUDGET.findings - short.len()
        );
        // Nothing for logs here, so their whole share is left.
        assert!(left >= CONTEXT_BUDGET.logs, "{left}");
    }

    #[test]
    fn allot_shares_by_weight_and_passes_on_what_is_not_needed() {
        assert_eq!(
            allot(900, &[100, 5000, 5000], &[1, 1, 1]),
            vec![100, 400, 400]
        );
        assert_eq!(allot(900, &[5000, 5000], &[2, 1]), vec![600, 300]);
        assert_eq!(allot(900, &[100, 200], &[1, 1]), vec![100, 200]);
        assert_eq!(allot(0, &[100], &[1]), vec![0]);
        assert!(allot(10, &[], &[]).is_empty());
    }

    #[test]
    fn a_small_tool_budget_shrinks_the_split() {
        let b = CONTEXT_BUDGET.within(1000);
        assert!(b.cluster_total() <= 1000);
        assert!(b.findings > b.logs, "the proportions stay");
        assert_eq!(CONTEXT_BUDGET.within(1_000_000), CONTEXT_BUDGET);
    }

    #[test]
    fn routine_describe_lines_are_left_out_and_warnings_kept() {
        let pod = "Pod: backend-1\nNamespace: shop\nAge: 2s\nNode: kai-node-1\nIP: 10.0.0.1\n\
Events (newest first):\n  2s ago  Normal  Scheduled: Successfully assigned shop/backend-1\n\
  2s ago  Warning BackOff (x7): Back-off restarting failed container\n\
  2s ago  Normal  Created (x8): Created container app\n\
  2s ago  Normal  Pulling: Pulling image \"shop/backend:1.4.2\"\n";
        let mut pieces = vec![piece(Part::Describe, 1, pod)];
        compose(&mut pieces, &CONTEXT_BUDGET);
        let t = &pieces[0].text;
        for gone in [
            "Namespace: shop",
            "Age: 2s",
            "IP: ",
            "Scheduled",
            "Created container",
        ] {
            assert!(!t.contains(gone), "{gone}: {t}");
        }
        for kept in [
            "Pod: backend-1",
            "Node: kai-node-1",
            "Back-off restarting",
            "Pulling image",
        ] {
            assert!(t.contains(kept), "{kept}: {t}");
        }
        assert!(
            t.ends_with("[kai: left out 5 routine (ages, IPs, normal start events)]"),
            "{t}"
        );
    }
}
