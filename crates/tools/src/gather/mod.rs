//! Context pre-gathering before the first model call.
//!
//! From the question alone, find the workload it is about (names the question mentions,
//! matched against the namespace's workloads, Pods and Services), follow it to its
//! failing pods, and fetch what an SRE would look at first — the analyzers' findings,
//! describe of its worst pods (of the workload itself when none fails), previous logs of
//! crashed containers, current logs — all at once. Each result is a real read-tool call,
//! so the agent can show it as a synthetic tool call; the model sees what that call
//! returns, less what [`compose`] leaves out and says it left out: lines the findings
//! already quote, lines an earlier describe showed, routine lines, and what does not fit
//! the part's share of [`CONTEXT_BUDGET`]. Each fact once, findings first.
//!
//! The turn reads the namespace once: one [`NamespaceView`] serves the target search,
//! every describe and the analyzers, each kind listed once and all kinds concurrently.
//! What the search could not read (RBAC, an unreachable server) is not "nothing named":
//! the namespace's analysis is gathered instead, and it says what could not be read.
//! [`ClusterGatherer`] is this, as the agent's [`Gatherer`].

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use futures::future::join_all;
use serde_json::{json, Value};

use crate::ToolEnv;
use kai_cluster::budget::chars_for;
use kai_cluster::{describe, fetch, NamespaceView, Res};
use kai_core::agent::Gatherer;
pub use kai_core::agent::{FindingFacts, Gathered};
use kai_core::tools::{ToolError, TurnId};

mod compose;
mod target;

pub use compose::{
    allot, compose, ContextBudget, Part, Piece, CONTEXT_BUDGET, TOTAL_BUDGET_FACTOR,
};
pub use target::{badness, failing_pods, find_target, is_troubleshooting, tokens, Target};
use target::{plan, Call};

/// Pre-gathering as the agent's [`Gatherer`]: [`pregather`] with the session's tools.
pub struct ClusterGatherer {
    env: Arc<ToolEnv>,
}

impl ClusterGatherer {
    pub fn new(env: Arc<ToolEnv>) -> Self {
        Self { env }
    }
}

#[async_trait]
impl Gatherer for ClusterGatherer {
    async fn gather(
        &self,
        turn: Option<TurnId>,
        question: &str,
        namespace: Option<&str>,
    ) -> Vec<Gathered> {
        pregather_in(&self.env, turn, question, namespace).await
    }
}

/// Gather context for `question` in `namespace` (the session default when `None`), on
/// a read of its own. Nothing recognisable in the question, or no cluster: an empty vec.
pub async fn pregather(env: &ToolEnv, question: &str, namespace: Option<&str>) -> Vec<Gathered> {
    pregather_in(env, None, question, namespace).await
}

/// [`pregather`] for `turn`: the turn's later `describe` and `analyze` calls read from
/// what it read.
pub async fn pregather_in(
    env: &ToolEnv,
    turn: Option<TurnId>,
    question: &str,
    namespace: Option<&str>,
) -> Vec<Gathered> {
    let Ok(cluster) = env.cluster() else {
        return Vec::new();
    };
    // A namespace that breaks the naming rules gathers nothing; the model's own calls
    // then get the validation error.
    let Ok(ns) = cluster.checked_namespace(namespace) else {
        return Vec::new();
    };
    let tokens = tokens(question);
    if tokens.is_empty() {
        return Vec::new();
    }
    let Ok(view) = env.reads.view(cluster, turn.map(TurnId::get), Some(&ns)) else {
        return Vec::new();
    };
    let inv = fetch::snapshot_of(&view, Res::WORKLOADS).await;
    // Whatever is gathered next (describe, the analyzers) reads the rest of the
    // namespace from the same view.
    view.want(Res::ANALYZERS);
    let found = inv.as_ref().ok().and_then(|inv| {
        let target = find_target(&tokens, inv)?;
        let pods = failing_pods(inv, &target);
        Some((target, pods))
    });
    let Some((target, pods)) = found else {
        // No workload named, but a troubleshooting question ("what is broken here?"),
        // or names that could not be read: the namespace's findings are the cheapest
        // useful start (and say what could not be read, and why). A general question
        // ("how do I write a helm chart?") gets nothing.
        let unread = inv.as_ref().map_or(true, |inv| !inv.forbidden.is_empty());
        if is_troubleshooting(&tokens) || unread {
            let args = json!({"namespace": ns});
            return run_calls(env, &view, vec![("analyze", args, Part::Findings, 1)]).await;
        }
        return Vec::new();
    };
    let mut calls = plan(&ns, &target, &pods);
    // The session's own namespace goes without saying: each call is a few bytes shorter.
    if ns == cluster.default_namespace {
        for c in calls.iter_mut() {
            if let Some(m) = c.1.as_object_mut() {
                m.remove("namespace");
            }
        }
    }
    run_calls(env, &view, calls).await
}

