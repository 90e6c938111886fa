//! Scripting the model (mock-llm) and reading what kai sent it.

use kai_core::tools::ToolError;
use mock_llm::Reply;
use serde_json::Value;

/// One reply calling tool `name` with `args`.
pub fn tool_call(name: &str, args: Value) -> Reply {
    tool_calls(vec![(name, args)])
}

/// One reply calling these tools in parallel.
pub fn tool_calls(calls: Vec<(&str, Value)>) -> Reply {
    Reply::ToolCalls(
        calls
            .into_iter()
            .map(|(n, a)| (n.to_string(), a.to_string()))
            .collect(),
    )
}

/// The content of the messages with `role` in a recorded request, in order.
pub fn messages(req: &Value, role: &str) -> Vec<String> {
    req["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == role)
        .map(|m| m["content"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The user messages of a recorded request.
pub fn user_messages(req: &Value) -> Vec<String> {
    messages(req, "user")
}

/// Every tool result (pre-gathered context included) the model saw in a request.
pub fn tool_results(req: &Value) -> String {
    messages(req, "tool").join("\n---\n")
}

/// The names of the tools a request offered the model.
pub fn tool_names(req: &Value) -> Vec<String> {
    req["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["function"]["name"].as_str().map(String::from))
        .collect()
}

/// The part of a chat request a provider's prompt cache can reuse, exactly as kai sent
/// it (`raw` is the body as it arrived, see `MockLlm::raw_chat_requests`): the `tools`
/// array and the system messages before the first other message, as their original
/// bytes. Key order and spacing count, since a provider caches bytes (tokens), not JSON.
pub fn cache_prefix(raw: &str) -> String {
    let members = json_members(raw).unwrap_or_else(|| panic!("not a JSON object: {raw}"));
    let get = |key: &str| {
        members
            .iter()
            .find(|(k, _)| *k == format!("\"{key}\""))
            .map(|(_, v)| *v)
    };
    let mut out = format!("tools: {}\n", get("tools").unwrap_or("(none)"));
    let messages = get("messages").expect("a chat request has messages");
    for m in json_elements(messages).expect("messages is an array") {
        let role = serde_json::from_str::<Value>(m).unwrap()["role"].clone();
        if role != "system" {
            break;
        }
        out.push_str("system: ");
        out.push_str(m);
        out.push('\n');
    }
    out
}

fn skip_ws(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && s[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// The end (exclusive) of the JSON value starting at `i`.
fn value_end(s: &[u8], i: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut j = i;
    let mut in_string = false;
    while j < s.len() {
        let c = s[j];
        if in_string {
            match c {
                b'\\' => j += 1,
                b'"' => {
                    in_string = false;
                    if depth == 0 {
                        return Some(j + 1);
                    }
                }
                _ => {}
            }
        } else {
            match c {
                b'"' => in_string = true,
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth = depth.checked_sub(1)?;
                    if depth == 0 {
                        return Some(j + 1);
                    }
                }
                b',' | b':' if depth == 0 => return Some(j),
                c if depth == 0 && c.is_ascii_whitespace() => return Some(j),
                _ => {}
            }
        }
        j += 1;
    }
    (depth == 0 && !in_string).then_some(j)
}

/// The top-level items between `open` and `close` (`{` `}` or `[` `]`), separated by
/// commas; `item` reads one from its first byte and says where it ends.
fn json_items<T>(
    text: &str,
    (open, close): (u8, u8),
    item: impl Fn(usize) -> Option<(T, usize)>,
) -> Option<Vec<T>> {
    let s = text.as_bytes();
    let mut i = skip_ws(s, 0);
    (s.get(i) == Some(&open)).then_some(())?;
    i = skip_ws(s, i + 1);
    let mut out = Vec::new();
    while s.get(i) != Some(&close) {
        let (t, end) = item(i)?;
        out.push(t);
        i = skip_ws(s, end);
        if s.get(i) == Some(&b',') {
            i = skip_ws(s, i + 1);
        }
        (i < s.len()).then_some(())?;
    }
    Some(out)
}

/// The top-level members of a JSON object as (raw key, raw value) slices.
fn json_members(text: &str) -> Option<Vec<(&str, &str)>> {
    let s = text.as_bytes();
    json_items(text, (b'{', b'}'), |key| {
        let key_end = value_end(s, key)?;
        let colon = skip_ws(s, key_end);
        (s.get(colon) == Some(&b':')).then_some(())?;
        let v = skip_ws(s, colon + 1);
        let v_end = value_end(s, v)?;
        Some(((&text[key..key_end], &text[v..v_end]), v_end))
    })
}

/// The elements of a JSON array as raw slices.
fn json_elements(text: &str) -> Option<Vec<&str>> {
    let s = text.as_bytes();
    json_items(text, (b'[', b']'), |i| {
        let end = value_end(s, i)?;
        Some((&text[i..end], end))
    })
}

/// The tools that change the cluster: what `--read-only` must not offer and what needs an
/// approval. Written out here, not taken from kai, so the tests check kai against it.
pub const MUTATING_TOOLS: &[&str] = &[
    // Every change, as the model is offered them; the rest are the changes' own names.
    "propose_change",
    "apply_manifest",
    "patch_resource",
    "scale",
    "rollout_restart",
    "rollout_undo",
    "set_image",
    "delete_resource",
];

/// The message of a tool call that had to fail with an error the model sees (not one
/// that ends the turn).
#[track_caller]
pub fn model_err(r: Result<String, ToolError>) -> String {
    match r {
        Err(ToolError::Model(m)) => m,
        other => panic!("expected a model error, got {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn requests_are_read_by_role() {
        let req = json!({
            "messages": [
                {"role": "system", "content": "sys"},
                {"role": "user", "content": "why?"},
                {"role": "tool", "content": "one"},
                {"role": "tool", "content": "two"},
            ],
            "tools": [{"function": {"name": "get_logs"}}, {"function": {"name": "scale"}}],
        });
        assert_eq!(user_messages(&req), ["why?"]);
        assert_eq!(tool_results(&req), "one\n---\ntwo");
        assert_eq!(tool_names(&req), ["get_logs", "scale"]);
        assert!(tool_names(&json!({"messages": []})).is_empty());
    }

    #[test]
    fn the_cache_prefix_is_the_tools_and_leading_system_messages_as_sent() {
        let raw = r#"{"model":"m","messages":[{"role":"system","content":"a \"q\" [x] {y}"},{"role":"system","content":"b"},{"role":"user","content":"why?"},{"role":"system","content":"late"}],"stream":true,"tools":[{"type":"function","function":{"name":"t","parameters":{"b":1,"a":[2, 3]}}}]}"#;
        assert_eq!(
            cache_prefix(raw),
            "tools: [{\"type\":\"function\",\"function\":{\"name\":\"t\",\"parameters\":{\"b\":1,\"a\":[2, 3]}}}]\n\
             system: {\"role\":\"system\",\"content\":\"a \\\"q\\\" [x] {y}\"}\n\
             system: {\"role\":\"system\",\"content\":\"b\"}\n"
        );
        // Key order is part of the bytes: the same JSON in another order differs.
        let reordered = raw.replace(r#"{"b":1,"a":[2, 3]}"#, r#"{"a":[2, 3],"b":1}"#);
        assert_ne!(cache_prefix(raw), cache_prefix(&reordered));
        assert_eq!(
            cache_prefix(r#" { "messages" : [ {"role":"user"} ] } "#),
            "tools: (none)\n"
        );
    }

    #[test]
    fn only_a_model_error_is_one() {
        assert_eq!(
            model_err(Err(ToolError::Model("bad name".into()))),
            "bad name"
        );
        let fatal = std::panic::catch_unwind(|| model_err(Err(ToolError::Fatal("x".into()))));
        assert!(fatal.is_err());
        assert!(std::panic::catch_unwind(|| model_err(Ok("fine".into()))).is_err());
    }
}
