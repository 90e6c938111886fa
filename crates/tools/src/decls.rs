//! Tool declarations as data: `tools/<name>.json` at the top of the repository, compiled
//! in so the binary is whole.

use kai_core::tools::ToolDecl;

macro_rules! decls {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tools/", $name, ".json")))),*]
    };
}

/// (name, JSON text) of every declared tool.
pub const ALL: &[(&str, &str)] = decls!(
    "list_resources",
    "get_resource",
    "describe",
    "get_logs",
    "list_events",
    "analyze",
    "search_docs",
    "apply_manifest",
    "patch_resource",
    "scale",
    "rollout_restart",
    "rollout_undo",
    "set_image",
    "delete_resource",
);

/// The declaration of `name`. A declaration that does not parse is a build defect,
/// caught by the test below, so here it simply counts as missing.
pub fn find(name: &str) -> Option<ToolDecl> {
    ALL.iter()
        .find(|(n, _)| *n == name)
        .and_then(|(_, text)| serde_json::from_str(text).ok())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn every_declaration_parses_and_is_named_after_its_file() {
        for (name, text) in ALL {
            let d: ToolDecl = serde_json::from_str(text)
                .unwrap_or_else(|e| panic!("tools/{name}.json does not parse: {e}"));
            assert_eq!(&d.name, name);
            assert_eq!(d.parameters["type"], "object", "{name}");
            assert!(!d.description.is_empty(), "{name}");
        }
    }
}
