//! The agent loop driven by a scripted OpenAI-compatible server on loopback: what kai
//! sends, and what it does with what comes back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use async_trait::async_trait;
use kai::agent::protocol::{Event, Op, TurnEnd};
use kai::agent::{self, AgentConfig};
use kai::config::LlmSettings;
use kai::llm::openai::OpenAiClient;
use kai::tools::{handler, CallCtx, DenyAll, Registry, Tool, ToolError, TurnId};
use kai_test_support::model::messages;
use kai_test_support::{items, tool_names};
use mock_llm::{MockLlm, Reply};
use serde_json::Value;

/// A read-only test tool that echoes its argument, or fails when asked to.
struct Echo {
    /// The turn of every call it got.
    turns: Turns,
}

type Turns = Arc<std::sync::Mutex<Vec<Option<TurnId>>>>;

#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct EchoArgs {
    text: String,
}

#[async_trait]
impl Tool for Echo {
    type Args = EchoArgs;
    fn name(&self) -> &'static str {
        "echo"
    }
    fn description(&self) -> &'static str {
        "Echo text back."
    }
    fn is_mutating(&self) -> bool {
        false
    }
    async fn call(&self, ctx: &CallCtx, args: EchoArgs) -> Result<String, ToolError> {
        self.turns.lock().unwrap().push(ctx.turn);
        let text = args.text;
        if text == "fail" {
            return Err(ToolError::Model("echo cannot echo `fail`".into()));
        }
        Ok(format!("echoed: {text}"))
    }
}

struct Run {
    events: Vec<Event>,
    requests: Vec<Value>,
    tool_calls: usize,
}

impl Run {
    fn end(&self) -> (TurnEnd, String) {
        self.events
            .iter()
            .find_map(|e| match e {
                Event::TurnDone { end, answer, .. } => Some((*end, answer.clone())),
                _ => None,
            })
            .expect("no TurnDone")
    }
    /// The content of every `tool` message in request `i`.
    fn tool_results(&self, i: usize) -> Vec<String> {
        messages(&self.requests[i], "tool")
    }
}

