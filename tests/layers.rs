//! The crate layers, checked from the manifests (`cargo metadata`), so that a new edge
//! between kai's crates, or a kube client or a terminal crate where it does not belong,
//! fails the suite instead of eroding the structure by habit.
//!
//! The rules (docs/architecture.md explains why each holds):
//! - kai's crates depend on each other only along the edges in [`ALLOWED`];
//! - only kai-cluster (and the test cluster) hold a kube client; kai-analyze has no kube
//!   at all and no async runtime; kai-core and kai-llm know no cluster;
//! - no library crate reaches a terminal crate (rustyline, crossterm): printing and
//!   prompting belong to the binary's front ends;
//! - the test cluster and the scripted model are reached only by the binary crate (and
//!   the tests' shared helpers, kai-test-support, which only tests use).
//!
//! Since dependencies a crate does not declare cannot be named in its code, these checks
//! are what makes "the analyzers cannot use the kube client" a compile error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

/// Every allowed edge between kai's workspace crates (normal dependencies). The binary
/// crate `kai` may use all of them.
const ALLOWED: &[(&str, &[&str])] = &[
    ("kai-text", &[]),
    ("kai-llm", &["kai-text"]),
    ("kai-core", &["kai-llm", "kai-text"]),
    ("kai-analyze", &["kai-text"]),
    ("kai-cluster", &["kai-analyze", "kai-manifest", "kai-text"]),
    (
        "kai-changes",
        &["kai-cluster", "kai-core", "kai-text", "kai-analyze"],
    ),
    (
        "kai-tools",
        &[
            "kai-analyze",
            "kai-changes",
            "kai-cluster",
            "kai-core",
            "kai-text",
            "kai-docs",
            "kai-llm",
            "kai-manifest",
        ],
    ),
    ("kai-docs", &["kai-text"]),
    ("kai-manifest", &["kai-text"]),
    ("kai-testcluster", &[]),
    ("mock-llm", &[]),
    // What the integration tests share: a dev-dependency of the binary crate only.
    (
        "kai-test-support",
        &["kai-core", "kai-testcluster", "mock-llm"],
    ),
];

/// Third-party crates each library crate must not reach, directly or through another
/// kai crate.
const FORBIDDEN: &[(&str, &[&str])] = &[
    (
        "kai-text",
        &["kube", "tokio", "reqwest", "rustyline", "crossterm"],
    ),
    (
        "kai-analyze",
        &["kube", "tokio", "reqwest", "rustyline", "crossterm"],
    ),
    ("kai-llm", &["kube", "rustyline", "crossterm"]),
    ("kai-core", &["kube", "rustyline", "crossterm"]),
    ("kai-docs", &["kube", "rustyline", "crossterm"]),
    (
        "kai-manifest",
        &["kube", "tokio", "reqwest", "rustyline", "crossterm"],
    ),
    ("kai-cluster", &["rustyline", "crossterm", "reqwest"]),
    ("kai-changes", &["rustyline", "crossterm"]),
    ("kai-tools", &["rustyline", "crossterm"]),
];

struct Package {
    /// Normal (not dev, not build) dependencies: name → enabled features.
    deps: BTreeMap<String, BTreeSet<String>>,
}

fn workspace() -> BTreeMap<String, Package> {
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).expect("metadata is JSON");
    let mut packages = BTreeMap::new();
    for p in meta["packages"].as_array().expect("packages") {
        let name = p["name"].as_str().expect("name").to_string();
        let mut deps = BTreeMap::new();
        for d in p["dependencies"].as_array().expect("dependencies") {
            if !d["kind"].is_null() {
                continue; // dev- and build-dependencies do not reach the shipped code
            }
            let features = d["features"]
                .as_array()
                .map(|f| {
                    f.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            let dep = d["rename"]
                .as_str()
                .or(d["name"].as_str())
                .expect("dependency name");
            // A renamed dependency is checked under its real package name.
            let dep = d["name"].as_str().unwrap_or(dep);
            deps.insert(dep.to_string(), features);
        }
        packages.insert(name, Package { deps });
    }
    packages
}

fn is_kai(name: &str) -> bool {
    name.starts_with("kai-") || name == "mock-llm"
}

/// `name` and every workspace crate it reaches through normal dependencies.
fn closure<'a>(ws: &'a BTreeMap<String, Package>, name: &'a str) -> BTreeSet<&'a str> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![name];
    while let Some(n) = todo.pop() {
        if !seen.insert(n) {
            continue;
        }
        if let Some(p) = ws.get(n) {
            for d in p.deps.keys() {
                if ws.contains_key(d.as_str()) {
                    todo.push(d.as_str());
                }
            }
        }
    }
    seen
}

#[test]
fn kai_crates_depend_only_along_the_allowed_edges() {
    let ws = workspace();
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    for (name, pkg) in &ws {
        if name == "kai" {
            continue;
        }
        let edges = allowed
            .get(name.as_str())
            .unwrap_or_else(|| panic!("crate {name} is new: add its allowed edges to ALLOWED in tests/layers.rs and to docs/architecture.md"));
        for dep in pkg.deps.keys().filter(|d| is_kai(d)) {
            assert!(
                edges.contains(&dep.as_str()),
                "{name} depends on {dep}, which the layers do not allow (tests/layers.rs, docs/architecture.md)"
            );
        }
    }
}

#[test]
fn forbidden_dependencies_are_not_reachable() {
    let ws = workspace();
    for (name, banned) in FORBIDDEN {
        assert!(ws.contains_key(*name), "{name} is not in the workspace");
        for member in closure(&ws, name) {
            for dep in ws[member].deps.keys() {
                assert!(
                    !banned.contains(&dep.as_str()),
                    "{name} reaches {dep} (through {member}); that crate is forbidden in this layer"
                );
            }
        }
    }
}

#[test]
fn only_the_cluster_crates_hold_a_kube_client() {
    let ws = workspace();
    for (name, pkg) in &ws {
        let Some(features) = pkg.deps.get("kube") else {
            continue;
        };
        let client = features.iter().any(|f| f == "client" || f == "runtime");
        if client {
            assert!(
                ["kai-cluster", "kai-testcluster", "kai-test-support", "kai"]
                    .contains(&name.as_str()),
                "{name} turns on kube's client; only kai-cluster may hold one"
            );
        }
    }
}

#[test]
fn test_support_is_reached_only_by_the_binary_crate() {
    let ws = workspace();
    for (name, pkg) in &ws {
        for support in ["kai-testcluster", "mock-llm"] {
            if pkg.deps.contains_key(support) {
                assert!(
                    ["kai", "kai-test-support"].contains(&name.as_str()),
                    "{name} depends on {support}; test support must stay out of the product's crates"
                );
            }
        }
        // The tests' shared helpers are a dev-dependency, never a normal one: not even
        // the binary ships them.
        assert!(
            !pkg.deps.contains_key("kai-test-support"),
            "{name} depends on kai-test-support; only tests may (as a dev-dependency)"
        );
    }
}

#[test]
fn the_closure_helper_follows_edges() {
    // The checks above are only as good as the closure walk: kai-tools must reach
    // kai-text through kai-cluster, and kai-text must reach nothing.
    let ws = workspace();
    let tools = closure(&ws, "kai-tools");
    assert!(tools.contains("kai-text") && tools.contains("kai-analyze"));
    assert_eq!(closure(&ws, "kai-text").len(), 1);
}
