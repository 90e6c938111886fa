//! `OpenAiClient` against the scripted mock server: streaming, tool calls, quirks,
//! retries, error mapping, Azure, and that the key never leaks into errors.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use kai::config::{ApiKey, LlmSettings, ProviderKind};
use kai::llm::openai::OpenAiClient;
use kai::llm::{
    ChatMessage, ChatRequest, ChatResponse, LlmClient, LlmError, ToolCall, ToolSpec, Usage,
};
use mock_llm::{MockLlm, Reply};
use serde_json::json;

const MODEL: &str = "test-model";

fn settings(mock: &MockLlm) -> LlmSettings {
    let mut s = LlmSettings::local(mock.base_url(), MODEL);
    s.retry_base_ms = 5;
    s.max_retries = 2;
    s.request_timeout_secs = 5;
    s
}

fn client(s: &LlmSettings) -> OpenAiClient {
    OpenAiClient::new(s).unwrap()
}

fn ask(text: &str) -> ChatRequest {
    ChatRequest {
        model: MODEL.into(),
        messages: vec![ChatMessage::system("You are kai."), ChatMessage::user(text)],
        tools: Vec::new(),
        temperature: None,
        max_tokens: None,
    }
}

/// A fresh mock serving `script`, asked "?" once with the test settings.
async fn ask_once(script: Vec<Reply>) -> (MockLlm, Result<ChatResponse, LlmError>, Vec<String>) {
    let mock = MockLlm::start(script);
    let (r, texts) = run(&client(&settings(&mock)), &ask("?")).await;
    (mock, r, texts)
}

/// The error of one question asked with `script`, which came after a single request:
/// kai does not retry it.
async fn error_without_retry(script: Vec<Reply>) -> LlmError {
    let (mock, r, _) = ask_once(script).await;
    assert_eq!(mock.request_count(), 1);
    r.unwrap_err()
}

async fn run(
    client: &OpenAiClient,
    req: &ChatRequest,
) -> (Result<ChatResponse, LlmError>, Vec<String>) {
    let mut texts = Vec::new();
    let r = client
        .chat(req, &mut |t: &str| texts.push(t.to_string()))
        .await;
    (r, texts)
}

#[tokio::test]
async fn text_is_streamed_incrementally_and_reassembled() {
    let answer = "The pod backend-7f9 is crashlooping: its previous log ends in a panic.";
    let mock = MockLlm::start(vec![Reply::text(answer)]);
    let (r, texts) = run(&client(&settings(&mock)), &ask("why?")).await;
    let r = r.unwrap();
    assert_eq!(r.content, answer);
    assert!(texts.len() >= 3, "on_text called per delta: {texts:?}");
    assert_eq!(texts.concat(), answer);
    assert_eq!(r.finish_reason.as_deref(), Some("stop"));
    assert!(r.tool_calls.is_empty());
    assert_eq!(r.usage, None, "no usage chunk, no usage");

    let body = &mock.requests()[0];
    assert_eq!(body["model"], MODEL);
    assert_eq!(body["stream"], true);
    assert!(
        body.get("stream_options").is_none(),
        "local servers don't get stream_options"
    );
    assert!(body.get("tools").is_none() && body.get("tool_choice").is_none());
    assert_eq!(
        body["messages"][1],
        json!({"role": "user", "content": "why?"})
    );
    let rec = &mock.recorded()[0];
    assert_eq!(rec.path, "/v1/chat/completions");
    assert_eq!(rec.header("authorization"), None, "no key, no header");
}

