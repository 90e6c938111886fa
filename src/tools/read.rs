//! Read-only cluster tools.

use std::sync::Arc;

use super::ToolHandler;

pub fn handlers() -> Vec<Arc<dyn ToolHandler>> {
    Vec::new()
}
