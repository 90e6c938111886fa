//! Kubernetes quantities as numbers (`100m` → 0.1, `64Mi` → 67108864), for comparing a
//! request with its limit. Unparsable quantities are `None` (the schema pass or the API
//! server says why; a rule just does not compare them).

use kai_text::quantity::parse_quantity;
use serde_json::Value;

pub fn parse(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => parse_quantity(s),
        _ => None,
    }
}
