//! Tab completion: slash commands, kinds, and object names in the current namespace.
//!
//! Names are listed once per namespace (metadata only, a bounded number per kind) and
//! kept for [`FRESH_FOR`]; the first Tab after that lists again. What to offer for a
//! line is one pure function ([`candidates`]), unit-tested without a cluster.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustyline::completion::{Completer, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{Context, Helper};

use super::command::COMMANDS;
use crate::cluster::Cluster;

/// How long a namespace's names are offered before they are listed again.
pub const FRESH_FOR: Duration = Duration::from_secs(30);
/// Listing the names may take this long before completion goes on without them.
const FETCH_TIMEOUT: Duration = Duration::from_secs(3);
/// Objects listed per kind, at most.
const PER_KIND: u32 = 500;

/// The kinds offered, as a question or `/diagnose` names them (`kind/name`).
pub const KINDS: &[&str] = &[
    "pod",
    "deployment",
    "service",
    "statefulset",
    "daemonset",
    "replicaset",
    "job",
    "cronjob",
    "configmap",
    "ingress",
    "persistentvolumeclaim",
];

/// What completion can offer besides the commands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Names {
    /// (kind as in [`KINDS`], name) in the current namespace.
    pub objects: Vec<(String, String)>,
    pub namespaces: Vec<String>,
    pub contexts: Vec<String>,
}

/// What to offer for `line` with the cursor at `pos`: where the replaced word starts,
/// and the candidates (sorted, no duplicates).
pub fn candidates(line: &str, pos: usize, names: &Names) -> (usize, Vec<String>) {
    let pos = pos.min(line.len());
    let before = &line[..pos];
    let start = before.rfind(char::is_whitespace).map_or(0, |i| {
        i + before[i..].chars().next().map_or(1, char::len_utf8)
    });
    let word = &before[start..];
    let first_word_done = before.trim_start().contains(char::is_whitespace);
    let mut out: Vec<String> = Vec::new();
    if before.trim_start().starts_with('/') && !before.trim_start().starts_with("//") {
        if !first_word_done {
            let w = word.trim_start_matches('/').to_ascii_lowercase();
            out = COMMANDS
                .iter()
                .filter(|(n, _, _)| n.starts_with(&w))
                .map(|(n, args, _)| {
                    if args.is_empty() {
                        format!("/{n}")
                    } else {
                        format!("/{n} ")
                    }
                })
                .collect();
            return (start, out);
        }
        let cmd = before
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        match cmd.as_str() {
            "/namespace" | "/ns" | "/n" => {
                out = prefixed(&names.namespaces, word);
                return (start, out);
            }
            "/context" | "/ctx" => {
                out = prefixed(&names.contexts, word);
                return (start, out);
            }
            "/diagnose" | "/diag" => {}
            // Other commands take no names.
            _ => return (start, out),
        }
    }
    if let Some((kind, prefix)) = word.split_once('/') {
        let kind = kind.to_ascii_lowercase();
        out = names
            .objects
            .iter()
            .filter(|(k, n)| *k == kind && n.starts_with(prefix))
            .map(|(k, n)| format!("{k}/{n}"))
            .collect();
    } else if !word.is_empty() {
        out = names
            .objects
            .iter()
            .filter(|(_, n)| n.starts_with(word))
            .map(|(_, n)| n.clone())
            .collect();
        let lower = word.to_ascii_lowercase();
        out.extend(
            KINDS
                .iter()
                .filter(|k| k.starts_with(&lower))
                .map(|k| format!("{k}/")),
        );
    }
    out.sort();
    out.dedup();
    (start, out)
}

fn prefixed(all: &[String], word: &str) -> Vec<String> {
    let mut v: Vec<String> = all
        .iter()
        .filter(|n| n.starts_with(word))
        .cloned()
        .collect();
    v.sort();
    v.dedup();
    v
}

/// The session's names, listed on demand: the cluster and namespace change with
/// `/context` and `/namespace`.
pub struct NameCache {
    state: Mutex<CacheState>,
}

struct CacheState {
    cluster: Arc<Cluster>,
    namespace: String,
    contexts: Vec<String>,
    /// (namespace, when listed, names)
    listed: Option<(String, Instant, Names)>,
}