#[tokio::test]
async fn tool_call_deltas_are_assembled_including_parallel_calls() {
    let args_a = r#"{"namespace":"prod","name":"backend-7f9","previous":true}"#;
    let args_b = r#"{"namespace":"prod","field_selector":"involvedObject.name=backend-7f9"}"#;
    let mock = MockLlm::start(vec![
        Reply::tool_call("get_logs", args_a),
        Reply::ToolCalls(vec![
            ("get_logs".into(), args_a.into()),
            ("list_events".into(), args_b.into()),
        ]),
        Reply::TextAndToolCalls(
            "Let me look.".into(),
            vec![("describe".into(), "{}".into())],
        ),
    ]);
    let c = client(&settings(&mock));

    let (r, texts) = run(&c, &ask("why?")).await;
    let r = r.unwrap();
    assert!(texts.is_empty(), "tool calls are not text: {texts:?}");
    assert_eq!(
        r.tool_calls,
        vec![ToolCall {
            id: "call_1".into(),
            name: "get_logs".into(),
            arguments: args_a.into()
        }]
    );
    assert_eq!(r.finish_reason.as_deref(), Some("tool_calls"));

    let (r, _) = run(&c, &ask("why?")).await;
    let r = r.unwrap();
    assert_eq!(
        r.tool_calls,
        vec![
            ToolCall {
                id: "call_2".into(),
                name: "get_logs".into(),
                arguments: args_a.into()
            },
            ToolCall {
                id: "call_3".into(),
                name: "list_events".into(),
                arguments: args_b.into()
            },
        ]
    );

    let (r, texts) = run(&c, &ask("why?")).await;
    let r = r.unwrap();
    assert_eq!(texts.concat(), "Let me look.");
    assert_eq!(r.content, "Let me look.");
    assert_eq!(r.tool_calls.len(), 1);
    assert_eq!(r.tool_calls[0].name, "describe");
    assert_eq!(mock.remaining(), 0);
}

#[tokio::test]
async fn missing_finish_reason_is_fine() {
    let (_, r, _) = ask_once(vec![Reply::NoFinishReason("all good".into())]).await;
    let r = r.unwrap();
    assert_eq!(r.content, "all good");
    assert_eq!(r.finish_reason, None);
}

#[tokio::test]
async fn stream_without_done_and_with_sse_noise_is_fine() {
    let body = concat!(
        ": ping\n\n",
        "event: message\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"par\"}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"tial\"},\"finish_reason\":\"length\"}],\"timings\":{}}\n\n",
    );
    let (_, r, texts) = ask_once(vec![Reply::RawSse(body.into())]).await;
    let r = r.unwrap();
    assert_eq!(texts, ["par", "tial"]);
    assert_eq!(r.finish_reason.as_deref(), Some("length"));
}

#[tokio::test]
async fn usage_chunk_is_reported() {
    let mock = MockLlm::start(vec![
        Reply::TextAndUsage("hi".into(), mock_llm::Usage::new(120, 7)),
        Reply::tool_call("get_pod", "{}").with_usage(mock_llm::Usage::new(5, 1)),
        Reply::TextAndUsage("hi".into(), mock_llm::Usage::new(2000, 9).with_cached(1536)),
    ]);
    let c = client(&settings(&mock));
    let (r, _) = run(&c, &ask("?")).await;
    assert_eq!(
        r.unwrap().usage,
        Some(Usage {
            prompt_tokens: 120,
            completion_tokens: 7,
            total_tokens: 127,
            cached_tokens: 0,
        })
    );
    let (r, _) = run(&c, &ask("?")).await;
    let r = r.unwrap();
    assert_eq!(r.usage.unwrap().total_tokens, 6);
    assert_eq!(r.tool_calls.len(), 1);
    // OpenAI's prompt_tokens_details, through the real client.
    let (r, _) = run(&c, &ask("?")).await;
    let u = r.unwrap().usage.unwrap();
    assert_eq!((u.prompt_tokens, u.cached_tokens), (2000, 1536));
}

#[tokio::test]
async fn rate_limit_with_retry_after_is_waited_out() {
    let mock = MockLlm::start(vec![Reply::rate_limited(1), Reply::text("ok")]);
    let started = Instant::now();
    let (r, _) = run(&client(&settings(&mock)), &ask("?")).await;
    assert_eq!(r.unwrap().content, "ok");
    assert_eq!(mock.request_count(), 2);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "Retry-After: 1 honoured (base backoff is 5 ms)"
    );
}

