//! Errors in the log of a running, ready container: nothing is down, but "why does the
//! app return errors?" deserves the lines that say so.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use regex::Regex;

use super::{container_statuses, truncate};
use crate::finding::{Cause, Finding, ObjectRef, Severity};
use crate::snapshot::{find_named, Snapshot};

/// Fewer error lines than this in a log tail is noise, not a finding.
const MIN_ERRORS: usize = 3;
/// This many (or more than half the lines) makes it `medium`.
const MANY_ERRORS: usize = 20;
const QUOTED: usize = 3;

fn error_re() -> Option<&'static Regex> {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r#"(?x)
            \b(ERROR|FATAL|CRITICAL|PANIC|SEVERE)\b
            | (?i:level=(error|fatal|panic)|"level":\s*"(error|fatal|panic)")
            | \b[A-Za-z]+(Exception|Error):\s
            | ^Traceback\ \(most\ recent\ call\ last\)
            | ^panic:
            | \bHTTP/[0-9.]+"?\s+5[0-9]{2}\b
            | \b(status|code)[=:]\s*5[0-9]{2}\b
            "#,
        )
        .ok()
    })
    .as_ref()
}

/// A line's shape with its numbers, hex ids and quoted values folded, so that one error
/// repeating with different request ids counts as one.
fn shape(line: &str) -> String {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    let re = RE.get_or_init(|| Regex::new(r#"[0-9a-fA-F]{8,}|[0-9]+(\.[0-9]+)*"#).ok());
    match re {
        Some(re) => re.replace_all(line, "#").into_owned(),
        None => line.to_string(),
    }
}

/// The error lines of a log, de-duplicated: (example line, count), most frequent first,
/// and the number of lines read.
pub(crate) fn error_lines(log: &str) -> (Vec<(String, usize)>, usize, usize) {
    let Some(re) = error_re() else {
        return (Vec::new(), 0, 0);
    };
    let mut by_shape: BTreeMap<String, (usize, usize, String)> = BTreeMap::new();
    let mut total = 0;
    let mut errors = 0;
    for (i, line) in log
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .enumerate()
    {
        total += 1;
        if !re.is_match(line) {
            continue;
        }
        errors += 1;
        let e = by_shape
            .entry(shape(line))
            .or_insert_with(|| (0, i, line.to_string()));
        e.0 += 1;
        // Quote the newest occurrence.
        e.2 = line.to_string();
    }
    let mut v: Vec<(usize, usize, String)> = by_shape.into_values().collect();
    v.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    (
        v.into_iter().map(|(n, _, l)| (l, n)).collect(),
        errors,
        total,
    )
}

pub fn app_errors(snap: &Snapshot) -> Vec<Finding> {
    let mut out: Vec<Finding> = Vec::new();
    for ((ns, pod_name, container), log) in &snap.current_logs {
        let Some(pod) = find_named(&snap.pods, ns, pod_name) else {
            continue;
        };
        let running_ready = container_statuses(pod).any(|c| {
            &c.name == container && c.ready && c.state.as_ref().is_some_and(|s| s.running.is_some())
        });
        if !running_ready {
            continue;
        }
        let (lines, errors, total) = error_lines(log);
        if errors < MIN_ERRORS {
            continue;
        }
        let owner: ObjectRef = snap.top_owner(pod);
        if out.iter().any(|f| f.object == owner) {
            continue;
        }
        let mut f = Finding::new(
            Cause::AppErrorsInLog,
            owner,
            format!("container {container:?} runs and is ready, but {errors} of the last {total} log lines are errors"),
        );
        if errors >= MANY_ERRORS || errors * 2 > total {
            f.severity = Severity::Medium;
        }
        f = f.evidence(format!("log of pod {pod_name}, container {container:?}:"));
        for (line, n) in lines.iter().take(QUOTED) {
            let line = truncate(line, 300);
            f = f.evidence(if *n > 1 {
                format!("{line} (x{n})")
            } else {
                line
            });
        }
        out.push(f.advice(
            format!("Read the errors above (kubectl logs {pod_name} -c {container} -n {ns}): they come from the application or what it calls (a database, another service); fix that, or roll back a recent change (kubectl rollout undo)."),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testutil::*;

    #[test]
    fn errors_are_deduplicated_and_counted() {
        let log = "INFO started\n\
            ERROR db timeout after 3000ms (request 7f3a9c21)\n\
            10.0.0.1 - - \"GET /api HTTP/1.1\" 200 12\n\
            ERROR db timeout after 3001ms (request 9b2c44e0)\n\
            10.0.0.1 - - \"GET /api HTTP/1.1\" 503 0\n\
            Traceback (most recent call last):\n\
            ERROR db timeout after 2999ms (request 11aa22bb)\n";
        let (lines, errors, total) = error_lines(log);
        assert_eq!((errors, total), (5, 7));
        assert_eq!(
            lines[0],
            (
                "ERROR db timeout after 2999ms (request 11aa22bb)".to_string(),
                3
            )
        );
        assert!(error_lines("INFO all good\nGET /healthz 200\n")
            .0
            .is_empty());
    }

    #[test]
    fn a_ready_container_full_of_errors_is_a_low_finding() {
        let mut s = snap();
        let spec = app_spec();
        add_ready_deployment(&mut s, "api", spec);
        s.current_logs.insert((NS.into(), "api-0".into(), "app".into()),
            "ok\nERROR upstream returned 502 (id 1)\nERROR upstream returned 502 (id 2)\nERROR upstream returned 502 (id 3)\nok\nok\nok\nok\n".into());
        let f = app_errors(&s);
        assert_eq!(causes(&f), ["app-errors-in-logs"]);
        assert_eq!(f[0].severity, Severity::Low);
        assert!(f[0]
            .evidence
            .iter()
            .any(|e| e == "ERROR upstream returned 502 (id 3) (x3)"));
    }
}
