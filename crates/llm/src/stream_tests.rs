//! The assembler on its own: `data` payloads in, a response out; no server, no SSE.

use super::*;
use serde_json::json;

/// Pushes each `data` payload as the client does (stopping at `[DONE]`) and finishes.
fn run(payloads: &[&str]) -> (Result<ChatResponse, Failure>, Vec<String>) {
    let mut a = Assembler::default();
    let mut texts = Vec::new();
    for p in payloads {
        match a.push_data(p) {
            Ok(Some(t)) => texts.push(t),
            Ok(None) => {}
            Err(f) => return (Err(f), texts),
        }
        if a.is_done() {
            break;
        }
    }
    (a.finish(), texts)
}

fn text(s: &str) -> String {
    json!({"choices":[{"index":0,"delta":{"content":s},"finish_reason":null}]}).to_string()
}

/// The usage a stream reports after a text chunk and then `chunk`.
fn usage_after(chunk: &str) -> Option<Usage> {
    let (r, _) = run(&[&text("hi"), chunk, "[DONE]"]);
    r.unwrap().usage
}

/// `prompt` and `completion` tokens (in all, their sum), `cached` of the prompt's read
/// from the provider's cache.
fn tokens(prompt: u64, completion: u64, cached: u64) -> Usage {
    Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: prompt + completion,
        cached_tokens: cached,
    }
}

fn finish(reason: &str) -> String {
    json!({"choices":[{"index":0,"delta":{},"finish_reason":reason}]}).to_string()
}

/// A tool-call delta with whatever of index, id, name and arguments is given.
fn call(index: Option<u64>, id: Option<&str>, name: Option<&str>, args: Option<&str>) -> String {
    let mut c = json!({});
    if let Some(i) = index {
        c["index"] = json!(i);
    }
    if let Some(id) = id {
        c["id"] = json!(id);
        c["type"] = json!("function");
    }
    let mut f = json!({});
    if let Some(n) = name {
        f["name"] = json!(n);
    }
    if let Some(a) = args {
        f["arguments"] = json!(a);
    }
    c["function"] = f;
    json!({"choices":[{"index":0,"delta":{"tool_calls":[c]}}]}).to_string()
}

#[test]
fn text_deltas_are_joined_and_emitted_one_by_one() {
    let (r, texts) = run(&[
        &text("Hel"),
        &text("lo wor"),
        &text("ld"),
        &finish("stop"),
        "[DONE]",
        &text("after done is never read"),
    ]);
    let r = r.unwrap();
    assert_eq!(r.content, "Hello world");
    assert_eq!(texts, ["Hel", "lo wor", "ld"]);
    assert_eq!(r.finish_reason.as_deref(), Some("stop"));
    assert_eq!(r.usage, None);
    assert!(r.tool_calls.is_empty());
}

#[test]
fn tool_call_deltas_assemble_by_index_in_parallel() {
    let (r, texts) = run(&[
        &call(Some(0), Some("call_a"), Some("get_pod"), Some("")),
        &call(Some(1), Some("call_b"), Some("get_events"), Some("{\"ns")),
        &call(Some(0), None, None, Some("{\"name\":")),
        &call(Some(0), None, None, Some("\"web\"}")),
        &call(Some(1), None, None, Some("\":\"prod\"}")),
        &finish("tool_calls"),
        "[DONE]",
    ]);
    let r = r.unwrap();
    assert!(texts.is_empty());
    assert_eq!(
        r.tool_calls,
        vec![
            ToolCall {
                id: "call_a".into(),
                name: "get_pod".into(),
                arguments: r#"{"name":"web"}"#.into()
            },
            ToolCall {
                id: "call_b".into(),
                name: "get_events".into(),
                arguments: r#"{"ns":"prod"}"#.into()
            },
        ]
    );
    assert_eq!(r.finish_reason.as_deref(), Some("tool_calls"));
}