#[tokio::test]
async fn rate_limit_exhausted_is_rate_limited() {
    let slow_down = || Reply::Status(429, r#"{"error":{"message":"slow down"}}"#.into(), None);
    let mock = MockLlm::start(vec![slow_down(), slow_down(), slow_down()]);
    let s = settings(&mock);
    let (r, _) = run(&client(&s), &ask("?")).await;
    match r.unwrap_err() {
        LlmError::RateLimited { attempts, message } => {
            assert_eq!(attempts, 3);
            assert_eq!(message, "slow down");
        }
        e => panic!("expected RateLimited, got {e:?}"),
    }
    assert_eq!(mock.request_count(), 3);
}

#[tokio::test]
async fn quota_exhaustion_is_not_retried() {
    let body = json!({"error": {"message": "You exceeded your current quota", "type": "insufficient_quota", "code": "insufficient_quota"}});
    let (mock, r, _) = ask_once(vec![Reply::Status(429, body.to_string(), None)]).await;
    assert!(
        matches!(r, Err(LlmError::RateLimited { attempts: 1, .. })),
        "{r:?}"
    );
    assert_eq!(mock.request_count(), 1);
}

#[tokio::test]
async fn server_errors_are_retried_until_the_budget_is_spent() {
    let mock = MockLlm::start(vec![
        Reply::error(500, "boom"),
        Reply::error(503, "overloaded"),
        Reply::error(502, "bad gateway"),
    ]);
    let s = settings(&mock);
    let (r, _) = run(&client(&s), &ask("?")).await;
    match r.unwrap_err() {
        LlmError::Server {
            status,
            attempts,
            message,
        } => {
            assert_eq!(attempts, s.max_retries + 1);
            assert_eq!(status, 502, "the last failure is reported");
            assert_eq!(message, "bad gateway");
        }
        e => panic!("expected Server, got {e:?}"),
    }
    assert_eq!(mock.request_count(), 3);
}

#[tokio::test]
async fn transient_errors_then_success() {
    let (mock, r, texts) = ask_once(vec![
        Reply::Status(529, "overloaded".into(), None),
        Reply::RawSse("data: {\"error\":{\"message\":\"upstream reset\"}}\n\n".into()),
        Reply::text("recovered"),
    ])
    .await;
    assert_eq!(r.unwrap().content, "recovered");
    assert_eq!(texts.concat(), "recovered", "nothing from failed attempts");
    assert_eq!(mock.request_count(), 3);
}

#[tokio::test]
async fn no_retry_once_text_was_shown() {
    let body = concat!(
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Half an ans\"}}]}\n\n",
        "data: {\"error\":{\"message\":\"model crashed\"}}\n\n",
    );
    let (mock, r, texts) = ask_once(vec![Reply::RawSse(body.into()), Reply::text("never")]).await;
    assert!(
        matches!(r, Err(LlmError::Server { attempts: 1, .. })),
        "{r:?}"
    );
    assert_eq!(texts, ["Half an ans"]);
    assert_eq!(mock.request_count(), 1);
}

#[tokio::test]
async fn unauthorized_is_auth_without_retry() {
    let e = error_without_retry(vec![
        Reply::error(401, "Invalid API key"),
        Reply::text("no"),
    ])
    .await;
    assert!(
        matches!(&e, LlmError::Auth(m) if m.contains("Invalid API key")),
        "{e:?}"
    );
}

#[tokio::test]
async fn unknown_model_is_model_not_found() {
    let mock = MockLlm::start(vec![
        Reply::error(404, "The model `test-model` does not exist"),
        Reply::error(400, "model \"test-model\" not found, try pulling it first"),
    ]);
    let c = client(&settings(&mock));
    for _ in 0..2 {
        let (r, _) = run(&c, &ask("?")).await;
        match r.unwrap_err() {
            LlmError::ModelNotFound { model, message } => {
                assert_eq!(model, MODEL);
                assert!(message.contains("test-model"), "{message}");
            }
            e => panic!("expected ModelNotFound, got {e:?}"),
        }
    }
    assert_eq!(mock.request_count(), 2, "neither is retried");
}

#[tokio::test]
async fn other_client_errors_are_bad_request_with_the_server_message() {
    let e = error_without_retry(vec![Reply::error(
        400,
        "This model's maximum context length is 8192 tokens",
    )])
    .await;
    match e {
        LlmError::BadRequest { status, message } => {
            assert_eq!(status, 400);
            assert_eq!(
                message,
                "This model's maximum context length is 8192 tokens"
            );
        }
        e => panic!("expected BadRequest, got {e:?}"),
    }
}

#[tokio::test]
async fn html_instead_of_sse_is_a_bad_response() {
    let e = error_without_retry(vec![Reply::Garbage(
        "<!DOCTYPE html><html><title>Sign in to the corporate proxy</title></html>".into(),
    )])
    .await;
    assert!(
        matches!(&e, LlmError::BadResponse(m) if m.contains("corporate proxy")),
        "{e:?}"
    );
}

#[tokio::test]
async fn non_json_stream_is_a_bad_response() {
    let (_, r, _) = ask_once(vec![Reply::RawSse("data: {\"choices\": [oops\n\n".into())]).await;
    assert!(matches!(r, Err(LlmError::BadResponse(_))), "{r:?}");
}

#[tokio::test]
async fn a_hanging_server_times_out() {
    let mock = MockLlm::start(vec![Reply::Hang]);
    let mut s = settings(&mock);
    s.request_timeout_secs = 1;
    let started = Instant::now();
    let (r, _) = run(&client(&s), &ask("?")).await;
    assert!(matches!(r, Err(LlmError::Timeout(1))), "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(mock.request_count(), 1, "a timeout is not retried");
}

#[tokio::test]
async fn a_stalled_stream_times_out_after_partial_text() {
    let mock = MockLlm::start(vec![Reply::StallAfter("The cause is".into())]);
    let mut s = settings(&mock);
    s.request_timeout_secs = 1;
    let (r, texts) = run(&client(&s), &ask("?")).await;
    assert!(matches!(r, Err(LlmError::Stalled(1))), "{r:?}");
    assert_eq!(texts.concat(), "The cause is");
}

/// Runs `req` with a generous "does not hang" bound: an idle timeout that keep-alives
/// reset would hold the client for MAX_STREAM (600 s).
async fn run_bounded(
    client: &OpenAiClient,
    req: &ChatRequest,
) -> (Result<ChatResponse, LlmError>, Vec<String>) {
    tokio::time::timeout(Duration::from_secs(30), run(client, req))
        .await
        .expect("the client kept waiting for 30 s on a server that sends no content")
}

#[tokio::test]
async fn keep_alive_comments_do_not_reset_the_timeout() {
    let mock = MockLlm::start(vec![Reply::KeepAliveOnly, Reply::text("never")]);
    let mut s = settings(&mock);
    s.request_timeout_secs = 1;
    let (r, texts) = run_bounded(&client(&s), &ask("?")).await;
    let e = r.unwrap_err();
    assert!(matches!(e, LlmError::Timeout(1)), "{e:?}");
    assert!(texts.is_empty());
    let msg = e.to_string();
    assert!(
        msg.contains("1 seconds") && msg.contains("request_timeout_secs"),
        "names the timeout and how to raise it: {msg}"
    );
    assert_eq!(mock.request_count(), 1, "a timeout is not retried");
}

#[tokio::test]
async fn keep_alives_after_some_tokens_are_a_stall() {
    let mock = MockLlm::start(vec![Reply::KeepAliveAfter("The cause is".into())]);
    let mut s = settings(&mock);
    s.request_timeout_secs = 1;
    let (r, texts) = run_bounded(&client(&s), &ask("?")).await;
    let e = r.unwrap_err();
    assert!(matches!(e, LlmError::Stalled(1)), "{e:?}");
    assert_eq!(texts.concat(), "The cause is");
    let msg = e.to_string();
    assert!(
        msg.contains("keep-alives") && msg.contains("request_timeout_secs"),
        "{msg}"
    );
}

#[tokio::test]
async fn empty_events_and_blank_lines_do_not_reset_the_timeout() {
    let beats = [
        // A role-only delta, an empty delta, empty content, empty data, blank lines.
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":null}]}\n\n",
        "data: \n\n",
        "\n\n\n",
        "data: {\"choices\":[],\"usage\":null}\n\n",
    ];
    for beat in beats {
        let mock = MockLlm::start(vec![Reply::HeartbeatAfter("Hi".into(), beat.into())]);
        let mut s = settings(&mock);
        s.request_timeout_secs = 1;
        let (r, texts) = run_bounded(&client(&s), &ask("?")).await;
        assert!(matches!(r, Err(LlmError::Stalled(1))), "{beat:?}: {r:?}");
        assert_eq!(texts.concat(), "Hi");
    }
}

#[tokio::test]
async fn a_slow_stream_that_keeps_producing_content_is_not_cut() {
    // Each event 300 ms apart: the whole answer takes well over the 1 s timeout, but no
    // gap between pieces of content does.
    let answer = "a slow but steady answer, one piece at a time";
    let mock = MockLlm::start(vec![Reply::Slow(
        Duration::from_millis(300),
        Box::new(Reply::text(answer)),
    )]);
    let mut s = settings(&mock);
    s.request_timeout_secs = 1;
    let started = Instant::now();
    let (r, _) = run_bounded(&client(&s), &ask("?")).await;
    assert_eq!(r.unwrap().content, answer);
    assert!(
        started.elapsed() > Duration::from_secs(1),
        "the test is meaningful"
    );
}

#[tokio::test]
async fn retries_still_work_before_an_idle_timeout() {
    let mock = MockLlm::start(vec![
        Reply::rate_limited(0),
        Reply::error(503, "overloaded"),
        Reply::KeepAliveOnly,
    ]);
    let mut s = settings(&mock);
    s.request_timeout_secs = 1;
    let (r, _) = run_bounded(&client(&s), &ask("?")).await;
    assert!(matches!(r, Err(LlmError::Timeout(1))), "{r:?}");
    assert_eq!(
        mock.request_count(),
        3,
        "429 and 503 retried, the stall not"
    );

    let mock = MockLlm::start(vec![
        Reply::error(502, "bad gateway"),
        Reply::Slow(
            Duration::from_millis(200),
            Box::new(Reply::text("recovered")),
        ),
    ]);
    let mut s = settings(&mock);
    s.request_timeout_secs = 1;
    let (r, _) = run_bounded(&client(&s), &ask("?")).await;
    assert_eq!(r.unwrap().content, "recovered");
}

/// A tool call whose arguments stop mid-JSON, then the body ends: no finish reason.
fn cut_tool_call() -> Reply {
    Reply::RawSse(concat!(
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"c1\",\"function\":{\"name\":\"get_logs\",\"arguments\":\"\"}}]}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"name\\\": \\\"back\"}}]}}]}\n\n",
    ).into())
}

#[tokio::test]
async fn a_stream_cut_mid_tool_call_is_a_clear_error_and_retried() {
    let (_, r, _) = ask_once(vec![cut_tool_call(), cut_tool_call(), cut_tool_call()]).await;
    match r.unwrap_err() {
        LlmError::Connection {
            attempts, message, ..
        } => {
            assert_eq!(attempts, 3);
            assert!(
                message.contains("ended in the middle of the get_logs tool call"),
                "{message}"
            );
        }
        e => panic!("expected Connection, got {e:?}"),
    }

    let (_, r, _) = ask_once(vec![
        cut_tool_call(),
        Reply::tool_call("get_logs", r#"{"name":"backend"}"#),
    ])
    .await;
    let r = r.unwrap();
    assert_eq!(r.tool_calls.len(), 1);
    assert_eq!(r.tool_calls[0].arguments, r#"{"name":"backend"}"#);
}

#[tokio::test]
async fn finish_reason_length_is_passed_on() {
    let body = concat!(
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"The cause is a mis\"}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"length\"}]}\n\n",
        "data: [DONE]\n\n",
    );
    let (_, r, _) = ask_once(vec![Reply::RawSse(body.into())]).await;
    let r = r.unwrap();
    assert_eq!(r.finish_reason.as_deref(), Some("length"));
    assert_eq!(r.content, "The cause is a mis");
}

#[tokio::test]
async fn connection_refused_is_connection_after_retries() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut s = LlmSettings::local(format!("http://127.0.0.1:{port}/v1"), MODEL);
    s.retry_base_ms = 5;
    s.max_retries = 2;
    let (r, _) = run(&client(&s), &ask("?")).await;
    match r.unwrap_err() {
        LlmError::Connection { url, attempts, .. } => {
            assert_eq!(attempts, 3);
            assert_eq!(url, format!("http://127.0.0.1:{port}/v1/chat/completions"));
        }
        e => panic!("expected Connection, got {e:?}"),
    }
}

#[tokio::test]
async fn exhausted_script_fails_loudly() {
    let mock = MockLlm::start(vec![]);
    let mut s = settings(&mock);
    s.max_retries = 0;
    let (r, _) = run(&client(&s), &ask("?")).await;
    let e = r.unwrap_err();
    assert!(e.to_string().contains(mock_llm::EXHAUSTED), "{e}");
}

#[tokio::test]
async fn request_carries_tools_and_tool_results() {
    let mock = MockLlm::start(vec![Reply::dynamic(|body| {
        // Answer from what was sent, as an agent test would.
        let last = &body["messages"].as_array().unwrap().last().unwrap()["content"];
        Reply::Text(format!("saw {last}"))
    })]);
    let mut s = settings(&mock);
    s.api_key = Some(ApiKey::new("sk-local-test"));
    let req = ChatRequest {
        model: MODEL.into(),
        messages: vec![
            ChatMessage::system("You are kai."),
            ChatMessage::user("why is backend crashlooping?"),
            ChatMessage::assistant_tool_calls(
                Some("Checking logs.".into()),
                vec![ToolCall {
                    id: "call_9".into(),
                    name: "get_logs".into(),
                    arguments: r#"{"name":"backend"}"#.into(),
                }],
            ),
            ChatMessage::tool_result("call_9", "panic: missing DATABASE_URL"),
        ],
        tools: vec![ToolSpec {
            name: "get_logs".into(),
            description: "Container logs".into(),
            parameters: json!({"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}),
        }],
        temperature: Some(0.0),
        max_tokens: Some(512),
    };
    let (r, _) = run(&client(&s), &req).await;
    assert_eq!(r.unwrap().content, "saw \"panic: missing DATABASE_URL\"");

    let body = &mock.requests()[0];
    assert_eq!(body["model"], MODEL);
    assert_eq!(body["tool_choice"], "auto");
    assert_eq!(
        body["tools"],
        json!([{"type": "function", "function": {
            "name": "get_logs",
            "description": "Container logs",
            "parameters": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
        }}])
    );
    assert_eq!(
        body["messages"][2],
        json!({"role": "assistant", "content": "Checking logs.", "tool_calls": [
            {"id": "call_9", "type": "function", "function": {"name": "get_logs", "arguments": "{\"name\":\"backend\"}"}}
        ]})
    );
    assert_eq!(
        body["messages"][3],
        json!({"role": "tool", "content": "panic: missing DATABASE_URL", "tool_call_id": "call_9"})
    );
    assert_eq!(body["max_tokens"], 512);
    assert_eq!(body["temperature"], 0.0);
    let rec = &mock.recorded()[0];
    assert_eq!(rec.header("authorization"), Some("Bearer sk-local-test"));
}

#[tokio::test]
async fn azure_uses_the_deployment_path_and_api_key_header() {
    let mock = MockLlm::start(vec![
        Reply::TextAndUsage("hello from azure".into(), mock_llm::Usage::new(3, 4)),
        Reply::text("again"),
    ]);
    let mut s = settings(&mock);
    s.kind = ProviderKind::Azure;
    s.base_url = mock.root_url();
    s.api_key = Some(ApiKey::new("az-secret-key"));
    let (r, _) = run(&client(&s), &ask("?")).await;
    let r = r.unwrap();
    assert_eq!(r.content, "hello from azure");
    assert_eq!(r.usage.unwrap().total_tokens, 7);
    let rec = &mock.recorded()[0];
    assert_eq!(
        rec.path,
        "/openai/deployments/test-model/chat/completions?api-version=2024-10-21"
    );
    assert_eq!(rec.header("api-key"), Some("az-secret-key"));
    assert_eq!(rec.header("authorization"), None);
    assert_eq!(rec.body["stream_options"]["include_usage"], true);

    s.api_version = Some("2025-01-01-preview".into());
    let (r, _) = run(&client(&s), &ask("?")).await;
    assert_eq!(r.unwrap().content, "again");
    assert!(mock.recorded()[1]
        .path
        .ends_with("?api-version=2025-01-01-preview"));
}

#[tokio::test]
async fn credentials_in_the_base_url_never_appear_in_errors_debug_or_logs() {
    let logs = kai_test_support::SharedBuf::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // The test runtime is current-thread, so a thread default covers the client.
    let _guard = tracing::subscriber::set_default(subscriber);

    // Nothing listens: connection refused, after retries (which log).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut s = LlmSettings::local(
        format!("http://kai:hunter2@127.0.0.1:{port}/v1?key=hunter3"),
        MODEL,
    );
    s.retry_base_ms = 5;
    s.max_retries = 1;
    let c = client(&s);
    let debug = format!("{c:?}");
    assert!(
        debug.contains("127.0.0.1") && !debug.contains("hunter"),
        "{debug}"
    );
    let (r, _) = run(&c, &ask("?")).await;
    let e = r.unwrap_err();
    assert!(matches!(e, LlmError::Connection { .. }), "{e:?}");
    for text in [e.to_string(), format!("{e:?}")] {
        assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
        assert!(
            !text.contains("hunter2") && !text.contains("hunter3"),
            "{text}"
        );
    }

    // A live server: the credentials still work (basic auth, the query kept), and an
    // HTTP error that names the URL does not name them.
    let mock = MockLlm::start(vec![
        Reply::text("ok"),
        Reply::error(404, "no such route"),
        Reply::error(500, "kai:hunter2 is not welcome here"),
    ]);
    let mut s = settings(&mock);
    s.base_url = format!("http://kai:hunter2@{}/v1?key=hunter3", mock.addr());
    s.max_retries = 0;
    let c = client(&s);
    let (r, _) = run(&c, &ask("?")).await;
    assert_eq!(r.unwrap().content, "ok");
    let rec = &mock.recorded()[0];
    assert_eq!(rec.path, "/v1/chat/completions?key=hunter3");
    // base64("kai:hunter2")
    assert_eq!(rec.header("authorization"), Some("Basic a2FpOmh1bnRlcjI="));
    for _ in 0..2 {
        let (r, _) = run(&c, &ask("?")).await;
        let e = r.unwrap_err();
        for text in [e.to_string(), format!("{e:?}")] {
            assert!(
                !text.contains("hunter2") && !text.contains("hunter3"),
                "{text}"
            );
        }
    }

    let logs = logs.text();
    assert!(
        logs.contains("127.0.0.1"),
        "the client logged its URL: {logs}"
    );
    assert!(
        !logs.contains("hunter2") && !logs.contains("hunter3"),
        "{logs}"
    );
}

#[tokio::test]
async fn the_api_key_never_appears_in_errors() {
    let key = "sk-proj-VERYSECRET0123456789";
    let echo = format!("Incorrect API key provided: {key}");
    let mock = MockLlm::start(vec![
        Reply::error(401, echo.clone()),
        Reply::error(400, echo.clone()),
        Reply::error(404, echo.clone()),
        Reply::Status(500, echo.clone(), None),
        Reply::Garbage(format!("<html>{echo}</html>")),
        Reply::RawSse(format!(
            "data: {{\"error\":{{\"message\":\"{echo}\"}}}}\n\n"
        )),
    ]);
    let mut s = settings(&mock);
    s.api_key = Some(ApiKey::new(key));
    s.max_retries = 0;
    let c = client(&s);
    assert!(!format!("{c:?}").contains(key));
    for _ in 0..6 {
        let (r, _) = run(&c, &ask("?")).await;
        let e = r.unwrap_err();
        assert!(!e.to_string().contains(key), "{e}");
        assert!(!format!("{e:?}").contains(key), "{e:?}");
    }
    // And a refused connection's error names the URL, not the key.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    s.base_url = format!("http://127.0.0.1:{port}/v1");
    let (r, _) = run(&client(&s), &ask("?")).await;
    let e = r.unwrap_err();
    assert!(matches!(e, LlmError::Connection { .. }));
    assert!(!e.to_string().contains(key), "{e}");
}