/// The model's call of `echo` with `text`.
fn echo(text: &str) -> Reply {
    Reply::tool_call("echo", format!(r#"{{"text": "{text}"}}"#))
}

/// The model calls `echo` with `text`, then answers `answer`.
async fn echo_then(text: &str, answer: &str) -> Run {
    run(vec![echo(text), Reply::text(answer)], 15).await
}

async fn run(script: Vec<Reply>, max_steps: u32) -> Run {
    run_with(script, "why is backend crashlooping?", |cfg| {
        cfg.max_steps = max_steps
    })
    .await
}

/// A read-only tool that returns a fixed text whatever it is asked: hostile or huge
/// cluster content.
struct Fixed {
    name: &'static str,
    output: String,
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct FixedArgs {
    n: Option<i64>,
}

#[async_trait]
impl Tool for Fixed {
    type Args = FixedArgs;
    fn name(&self) -> &'static str {
        self.name
    }
    fn description(&self) -> &'static str {
        "Returns cluster content."
    }
    fn is_mutating(&self) -> bool {
        false
    }
    async fn call(&self, _ctx: &CallCtx, _args: FixedArgs) -> Result<String, ToolError> {
        Ok(self.output.clone())
    }
}

/// What the `leak` tool returns: a terminal title escape, colours, a planted password.
const HOSTILE: &str = "\x1b]0;pwned\x07log line: password=hunter2xyz \x1b[31mred\x1b[0m done\r\n";
/// What the `big` tool returns: 40 KB, ten times the whole budget some tests set.
fn big_output() -> String {
    "0123456789abcdef\n".repeat(40 * 1024 / 17)
}

async fn run_with(
    script: Vec<Reply>,
    question: &str,
    configure: impl FnOnce(&mut AgentConfig),
) -> Run {
    let mock = MockLlm::start(script);
    let mut settings = LlmSettings::local(mock.base_url(), "test-model");
    settings.retry_base_ms = 10;
    settings.max_retries = 2;
    let llm = Arc::new(OpenAiClient::new(&settings).unwrap());
    let turns = Turns::default();
    let mut reg = Registry::new();
    reg.register(handler(Echo {
        turns: turns.clone(),
    }))
    .unwrap();
    for (name, output) in [("leak", HOSTILE.to_string()), ("big", big_output())] {
        reg.register(handler(Fixed { name, output })).unwrap();
    }
    let ctx = CallCtx::new(Arc::new(DenyAll));
    let mut cfg = AgentConfig::new("test-model");
    configure(&mut cfg);
    let mut handle = agent::spawn(llm, Arc::new(reg), ctx, cfg);
    handle.send(Op::UserTurn(question.into()));
    let mut events = Vec::new();
    while let Some(e) = handle.events.recv().await {
        let done = matches!(e, Event::TurnDone { .. });
        events.push(e);
        if done {
            break;
        }
    }
    handle.shutdown().await;
    Run {
        events,
        requests: mock.requests(),
        tool_calls: turns.lock().map(|t| t.len()).unwrap(),
    }
}

/// Every assistant tool call in a request has exactly one tool result after it.
fn assert_calls_paired(request: &Value) {
    let msgs = request["messages"].as_array().unwrap();
    for (i, m) in msgs.iter().enumerate() {
        if let Some(calls) = m["tool_calls"].as_array() {
            for c in calls {
                let id = c["id"].as_str().unwrap();
                let results = msgs[i + 1..]
                    .iter()
                    .filter(|r| r["role"] == "tool" && r["tool_call_id"] == id)
                    .count();
                assert_eq!(results, 1, "call {id} has {results} results");
            }
        }
    }
}

#[tokio::test]
async fn tool_round_trip() {
    let r = echo_then("hello", "The answer is hello.").await;
    assert_eq!(r.end(), (TurnEnd::Answered, "The answer is hello.".into()));
    assert_eq!(r.tool_calls, 1);
    assert_eq!(r.requests.len(), 2);
    // The first request declares the tool and carries the system prompt and question.
    let first = &r.requests[0];
    assert!(tool_names(first).iter().any(|n| n == "echo"));
    assert_eq!(first["messages"][0]["role"], "system");
    assert!(first["messages"][1]["content"]
        .as_str()
        .unwrap()
        .contains("crashlooping"));
    assert_eq!(r.tool_results(1), vec!["echoed: hello".to_string()]);
    assert_calls_paired(&r.requests[1]);
    // The answer streamed as deltas.
    let streamed: String = r
        .events
        .iter()
        .filter_map(|e| match e {
            Event::TextDelta { text } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(streamed, "The answer is hello.");
    assert!(r
        .events
        .iter()
        .any(|e| matches!(e, Event::ToolFinished { name, error: None, .. } if name == "echo")));
}

#[tokio::test]
async fn tool_error_goes_back_to_the_model_and_the_loop_continues() {
    let r = echo_then("fail", "It failed, as expected.").await;
    assert_eq!(r.end().0, TurnEnd::Answered);
    let results = r.tool_results(1);
    assert_eq!(results.len(), 1);
    assert!(
        results[0].starts_with("error: echo cannot echo `fail`"),
        "{results:?}"
    );
}

#[tokio::test]
async fn max_steps_stops_the_loop_and_says_so() {
    let r = run(vec![echo("a"), echo("b"), echo("c")], 2).await;
    let (end, answer) = r.end();
    assert_eq!(end, TurnEnd::MaxSteps);
    assert!(answer.contains("--max-steps 2"), "{answer}");
    assert_eq!(r.requests.len(), 2, "no third model call");
    assert_eq!(r.tool_calls, 2);
}

#[tokio::test]
async fn the_third_identical_call_in_a_row_is_refused() {
    let same = || echo("again");
    let r = run(vec![same(), same(), same(), Reply::text("done")], 15).await;
    assert_eq!(r.end().0, TurnEnd::Answered);
    assert_eq!(r.tool_calls, 2, "the handler ran twice, not three times");
    let results = r.tool_results(3);
    assert_eq!(results.len(), 3);
    assert!(results[2].contains("refused"), "{results:?}");
}

#[tokio::test]
async fn malformed_calls_get_clear_tool_errors_not_crashes() {
    let r = run(
        vec![
            Reply::tool_call("echo", r#"{"text": "unterminated"#),
            Reply::tool_call("echo", r#"{"txt": "x"}"#),
            Reply::tool_call("no_such_tool", r#"{}"#),
            Reply::text("gave up"),
        ],
        15,
    )
    .await;
    assert_eq!(r.end(), (TurnEnd::Answered, "gave up".into()));
    assert_eq!(r.tool_calls, 0, "no handler ran for a malformed call");
    let results = r.tool_results(3);
    assert!(results[0].contains("not valid JSON"), "{}", results[0]);
    assert!(
        results[1].contains("missing required field `text`"),
        "{}",
        results[1]
    );
    assert!(
        results[2].contains("unknown tool \"no_such_tool\""),
        "{}",
        results[2]
    );
    assert!(results[2].contains("echo"), "lists the available tools");
    assert_calls_paired(&r.requests[3]);
}

#[tokio::test]
async fn rate_limit_then_success_is_retried() {
    let r = run(
        vec![Reply::rate_limited(0), Reply::text("ok after retry")],
        15,
    )
    .await;
    assert_eq!(r.end(), (TurnEnd::Answered, "ok after retry".into()));
    assert_eq!(r.requests.len(), 2);
}

#[tokio::test]
async fn server_errors_until_retries_run_out_fail_the_turn_clearly() {
    let r = run(
        vec![
            Reply::error(500, "boom"),
            Reply::error(500, "boom"),
            Reply::error(500, "boom"),
        ],
        15,
    )
    .await;
    assert_eq!(r.end().0, TurnEnd::Failed);
    assert_eq!(r.requests.len(), 3, "1 try + 2 retries");
    let err = r
        .events
        .iter()
        .find_map(|e| match e {
            Event::Error { message, exit_code } => Some((message.clone(), *exit_code)),
            _ => None,
        })
        .unwrap();
    assert!(err.0.contains("500"), "{}", err.0);
    assert_eq!(err.1, kai::exit::MODEL_ERROR);
}

#[tokio::test]
async fn interrupt_ends_the_turn_cleanly() {
    let mock = MockLlm::start(vec![Reply::Hang]);
    let settings = LlmSettings::local(mock.base_url(), "m");
    let llm = Arc::new(OpenAiClient::new(&settings).unwrap());
    let ctx = CallCtx::new(Arc::new(DenyAll));
    let mut handle = agent::spawn(llm, Arc::new(Registry::new()), ctx, AgentConfig::new("m"));
    handle.send(Op::UserTurn("q".into()));
    // Wait until the request is in flight, then interrupt.
    for _ in 0..200 {
        if mock.request_count() > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    handle.send(Op::Interrupt);
    let mut end = None;
    while let Some(e) = handle.events.recv().await {
        if let Event::TurnDone { end: e, .. } = e {
            end = Some(e);
            break;
        }
    }
    assert_eq!(end, Some(TurnEnd::Interrupted));
    handle.shutdown().await;
}

fn notices(r: &Run) -> Vec<String> {
    r.events
        .iter()
        .filter_map(|e| match e {
            Event::Notice { message } => Some(message.clone()),
            _ => None,
        })
        .collect()
}

fn error_event(r: &Run) -> Option<(String, i32)> {
    r.events.iter().find_map(|e| match e {
        Event::Error { message, exit_code } => Some((message.clone(), *exit_code)),
        _ => None,
    })
}

#[tokio::test]
async fn tool_calls_past_the_per_response_limit_are_not_run_nor_kept() {
    let calls: Vec<(String, String)> = (0..200)
        .map(|i| ("echo".to_string(), format!(r#"{{"text": "call {i}"}}"#)))
        .collect();
    let r = run(vec![Reply::ToolCalls(calls), Reply::text("done")], 15).await;
    assert_eq!(r.end(), (TurnEnd::Answered, "done".into()));
    let limit = agent::MAX_TOOL_CALLS_PER_RESPONSE;
    assert_eq!(r.tool_calls, limit, "only the first {limit} ran");
    let second = &r.requests[1];
    let assistant = items(&second["messages"])
        .iter()
        .find(|m| m["role"] == "assistant")
        .unwrap();
    assert_eq!(items(&assistant["tool_calls"]).len(), limit);
    assert_calls_paired(second);
    let results = r.tool_results(1);
    assert_eq!(
        results.len(),
        limit,
        "no results for calls that were dropped"
    );
    assert!(results[0].starts_with("echoed: call 0"));
    let last = results.last().unwrap();
    assert!(
        last.contains("asked for 200 tool calls")
            && last.contains(&format!("only the first {limit} ran")),
        "the model is told: {last}"
    );
    assert!(
        notices(&r).iter().any(|n| n.contains("200 tool calls")),
        "and so is the user"
    );
    // The next request stays small (200 results made it megabytes).
    assert!(second.to_string().len() < 64 * 1024);
}

#[tokio::test]
async fn the_repeat_guard_still_works_within_a_limited_response() {
    let same = || ("echo".to_string(), r#"{"text": "again"}"#.to_string());
    let r = run(
        vec![
            Reply::ToolCalls((0..50).map(|_| same()).collect()),
            Reply::text("done"),
        ],
        15,
    )
    .await;
    assert_eq!(r.end().0, TurnEnd::Answered);
    assert_eq!(
        r.tool_calls, 2,
        "the third identical call and the rest are refused"
    );
    let results = r.tool_results(1);
    assert_eq!(results.len(), agent::MAX_TOOL_CALLS_PER_RESPONSE);
    assert!(
        results[2..].iter().all(|t| t.contains("refused")),
        "{results:?}"
    );
}

#[tokio::test]
async fn every_request_stays_within_the_context_budget() {
    const BUDGET: usize = 8_000;
    let big = |n: usize| -> Vec<(String, String)> {
        (0..n)
            .map(|i| ("big".to_string(), format!(r#"{{"n": {i}}}"#)))
            .collect()
    };
    let r = run_with(
        vec![
            Reply::ToolCalls(big(3)),
            Reply::ToolCalls(big(2)),
            Reply::ToolCalls(big(1)),
            Reply::text("done"),
        ],
        "why?",
        |cfg| cfg.context_budget_tokens = BUDGET,
    )
    .await;
    assert_eq!(r.end(), (TurnEnd::Answered, "done".into()));
    assert_eq!(r.requests.len(), 4);
    for (i, req) in r.requests.iter().enumerate() {
        let tokens = req.to_string().len() / 4;
        assert!(
            tokens <= BUDGET,
            "request {i} is ~{tokens} tokens, budget {BUDGET}"
        );
        assert_calls_paired(req);
    }
    // The latest results were cut, not dropped: the model still sees their start.
    let last = r.tool_results(3);
    let newest = last.last().unwrap();
    assert!(newest.starts_with("0123456789abcdef"), "{}", &newest[..40]);
    assert!(newest.contains("cut here to fit the context window"));
    assert!(last.iter().any(|t| t.contains("older tool output elided")));
}

#[tokio::test]
async fn a_request_that_cannot_fit_ends_the_turn_instead_of_being_sent() {
    // The system prompt alone is larger than this budget.
    let r = run_with(vec![Reply::text("never")], "why?", |cfg| {
        cfg.context_budget_tokens = 100
    })
    .await;
    assert_eq!(r.end().0, TurnEnd::Failed);
    assert!(r.requests.is_empty(), "nothing was sent");
    let (message, code) = error_event(&r).unwrap();
    assert!(
        message.contains("context budget of 100 tokens"),
        "{message}"
    );
    assert_eq!(code, kai::exit::MODEL_ERROR);
}

#[tokio::test]
async fn control_sequences_and_secrets_never_reach_the_model() {
    let r = run_with(
        vec![Reply::tool_call("leak", "{}"), Reply::text("done")],
        "why does my app log password=hunter2xyz? \x1b[2J",
        |_| {},
    )
    .await;
    assert_eq!(r.end().0, TurnEnd::Answered);
    for req in &r.requests {
        let body = req.to_string();
        for bad in ["hunter2xyz", "pwned", "\\u001b", "\\u0007", "\\r"] {
            assert!(!body.contains(bad), "{bad} reached the model: {body}");
        }
    }
    // The rest of the tool output is intact.
    let result = &r.tool_results(1)[0];
    assert!(result.starts_with("log line: password="), "{result}");
    assert!(result.ends_with(" red done\n"), "{result}");
    let question = r.requests[0]["messages"][1]["content"].as_str().unwrap();
    assert!(
        question.starts_with("why does my app log password="),
        "{question}"
    );
}

#[tokio::test]
async fn an_answer_cut_at_the_output_limit_is_reported() {
    let body = concat!(
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"The cause is a mis\"}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"length\"}]}\n\n",
        "data: [DONE]\n\n",
    );
    let r = run(vec![Reply::RawSse(body.into())], 15).await;
    assert_eq!(r.end(), (TurnEnd::Answered, "The cause is a mis".into()));
    assert!(
        notices(&r)
            .iter()
            .any(|n| n.contains("output token limit") && n.contains("cut off")),
        "{:?}",
        notices(&r)
    );
}

#[tokio::test]
async fn a_model_that_only_sends_keep_alives_fails_the_turn_with_exit_code_7() {
    let mock = MockLlm::start(vec![Reply::KeepAliveOnly]);
    let mut settings = LlmSettings::local(mock.base_url(), "m");
    settings.request_timeout_secs = 1;
    let llm = Arc::new(OpenAiClient::new(&settings).unwrap());
    let ctx = CallCtx::new(Arc::new(DenyAll));
    let mut handle = agent::spawn(llm, Arc::new(Registry::new()), ctx, AgentConfig::new("m"));
    handle.send(Op::UserTurn("q".into()));
    let mut events = Vec::new();
    let collect = async {
        while let Some(e) = handle.events.recv().await {
            let done = matches!(e, Event::TurnDone { .. });
            events.push(e);
            if done {
                break;
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(30), collect)
        .await
        .expect("the turn ended");
    handle.shutdown().await;
    let err = events.iter().find_map(|e| match e {
        Event::Error { message, exit_code } => Some((message.clone(), *exit_code)),
        _ => None,
    });
    let (message, code) = err.unwrap();
    assert_eq!(code, kai::exit::MODEL_ERROR);
    assert!(message.contains("request_timeout_secs"), "{message}");
}

/// Records the turn of every gathering.
struct GatherProbe {
    turns: Turns,
}

#[async_trait]
impl agent::Gatherer for GatherProbe {
    async fn gather(
        &self,
        turn: Option<TurnId>,
        _question: &str,
        _namespace: Option<&str>,
    ) -> Vec<agent::Gathered> {
        self.turns.lock().unwrap().push(turn);
        Vec::new()
    }
}

/// Every call of a turn, pre-gathering's included, carries that turn (so they may share
/// their reads of the cluster); the next user turn is another turn.
#[tokio::test]
async fn the_calls_of_a_turn_share_its_turn_and_the_next_turn_is_new() {
    let mock = MockLlm::start(vec![
        echo("one"),
        echo("two"),
        Reply::text("first"),
        echo("three"),
        Reply::text("second"),
    ]);
    let settings = LlmSettings::local(mock.base_url(), "test-model");
    let llm = Arc::new(OpenAiClient::new(&settings).unwrap());
    let tool_seen = Turns::default();
    let gather_seen = Turns::default();
    let mut reg = Registry::new();
    reg.register(handler(Echo {
        turns: tool_seen.clone(),
    }))
    .unwrap();
    let mut cfg = AgentConfig::new("test-model");
    cfg.gatherer = Some(Arc::new(GatherProbe {
        turns: gather_seen.clone(),
    }));
    let mut handle = agent::spawn(llm, Arc::new(reg), CallCtx::new(Arc::new(DenyAll)), cfg);
    for question in ["why is backend failing?", "and web?"] {
        handle.send(Op::UserTurn(question.into()));
        while let Some(e) = handle.events.recv().await {
            if matches!(e, Event::TurnDone { .. }) {
                break;
            }
        }
    }
    let tools = tool_seen.lock().unwrap().clone();
    let gathered = gather_seen.lock().unwrap().clone();
    assert_eq!(tools.len(), 3, "{tools:?}");
    assert_eq!(gathered.len(), 2, "{gathered:?}");
    let first = tools[0].expect("a call inside a turn has its turn");
    assert_eq!(tools[1], Some(first), "the same turn");
    assert_eq!(
        gathered[0],
        Some(first),
        "pre-gathering is part of the turn"
    );
    let second = tools[2].expect("a call inside a turn has its turn");
    assert_ne!(second, first, "the next user turn is a new turn");
    assert_eq!(gathered[1], Some(second));
}
