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
