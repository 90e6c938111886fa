//! The client's own concerns: endpoints, request bodies, credentials and scrubbing.
//! Framing, assembly and retry timing have their own unit tests; the whole exchange is
//! tested against the mock server in the root crate's `tests/llm_client.rs`.

use super::*;
use crate::{ChatMessage, ToolCall, ToolSpec};

fn settings(base: &str) -> LlmSettings {
    let mut s = LlmSettings::local(base, "m");
    s.retry_base_ms = 100;
    s
}

fn request() -> ChatRequest {
    ChatRequest {
        model: "m".into(),
        messages: vec![
            ChatMessage::system("sys"),
            ChatMessage::user("why?"),
            ChatMessage::assistant_tool_calls(
                None,
                vec![ToolCall {
                    id: "call_1".into(),
                    name: "get_pod".into(),
                    arguments: "{}".into(),
                }],
            ),
            ChatMessage::tool_result("call_1", "pod is fine"),
        ],
        tools: vec![ToolSpec {
            name: "get_pod".into(),
            description: "Get a pod".into(),
            parameters: serde_json::json!({"type":"object","properties":{}}),
        }],
        temperature: Some(0.2),
        max_tokens: Some(100),
    }
}

#[test]
fn request_body_for_a_compatible_server() {
    let c = OpenAiClient::new(&settings("http://localhost:11434/v1/")).unwrap();
    assert_eq!(
        c.endpoint("m"),
        "http://localhost:11434/v1/chat/completions"
    );
    let b = c.request_body(&request()).unwrap();
    assert_eq!(b["model"], "m");
    assert_eq!(b["stream"], true);
    assert!(
        b.get("stream_options").is_none(),
        "compatible servers may reject it"
    );
    assert_eq!(b["max_tokens"], 100);
    assert_eq!(b["tool_choice"], "auto");
    assert_eq!(b["tools"][0]["type"], "function");
    assert_eq!(b["tools"][0]["function"]["name"], "get_pod");
    assert_eq!(b["messages"][0]["role"], "system");
    assert_eq!(b["messages"][2]["tool_calls"][0]["type"], "function");
    assert_eq!(b["messages"][2]["tool_calls"][0]["id"], "call_1");
    assert!(b["messages"][2].get("content").is_none());
    assert_eq!(b["messages"][3]["role"], "tool");
    assert_eq!(b["messages"][3]["tool_call_id"], "call_1");
    assert_eq!(b["messages"][3]["content"], "pod is fine");

    let mut no_tools = request();
    no_tools.tools.clear();
    let b = c.request_body(&no_tools).unwrap();
    assert!(b.get("tools").is_none() && b.get("tool_choice").is_none());
}

#[test]
fn request_body_and_endpoint_for_openai_and_azure() {
    let mut s = settings("https://api.openai.com/v1");
    s.api_key = Some(ApiKey::new("sk-secret"));
    let c = OpenAiClient::new(&s).unwrap();
    assert!(c.include_usage());
    let b = c.request_body(&request()).unwrap();
    assert_eq!(b["stream_options"]["include_usage"], true);
    assert_eq!(b["max_completion_tokens"], 100);
    assert!(!format!("{c:?}").contains("sk-secret"));

    s.kind = ProviderKind::Azure;
    s.base_url = "https://res.openai.azure.com/".into();
    let c = OpenAiClient::new(&s).unwrap();
    assert!(c.include_usage());
    assert_eq!(
        c.endpoint("gpt-4o"),
        "https://res.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"
    );
    assert!(c.auth_headers.contains_key("api-key"));
    assert!(!c.auth_headers.contains_key(AUTHORIZATION));
}

#[test]
fn url_credentials_become_basic_auth_and_leave_every_url() {
    let s = settings("https://kai:s3cr%40t@gw.example/v1/?key=k3y-value");
    let c = OpenAiClient::new(&s).unwrap();
    assert_eq!(
        c.basic_auth,
        Some(("kai".to_string(), Some("s3cr@t".to_string())))
    );
    assert_eq!(
        c.endpoint("m"),
        "https://gw.example/v1/chat/completions?key=k3y-value"
    );
    let dbg = format!("{c:?}");
    assert!(!dbg.contains("s3cr") && !dbg.contains("k3y-value"), "{dbg}");
    let e = c.to_error(
        Failure::Transport(format!(
            "error sending request for url ({}): s3cr@t rejected",
            c.endpoint("m")
        )),
        1,
        &c.endpoint("m"),
        "m",
    );
    let text = format!("{e} {e:?}");
    assert!(
        !text.contains("s3cr") && !text.contains("k3y-value"),
        "{text}"
    );
    assert!(
        text.contains("gw.example/v1/chat/completions?key=***"),
        "{text}"
    );

    let c = OpenAiClient::new(&settings("https://tok-1234@gw.example/v1")).unwrap();
    assert_eq!(c.basic_auth, Some(("tok-1234".to_string(), None)));
    let e = c.to_error(
        Failure::Status {
            status: 401,
            message: "bad token tok-1234".into(),
            code: None,
            retry_after: None,
        },
        1,
        &c.endpoint("m"),
        "m",
    );
    assert!(!e.to_string().contains("tok-1234"), "{e}");
    assert!(!format!("{c:?}").contains("tok-1234"));

    let mut az = settings("https://res.openai.azure.com?sig=abc");
    az.kind = ProviderKind::Azure;
    assert_eq!(
        OpenAiClient::new(&az).unwrap().endpoint("d"),
        "https://res.openai.azure.com/openai/deployments/d/chat/completions?api-version=2024-10-21&sig=abc"
    );
}

#[test]
fn key_is_scrubbed_from_server_messages() {
    let mut s = settings("http://localhost:1/v1");
    s.api_key = Some(ApiKey::new("sk-secret-123"));
    let c = OpenAiClient::new(&s).unwrap();
    let e = c.to_error(
        Failure::Status {
            status: 401,
            message: "Incorrect API key provided: sk-secret-123".into(),
            code: None,
            retry_after: None,
        },
        1,
        "http://localhost:1/v1/chat/completions",
        "m",
    );
    assert!(!e.to_string().contains("sk-secret-123"), "{e}");
    assert!(matches!(e, LlmError::Auth(_)));
}

#[test]
fn settings_reach_the_retry_policy_and_the_dialect() {
    let mut s = settings("http://localhost:1/v1");
    s.max_retries = 7;
    let c = OpenAiClient::new(&s).unwrap();
    assert_eq!(
        c.retry,
        RetryPolicy {
            max_retries: 7,
            base: Duration::from_millis(100)
        }
    );
    assert_eq!(c.dialect, Dialect::default());
    let c = OpenAiClient::new(&settings("https://api.openai.com/v1")).unwrap();
    assert_eq!(
        c.dialect,
        Dialect {
            include_usage: true,
            max_completion_tokens: true
        }
    );
    // The body the client sends is the one it shows.
    let req = request();
    let sent: Value =
        serde_json::from_slice(&serde_json::to_vec(&c.wire_request(&req)).unwrap()).unwrap();
    let shown = c.request_body(&req).unwrap();
    assert_eq!(sent["messages"], shown["messages"]);
    assert_eq!(sent["tools"], shown["tools"]);
}