/// Run read-tool calls concurrently through the turn's `view`, each with the whole
/// per-tool budget, then fit what they returned into [`CONTEXT_BUDGET`] with
/// [`compose`]: the cut is made once, after the repeats are gone.
async fn run_calls(env: &ToolEnv, view: &NamespaceView<'_>, calls: Vec<Call>) -> Vec<Gathered> {
    let runs = calls
        .into_iter()
        .map(|(tool, args, part, weight)| async move {
            let start = Instant::now();
            let res = run_one(env, view, tool, &args).await;
            let g = match res {
                Ok(g) => g,
                Err(ToolError::Model(m) | ToolError::Fatal(m)) => Gathered {
                    output: m.clone(),
                    error: Some(m),
                    ..Gathered::default()
                },
            };
            let g = Gathered {
                tool: tool.to_string(),
                args,
                duration: start.elapsed(),
                ..g
            };
            (g, part, weight)
        });
    let got = join_all(runs).await;
    let budget = CONTEXT_BUDGET.within(chars_for(env.budget_tokens) * TOTAL_BUDGET_FACTOR);
    let mut items: Vec<Piece> = got
        .iter()
        .map(|(g, part, weight)| Piece {
            part: *part,
            weight: *weight,
            text: g.output.clone(),
        })
        .collect();
    compose(&mut items, &budget);
    got.into_iter()
        .zip(items)
        .map(|((mut g, _, _), piece)| {
            g.output = piece.text;
            g
        })
        .collect()
}

/// One planned call: its output, and for `analyze` what the findings themselves say (the
/// top cause, whether one proposes a change), which the agent and the runbook lookup
/// read from here rather than from the text. `describe` and `analyze` read through the
/// turn's `view`, as the tools do in the turn; the rest are the tools themselves.
async fn run_one(
    env: &ToolEnv,
    view: &NamespaceView<'_>,
    tool: &str,
    args: &Value,
) -> Result<Gathered, ToolError> {
    let arg = |k: &str| args.get(k).and_then(Value::as_str);
    let budget = chars_for(env.budget_tokens);
    let model_error = |e: &dyn std::fmt::Display| ToolError::Model(e.to_string());
    let output = match (tool, arg("kind"), arg("name")) {
        ("describe", Some(kind), Some(name)) => describe::describe_in(view, kind, name, budget)
            .await
            .map_err(|e| model_error(&e))?,
        ("analyze", _, _) => {
            let target = arg("target");
            let a = fetch::analyze(view, target)
                .await
                .map_err(|e| model_error(&e))?;
            return Ok(Gathered {
                output: fetch::analysis_text(&a, target, view.namespace(), budget),
                findings: Some(FindingFacts {
                    top_cause: a.findings.first().map(|f| f.cause.as_str().to_string()),
                    proposes_change: a.findings.iter().any(|f| f.fix.change.is_some()),
                }),
                ..Gathered::default()
            });
        }
        _ => crate::read::run(env, tool, args.clone()).await?,
    };
    Ok(Gathered {
        output,
        ..Gathered::default()
    })
}