#[test]
fn whole_tool_calls_in_one_chunk_without_index_or_id() {
    let (r, _) = run(&[
        r#"{"choices":[{"delta":{"tool_calls":[{"function":{"name":"a","arguments":{"x":1}}},{"function":{"name":"b","arguments":""}}]},"finish_reason":"tool_calls"}]}"#,
    ]);
    let r = r.unwrap();
    assert_eq!(r.tool_calls.len(), 2);
    assert_eq!(r.tool_calls[0].name, "a");
    assert_eq!(r.tool_calls[0].arguments, r#"{"x":1}"#);
    assert_eq!(
        r.tool_calls[1].arguments, "{}",
        "empty arguments become {{}}"
    );
    assert!(r.tool_calls[0].id.starts_with("call_"));
    assert_ne!(r.tool_calls[0].id, r.tool_calls[1].id);
}

#[test]
fn calls_without_index_are_keyed_by_id_then_position() {
    // Pieces without an index but with the call's id continue that call.
    let (r, _) = run(&[
        &call(None, Some("k1"), Some("get_pod"), Some("{\"name\"")),
        &call(None, Some("k2"), Some("get_logs"), Some("{}")),
        &call(None, Some("k1"), None, Some(":\"web\"}")),
        &finish("tool_calls"),
    ]);
    let r = r.unwrap();
    assert_eq!(r.tool_calls.len(), 2);
    assert_eq!(r.tool_calls[0].id, "k1");
    assert_eq!(r.tool_calls[0].arguments, r#"{"name":"web"}"#);
    assert_eq!(r.tool_calls[1].id, "k2");
    assert_eq!(r.tool_calls[1].name, "get_logs");
}

#[test]
fn reused_index_with_a_new_id_is_a_new_call() {
    let (r, _) = run(&[
        &call(Some(0), Some("x1"), Some("a"), Some("{}")),
        &call(Some(0), Some("x2"), Some("b"), Some("{}")),
        &call(Some(0), Some("x2"), Some("b"), Some("")),
    ]);
    let r = r.unwrap();
    let names: Vec<_> = r.tool_calls.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["a", "b"], "repeated name not doubled");
    assert_eq!(r.tool_calls[1].id, "x2");
}

#[test]
fn arguments_split_mid_json_and_around_multibyte_characters() {
    let args = r#"{"message":"héllo ✓ 日本 🚀","n":[1,2.5,{"k":null}]}"#;
    let chars: Vec<char> = args.chars().collect();
    // Every way of cutting the arguments in two, at every character: mid-key, mid-string,
    // mid-number, between a multi-byte character and its neighbours.
    for cut in 0..=chars.len() {
        let head: String = chars[..cut].iter().collect();
        let tail: String = chars[cut..].iter().collect();
        let (r, _) = run(&[
            &call(Some(0), Some("c"), Some("f"), Some(&head)),
            &call(Some(0), None, None, Some(&tail)),
            &finish("tool_calls"),
        ]);
        assert_eq!(r.unwrap().tool_calls[0].arguments, args, "cut at {cut}");
    }
    // One character per delta.
    let mut payloads = vec![call(Some(0), Some("c"), Some("f"), None)];
    payloads.extend(
        args.chars()
            .map(|ch| call(Some(0), None, None, Some(&ch.to_string()))),
    );
    let refs: Vec<&str> = payloads.iter().map(String::as_str).collect();
    let (r, _) = run(&refs);
    assert_eq!(r.unwrap().tool_calls[0].arguments, args);
}

#[test]
fn a_tool_call_cut_mid_arguments_is_a_broken_stream() {
    let cut = call(Some(0), Some("c"), Some("get_pod"), Some("{\"name\": \"we"));
    let (r, _) = run(&[&cut]);
    assert!(
        matches!(&r, Err(Failure::Stream(m)) if m.contains("middle of the get_pod tool call")),
        "{r:?}"
    );
    // With a finish reason the server says it is complete: the agent's argument check
    // reports the bad JSON to the model instead.
    let (r, _) = run(&[&cut, &finish("length")]);
    let r = r.unwrap();
    assert_eq!(r.finish_reason.as_deref(), Some("length"));
    assert_eq!(r.tool_calls[0].arguments, "{\"name\": \"we");
    // Complete arguments without finish reason or [DONE] are fine.
    let (r, _) = run(&[&call(Some(0), Some("c"), Some("get_pod"), Some("{}"))]);
    assert_eq!(r.unwrap().tool_calls.len(), 1);
}

#[test]
fn finish_reason_length_is_passed_on_with_partial_text() {
    let (r, texts) = run(&[&text("The cause is a mis"), &finish("length"), "[DONE]"]);
    let r = r.unwrap();
    assert_eq!(r.finish_reason.as_deref(), Some("length"));
    assert_eq!(r.content, "The cause is a mis");
    assert_eq!(texts, ["The cause is a mis"]);
}

#[test]
fn no_finish_reason_and_empty_finish_reason_are_none() {
    let (r, _) = run(&[
        r#"{"id":"x","choices":[{"delta":{"content":"ok"}}],"extra":{"a":1}}"#,
        r#"{"choices":[{"index":0,"delta":{"content":null},"finish_reason":""}]}"#,
    ]);
    let r = r.unwrap();
    assert_eq!(r.content, "ok");
    assert_eq!(r.finish_reason, None);
}

#[test]
fn final_usage_chunk_with_empty_choices() {
    let usage_only =
        r#"{"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15}}"#;
    assert_eq!(usage_after(usage_only), Some(tokens(12, 3, 0)));
    // `usage: null` on ordinary chunks (OpenAI with include_usage) is not usage.
    let (r, _) = run(&[r#"{"choices":[{"delta":{"content":"a"}}],"usage":null}"#]);
    assert_eq!(r.unwrap().usage, None);
    // A server that sends no total gets one computed.
    let (r, _) = run(&[
        r#"{"choices":null,"usage":{"prompt_tokens":2,"completion_tokens":1}}"#,
        "[DONE]",
    ]);
    assert_eq!(r.unwrap().usage.unwrap().total_tokens, 3);
}

#[test]
fn cached_prompt_tokens_are_read_from_the_usage_chunk() {
    // OpenAI's final chunk with include_usage.
    let usage = r#"{"id":"c","choices":[],"usage":{"prompt_tokens":2006,"completion_tokens":300,"total_tokens":2306,"prompt_tokens_details":{"cached_tokens":1920,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}"#;
    assert_eq!(usage_after(usage), Some(tokens(2006, 300, 1920)));
    // Without the details, with them null, or without the field inside: nothing cached.
    for usage in [
        r#"{"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":1}}"#,
        r#"{"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":1,"prompt_tokens_details":null}}"#,
        r#"{"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":1,"prompt_tokens_details":{"audio_tokens":0}}}"#,
    ] {
        let u = usage_after(usage).unwrap();
        assert_eq!((u.prompt_tokens, u.cached_tokens), (5, 0), "{usage}");
    }
    // A count above the whole prompt is capped at it.
    let (r, _) = run(&[
        &text("hi"),
        r#"{"choices":[],"usage":{"prompt_tokens":5,"prompt_tokens_details":{"cached_tokens":9}}}"#,
    ]);
    assert_eq!(r.unwrap().usage.unwrap().cached_tokens, 5);
}

#[test]
fn bad_chunks_and_empty_streams() {
    let (r, _) = run(&["{not json"]);
    assert!(matches!(r, Err(Failure::Bad(m)) if m.contains("not valid JSON")));
    let (r, _) = run(&[]);
    assert!(matches!(r, Err(Failure::Bad(m)) if m.contains("no stream chunks")));
    let (r, _) = run(&[r#"{"choices":[{"delta":{"role":"assistant"}}]}"#]);
    assert!(matches!(r, Err(Failure::Bad(m)) if m.contains("before the model produced")));
    let (r, _) = run(&["[DONE]"]);
    assert_eq!(
        r.unwrap(),
        ChatResponse::default(),
        "an empty but finished answer is fine"
    );
}

#[test]
fn error_chunks_and_error_events_are_in_stream_failures() {
    let (r, _) = run(&[r#"{"error":{"message":"overloaded","code":503}}"#]);
    assert_eq!(r, Err(Failure::InStream("overloaded".into())));
    let (r, _) = run(&[r#"{"error":null,"choices":[{"delta":{"content":"x"}}]}"#]);
    assert_eq!(r.unwrap().content, "x", "error: null is no error");

    let mut a = Assembler::default();
    for (data, message) in [
        (
            Some(r#"{"error":{"message":"upstream reset"}}"#),
            "upstream reset",
        ),
        (Some(r#"{"message":"quota"}"#), "quota"),
        (Some("plain words"), "plain words"),
        (None, "an error event without a message"),
    ] {
        assert_eq!(
            a.push_event(Some("error"), data),
            Err(Failure::InStream(message.into())),
            "{data:?}"
        );
    }
    // Other event names do not change how the data is read.
    assert_eq!(
        a.push_event(Some("message"), Some(&text("hi"))),
        Ok(Some("hi".into()))
    );
    assert_eq!(a.push_event(Some("ping"), None), Ok(None));
}

#[test]
fn non_streamed_completion_is_accepted() {
    let r = parse_completion(r#"{"choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}},{"id":"c2","type":"function","function":{"name":"g","arguments":"{}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}"#).unwrap();
    assert_eq!(
        r.usage.unwrap().cached_tokens,
        0,
        "no details, nothing cached"
    );
    assert_eq!(r.tool_calls.len(), 2);
    assert_eq!(r.tool_calls[1].id, "c2");
    assert_eq!(r.usage.unwrap().total_tokens, 3);
    assert!(
        matches!(parse_completion("<html>"), Err(Failure::Bad(m)) if m.contains("not a chat completion"))
    );
    let r = parse_completion(r#"{"choices":[{"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1500,"completion_tokens":20,"total_tokens":1520,"prompt_tokens_details":{"cached_tokens":1024}}}"#).unwrap();
    assert_eq!(r.content, "ok");
    let u = r.usage.unwrap();
    assert_eq!((u.prompt_tokens, u.cached_tokens), (1500, 1024));
}

#[test]
fn only_content_counts_as_progress() {
    let mut a = Assembler::default();
    let push = |a: &mut Assembler, data: &str| {
        let before = a.progress();
        a.push_data(data).unwrap();
        a.progress() != before
    };
    for idle in [
        "",
        r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#,
        r#"{"choices":[{"delta":{},"finish_reason":null}],"usage":null}"#,
        r#"{"choices":[]}"#,
    ] {
        assert!(!push(&mut a, idle), "{idle:?} is not progress");
    }
    assert_eq!(a.idle_failure(3), Failure::Timeout(3));
    for content in [
        text("x"),
        call(Some(0), Some("c"), Some("f"), None),
        call(Some(0), None, None, Some("{}")),
        r#"{"choices":[],"usage":{"prompt_tokens":1}}"#.into(),
        finish("stop"),
    ] {
        assert!(push(&mut a, &content), "{content:?} is progress");
    }
    // The same tool-call piece with nothing new (empty arguments) is not.
    assert!(!push(&mut a, &call(Some(0), None, None, Some(""))));
    assert_eq!(a.idle_failure(3), Failure::Stalled(3));
}

#[test]
fn runaway_answers_are_cut_off() {
    let mut a = Assembler::default();
    let piece = "x".repeat(1024 * 1024);
    let mut result = Ok(None);
    for _ in 0..(MAX_RESPONSE_BYTES / piece.len() + 1) {
        result = a.push_data(&text(&piece));
        if result.is_err() {
            break;
        }
    }
    assert!(matches!(result, Err(Failure::Bad(m)) if m.contains("grew past")));

    // Tool-call arguments count too.
    let mut a = Assembler::default();
    a.push_data(&call(Some(0), Some("c"), Some("f"), None))
        .unwrap();
    let mut result = Ok(None);
    for _ in 0..(MAX_RESPONSE_BYTES / piece.len() + 1) {
        result = a.push_data(&call(Some(0), None, None, Some(&piece)));
        if result.is_err() {
            break;
        }
    }
    assert!(matches!(result, Err(Failure::Bad(m)) if m.contains("grew past")));
}
