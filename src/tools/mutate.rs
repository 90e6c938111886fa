//! Mutating cluster tools: every one goes through [`crate::changes`].

use std::sync::Arc;

use super::ToolHandler;

pub fn handlers() -> Vec<Arc<dyn ToolHandler>> {
    Vec::new()
}