impl NameCache {
    pub fn new(cluster: Arc<Cluster>, namespace: String, contexts: Vec<String>) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(CacheState {
                cluster,
                namespace,
                contexts,
                listed: None,
            }),
        })
    }

    /// The session moved: list again on the next Tab (and start now, in the background).
    pub fn switch(self: &Arc<Self>, cluster: Arc<Cluster>, namespace: String) {
        if let Ok(mut s) = self.state.lock() {
            s.cluster = cluster;
            s.namespace = namespace;
            s.listed = None;
        }
        self.prefetch();
    }

    /// List the names in the background, so the first Tab does not wait.
    pub fn prefetch(self: &Arc<Self>) {
        let me = self.clone();
        tokio::spawn(async move {
            me.refresh().await;
        });
    }

    async fn refresh(&self) -> Option<Names> {
        let (cluster, ns, contexts) = {
            let s = self.state.lock().ok()?;
            if let Some((lns, at, names)) = &s.listed {
                if *lns == s.namespace && at.elapsed() < FRESH_FOR {
                    return Some(names.clone());
                }
            }
            (s.cluster.clone(), s.namespace.clone(), s.contexts.clone())
        };
        let mut names = tokio::time::timeout(FETCH_TIMEOUT, list_names(&cluster, &ns))
            .await
            .unwrap_or_default();
        names.contexts = contexts;
        if let Ok(mut s) = self.state.lock() {
            // Only if the session is still where it was when the listing started.
            if s.namespace == ns && Arc::ptr_eq(&s.cluster, &cluster) {
                s.listed = Some((ns, Instant::now(), names.clone()));
            }
        }
        Some(names)
    }

    /// The names for completion; lists them first when they are stale. Called from the
    /// line editor, on a thread that must not enter the runtime itself (it may be the
    /// runtime's own `block_on` thread): the listing runs on the runtime's workers and
    /// this waits for it, never longer than the listing's own timeout.
    fn names_blocking(self: &Arc<Self>) -> Names {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return Names::default();
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let me = self.clone();
        handle.spawn(async move {
            let _ = tx.send(me.refresh().await.unwrap_or_default());
        });
        rx.recv_timeout(FETCH_TIMEOUT + Duration::from_secs(1))
            .unwrap_or_default()
    }
}

/// The objects (metadata only) of each of [`KINDS`] in `ns`, and the namespaces. A kind
/// the user may not list is simply not offered.
async fn list_names(cluster: &Cluster, ns: &str) -> Names {
    let mut names = Names::default();
    for kind in KINDS {
        if let Ok(list) = cluster.object_names(kind, Some(ns), PER_KIND).await {
            names
                .objects
                .extend(list.into_iter().map(|n| (kind.to_string(), n)));
        }
    }
    names.namespaces = cluster
        .object_names("namespaces", None, PER_KIND)
        .await
        .unwrap_or_default();
    // Names come from the cluster: only what a name may be is offered (a name with
    // control characters would be typed into the line as it is).
    names.objects.retain(|(_, n)| {
        n.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
    });
    names
        .namespaces
        .retain(|n| n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    names
}

/// The line editor's helper: completion only (no hints, no highlighting, no
/// validation; a trailing backslash is handled by the session loop).
pub struct KaiHelper {
    pub names: Arc<NameCache>,
}

impl Completer for KaiHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        // Commands need no listing; everything else may.
        let names = if line.trim_start().starts_with('/')
            && !line[..pos.min(line.len())]
                .trim_start()
                .contains(char::is_whitespace)
        {
            Names::default()
        } else {
            self.names.names_blocking()
        };
        let (start, list) = candidates(line, pos, &names);
        Ok((
            start,
            list.into_iter()
                .map(|c| Pair {
                    display: c.clone(),
                    replacement: c,
                })
                .collect(),
        ))
    }
}

impl Hinter for KaiHelper {
    type Hint = String;
}
impl Highlighter for KaiHelper {}
impl Validator for KaiHelper {}
impl Helper for KaiHelper {}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Names {
        Names {
            objects: vec![
                ("pod".into(), "web-7d9c-abcde".into()),
                ("pod".into(), "web-7d9c-fghij".into()),
                ("pod".into(), "worker-1".into()),
                ("deployment".into(), "web".into()),
                ("service".into(), "web".into()),
            ],
            namespaces: vec!["default".into(), "shop".into(), "staging".into()],
            contexts: vec!["kind-dev".into(), "prod".into()],
        }
    }

    #[test]
    fn commands_complete_from_the_table() {
        assert_eq!(
            candidates("/na", 3, &names()),
            (0, vec!["/namespace ".to_string()])
        );
        let (_, all) = candidates("/", 1, &names());
        assert_eq!(all.len(), COMMANDS.len());
        assert_eq!(candidates("/he", 3, &names()).1, vec!["/help".to_string()]);
    }

    #[test]
    fn names_kinds_and_command_arguments() {
        // An object name in a question.
        assert_eq!(
            candidates("why is web-7d9c-a", 17, &names()),
            (7, vec!["web-7d9c-abcde".to_string()])
        );
        // Several: the editor shows them and completes the common part.
        assert_eq!(
            candidates("why is wor", 10, &names()).1,
            vec!["worker-1".to_string()]
        );
        assert_eq!(
            candidates("describe we", 11, &names()).1,
            vec!["web", "web-7d9c-abcde", "web-7d9c-fghij"]
        );
        // Kinds, then kind/name.
        assert_eq!(candidates("dep", 3, &names()).1, vec!["deployment/"]);
        assert_eq!(
            candidates("/diagnose pod/web", 17, &names()),
            (
                10,
                vec![
                    "pod/web-7d9c-abcde".to_string(),
                    "pod/web-7d9c-fghij".to_string()
                ]
            )
        );
        assert_eq!(candidates("/ns st", 6, &names()).1, vec!["staging"]);
        assert_eq!(candidates("/context p", 10, &names()).1, vec!["prod"]);
        // Commands without names offer nothing; an empty word offers nothing.
        assert!(candidates("/usage x", 8, &names()).1.is_empty());
        assert!(candidates("why is ", 7, &names()).1.is_empty());
        // Only the word before the cursor counts.
        assert_eq!(
            candidates("why is wor now", 10, &names()).1,
            vec!["worker-1"]
        );
    }
}
