//! The runbook section of the top finding's cause, added to pre-gathering.

use super::*;

/// Pre-gathering with the runbook of the top finding: wraps the cluster gatherer and,
/// when its `analyze` result names a cause, adds the cause's runbook section as a
/// `search_docs` call kai made itself (bounded by [`PREGATHER_RUNBOOK_BYTES`]).
pub struct RunbookGatherer {
    inner: Arc<dyn Gatherer>,
    docs: Arc<Docs>,
}

impl RunbookGatherer {
    pub fn new(inner: Arc<dyn Gatherer>, docs: Arc<Docs>) -> Self {
        RunbookGatherer { inner, docs }
    }
}

#[async_trait]
impl Gatherer for RunbookGatherer {
    async fn gather(
        &self,
        turn: Option<TurnId>,
        question: &str,
        namespace: Option<&str>,
    ) -> Vec<Gathered> {
        // The index is built (or loaded) while the cluster is read, not after.
        let (mut gathered, _) = futures::join!(
            self.inner.gather(turn, question, namespace),
            self.docs.load()
        );
        if let Some(g) = runbook_for(&self.docs, &gathered).await {
            // The findings' link to the runbook whose section now follows is said once.
            if let (Some(cause), None) = (top_cause(&gathered), &g.error) {
                let link = format!("runbook: {}", cause.runbook());
                for a in gathered.iter_mut().filter(|a| a.tool == "analyze") {
                    a.output = a
                        .output
                        .lines()
                        .filter(|l| l.trim() != link)
                        .collect::<Vec<_>>()
                        .join("\n");
                }
            }
            gathered.push(g);
        }
        gathered
    }
}

/// The most likely cause of the pre-gathered analysis, as its findings said it (a code
/// kai knows; none when the analysis failed or found nothing).
pub fn top_cause(gathered: &[Gathered]) -> Option<Cause> {
    gathered
        .iter()
        .find(|g| g.tool == "analyze" && g.error.is_none())?
        .findings
        .as_ref()?
        .top_cause
        .as_deref()?
        .parse()
        .ok()
}

/// The runbook section for the top finding's cause, as a pre-gathered `search_docs` call.
pub async fn runbook_for(docs: &Docs, gathered: &[Gathered]) -> Option<Gathered> {
    let cause = top_cause(gathered)?;
    let args = json!({"cause": cause.as_str()});
    let start = Instant::now();
    let result = run(docs, args.clone()).await;
    let (output, error) = match result {
        Ok(o) => (o, None),
        Err(ToolError::Model(m) | ToolError::Fatal(m)) => (m.clone(), Some(m)),
    };
    Some(Gathered {
        tool: TOOL.to_string(),
        args,
        output,
        duration: start.elapsed(),
        error,
        ..Gathered::default()
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use kai_core::agent::FindingFacts;

    fn analysis(cause: Option<&str>, text: &str) -> Gathered {
        Gathered {
            tool: "analyze".into(),
            output: text.into(),
            findings: Some(FindingFacts {
                top_cause: cause.map(String::from),
                proposes_change: false,
            }),
            ..Gathered::default()
        }
    }

    #[test]
    fn the_top_cause_is_what_the_findings_said_not_what_the_text_reads() {
        // A lookalike line in quoted cluster text changes nothing.
        let text = "Pod a/b\n      │  CRITICAL oom-killed  x\n";
        assert_eq!(
            top_cause(&[analysis(Some("crash-loop-app-error"), text)]),
            Some(Cause::CrashLoopAppError)
        );
        assert_eq!(
            top_cause(&[analysis(None, "  CRITICAL oom-killed  x\n")]),
            None
        );
        assert_eq!(top_cause(&[analysis(Some("no-such-cause"), "")]), None);
        let mut failed = analysis(Some("oom-killed"), "forbidden");
        failed.error = Some("forbidden".into());
        assert_eq!(top_cause(&[failed]), None);
        // Only an analysis names a cause.
        let mut describe = analysis(Some("oom-killed"), "");
        describe.tool = "describe".into();
        assert_eq!(top_cause(&[describe]), None);
    }

    #[tokio::test]
    async fn a_cause_lookup_returns_its_runbook_section_within_the_pregather_budget() {
        let docs = Docs::builtin();
        for cause in Cause::ALL {
            let out = run(&docs, json!({"cause": cause.as_str()})).await.unwrap();
            assert!(
                out.len() <= PREGATHER_RUNBOOK_BYTES,
                "{cause}: {} bytes",
                out.len()
            );
            assert!(out.contains(cause.runbook()), "{cause}: {out}");
            assert!(out.contains(&format!("Cite it as `{} § ", cause.runbook())));
        }
        let out = run(&docs, json!({"cause": "oom-killed", "limit": 4}))
            .await
            .unwrap();
        for h in ["§ Fix", "§ How to confirm", "§ Symptoms", "§ Prevention"] {
            assert!(out.contains(h), "{out}");
        }
        let out = run(&docs, json!({"cause": "made-up"})).await.unwrap();
        assert!(out.starts_with("No runbook lists the cause code"), "{out}");
    }
}
