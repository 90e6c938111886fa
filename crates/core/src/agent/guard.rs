//! The repeated-call guard: the Nth identical tool call in a row is refused, so a model
//! stuck in a loop cannot burn the step budget (and tokens) on the same request.

use serde_json::Value;

#[derive(Debug)]
pub struct RepeatGuard {
    limit: u32,
    last: Option<(String, Value)>,
    count: u32,
}

impl RepeatGuard {
    /// `limit` = the call number that is refused (3: the third identical call in a row).
    pub fn new(limit: u32) -> Self {
        Self {
            limit: limit.max(2),
            last: None,
            count: 0,
        }
    }

    /// Record a call; `false` means refuse it.
    pub fn admit(&mut self, name: &str, args: &Value) -> bool {
        let same = self
            .last
            .as_ref()
            .is_some_and(|(n, a)| n == name && a == args);
        if same {
            self.count += 1;
        } else {
            self.last = Some((name.to_string(), args.clone()));
            self.count = 1;
        }
        self.count < self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn third_identical_call_in_a_row_is_refused() {
        let mut g = RepeatGuard::new(3);
        let a = json!({"pod": "x"});
        assert!(g.admit("get_logs", &a));
        assert!(g.admit("get_logs", &a));
        assert!(!g.admit("get_logs", &a));
        assert!(!g.admit("get_logs", &a), "stays refused while repeated");
    }

    #[test]
    fn different_arguments_or_tool_reset_the_count() {
        let mut g = RepeatGuard::new(3);
        assert!(g.admit("get_logs", &json!({"pod": "x"})));
        assert!(g.admit("get_logs", &json!({"pod": "x"})));
        assert!(g.admit("get_logs", &json!({"pod": "y"})));
        assert!(g.admit("get_logs", &json!({"pod": "x"})));
        assert!(g.admit("describe", &json!({"pod": "x"})));
    }

    #[test]
    fn key_order_does_not_make_a_call_different() {
        let mut g = RepeatGuard::new(3);
        let a: Value = serde_json::from_str(r#"{"a":1,"b":2}"#).unwrap_or_default();
        let b: Value = serde_json::from_str(r#"{"b":2,"a":1}"#).unwrap_or_default();
        assert!(g.admit("t", &a));
        assert!(g.admit("t", &b));
        assert!(!g.admit("t", &a));
    }
}
