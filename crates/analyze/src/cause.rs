//! The cause vocabulary: one enum, declared in one table.
//!
//! Every finding names its root cause with a [`Cause`]. The table below is the single
//! source of truth for each cause's stable code (what `-o json` prints and what scenarios
//! and scripts match on), its default severity, its specificity (for ranking), the
//! one-line summary `kai diagnose --list-causes` prints, and the built-in runbook that
//! covers it. A rule that names a cause that does not exist does not compile.
//!
//! Adding a cause: one row in [`causes!`] below, a `## code` section in `docs/causes.md`,
//! and the code in exactly one runbook's `causes: [...]` under `docs/runbooks/`. The tests
//! at the bottom of this file fail until all three agree.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::finding::Severity;

/// Where the vocabulary page lives (relative to the repository root); findings link
/// `docs/causes.md#<code>`.
pub const VOCABULARY_PAGE: &str = "docs/causes.md";

/// Declares [`Cause`] and its accessors from one row per cause, so that the code, the
/// severity, the specificity, the summary and the runbook of a cause cannot drift apart.
macro_rules! causes {
    ($(
        $variant:ident = $code:literal {
            severity: $severity:ident,
            specificity: $specificity:literal,
            runbook: $runbook:literal,
            summary: $summary:literal $(,)?
        }
    ),+ $(,)?) => {
        /// A stable root-cause code. Serialized as its code string (`"oom-killed"`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum Cause {
            $(
                #[doc = $summary]
                #[serde(rename = $code)]
                $variant,
            )+
        }

        impl Cause {
            /// Every cause, in the order `--list-causes` and `docs/causes.md` present them.
            pub const ALL: &'static [Cause] = &[$(Cause::$variant),+];

            /// The stable code, e.g. `"crash-loop-app-error"`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Cause::$variant => $code,)+
                }
            }

            /// Severity of a finding with this cause before a rule adjusts it (a rule lowers
            /// it when only some replicas are affected, for example).
            pub const fn severity(self) -> Severity {
                match self {
                    $(Cause::$variant => Severity::$severity,)+
                }
            }

            /// How much a cause explains; breaks ties between findings of equal severity
            /// (a missing key explains more than "rollout stuck"). Higher is more specific.
            pub const fn specificity(self) -> u8 {
                match self {
                    $(Cause::$variant => $specificity,)+
                }
            }

            /// One line: what the cause means (printed by `kai diagnose --list-causes`).
            pub const fn summary(self) -> &'static str {
                match self {
                    $(Cause::$variant => $summary,)+
                }
            }

            /// The built-in runbook's slug: its file name under `docs/runbooks/`.
            pub const fn runbook_slug(self) -> &'static str {
                match self {
                    $(Cause::$variant => $runbook,)+
                }
            }

            /// The built-in runbook's path from the repository root,
            /// `docs/runbooks/<slug>.md`.
            pub const fn runbook(self) -> &'static str {
                match self {
                    $(Cause::$variant => concat!("docs/runbooks/", $runbook, ".md"),)+
                }
            }

            /// The cause's entry on the vocabulary page, `docs/causes.md#<code>`.
            pub const fn vocabulary_link(self) -> &'static str {
                match self {
                    $(Cause::$variant => concat!("docs/causes.md#", $code),)+
                }
            }
        }
    };
}

causes! {
    CrashLoopAppError = "crash-loop-app-error" {
        severity: Critical, specificity: 70, runbook: "crash-loop-app-error",
        summary: "A container keeps exiting with an error and is restarted in a back-off loop; its previous log says why.",
    },
    OomKilled = "oom-killed" {
        severity: Critical, specificity: 85, runbook: "oom-killed",
        summary: "A container was killed for exceeding its memory limit (OOMKilled, exit code 137).",
    },
    ImagePullNotFound = "image-pull-not-found" {
        severity: Critical, specificity: 90, runbook: "image-pull-not-found",
        summary: "The image (or its tag) does not exist in the registry, so the kubelet cannot pull it.",
    },
    ImagePullUnauthorized = "image-pull-unauthorized" {
        severity: Critical, specificity: 90, runbook: "image-pull-unauthorized",
        summary: "The registry refused to serve the image without (valid) credentials: imagePullSecrets missing or wrong.",
    },
    MissingSecret = "missing-secret" {
        severity: Critical, specificity: 92, runbook: "missing-secret",
        summary: "A pod references a Secret that does not exist in its namespace.",
    },
    MissingSecretKey = "missing-secret-key" {
        severity: Critical, specificity: 95, runbook: "missing-secret",
        summary: "A pod references a key that the Secret does not contain.",
    },
    MissingConfigMap = "missing-configmap" {
        severity: Critical, specificity: 92, runbook: "missing-configmap",
        summary: "A pod references a ConfigMap that does not exist in its namespace.",
    },
    MissingConfigMapKey = "missing-configmap-key" {
        severity: Critical, specificity: 95, runbook: "missing-configmap",
        summary: "A pod references a key that the ConfigMap does not contain.",
    },
    UnschedulableInsufficientResources = "unschedulable-insufficient-resources" {
        severity: Critical, specificity: 82, runbook: "unschedulable-insufficient-resources",
        summary: "No node has enough free CPU or memory for the pod's requests.",
    },
    UnschedulableNodeSelector = "unschedulable-node-selector" {
        severity: Critical, specificity: 84, runbook: "unschedulable-node-selector",
        summary: "No node carries the labels the pod's nodeSelector or node affinity asks for.",
    },
    UnschedulableTaint = "unschedulable-taint" {
        severity: Critical, specificity: 86, runbook: "unschedulable-taint",
        summary: "The only nodes the pod may run on carry a taint that the pod does not tolerate.",
    },
    UnboundPvc = "unbound-pvc" {
        severity: High, specificity: 60, runbook: "pvc-unbound",
        summary: "A PersistentVolumeClaim is still Pending: no volume has been bound or provisioned for it.",
    },
    PvcNoStorageClass = "pvc-no-storage-class" {
        severity: Critical, specificity: 88, runbook: "pvc-no-storage-class",
        summary: "A PersistentVolumeClaim names a StorageClass that does not exist (or none is set and there is no default).",
    },
    ReadinessProbeFailing = "readiness-probe-failing" {
        severity: High, specificity: 80, runbook: "readiness-probe-failing",
        summary: "A container runs but its readiness probe fails, so it never receives traffic.",
    },
    LivenessProbeFailing = "liveness-probe-failing" {
        severity: Critical, specificity: 87, runbook: "liveness-probe-failing",
        summary: "A container's liveness probe fails, so the kubelet keeps killing and restarting it.",
    },
    ServiceNoMatchingPods = "service-no-matching-pods" {
        severity: High, specificity: 85, runbook: "service-no-matching-pods",
        summary: "A Service's selector matches no pods, so it has no endpoints.",
    },
    ServiceTargetPortMismatch = "service-target-port-mismatch" {
        severity: High, specificity: 86, runbook: "service-target-port-mismatch",
        summary: "A Service's targetPort is not a port that the selected pods' containers expose.",
    },
    ServiceNoReadyEndpoints = "service-no-ready-endpoints" {
        severity: High, specificity: 40, runbook: "service-no-ready-endpoints",
        summary: "A Service selects pods, but none of them is ready.",
    },
    IngressMissingBackend = "ingress-missing-backend" {
        severity: High, specificity: 85, runbook: "ingress-missing-backend",
        summary: "An Ingress routes to a Service (or Service port) that does not exist.",
    },
    RolloutStuck = "rollout-stuck" {
        severity: High, specificity: 50, runbook: "rollout-stuck",
        summary: "A Deployment rollout stopped progressing (ProgressDeadlineExceeded): new pods never became available.",
    },
    JobBackoffLimit = "job-backoff-limit" {
        severity: Critical, specificity: 72, runbook: "job-backoff-limit",
        summary: "A Job failed: its pods failed more often than backoffLimit allows.",
    },
    InitContainerFailing = "init-container-failing" {
        severity: Critical, specificity: 78, runbook: "init-container-failing",
        summary: "An init container keeps failing, so the pod's main containers never start.",
    },
    NodeNotReady = "node-not-ready" {
        severity: Critical, specificity: 80, runbook: "node-not-ready",
        summary: "A node is NotReady (its kubelet stopped reporting or is unhealthy); pods on it are not served.",
    },
    Forbidden = "forbidden" {
        severity: High, specificity: 30, runbook: "kai-access-forbidden",
        summary: "kai's credentials may not read some objects (RBAC), so the diagnosis is incomplete.",
    },
    Unknown = "unknown" {
        severity: Medium, specificity: 0, runbook: "unknown-unhealthy-pod",
        summary: "An object is unhealthy but no rule explains why; the raw symptoms are given as evidence.",
    },
}

/// Causes order by their code string, as the codes did before they were an enum: the
/// last tie-breaker of [`rank`](crate::finding::rank) and the grouping of pod issues keep
/// exactly the order they had.
impl Ord for Cause {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl PartialOrd for Cause {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not a cause code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown cause code {0:?}; `kai diagnose --list-causes` prints the vocabulary")]
pub struct UnknownCause(pub String);

impl FromStr for Cause {
    type Err = UnknownCause;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Cause::ALL
            .iter()
            .copied()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownCause(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::collections::{BTreeMap, BTreeSet};
    use std::path::{Path, PathBuf};

    use super::*;

    fn repo_root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    fn read(rel: &str) -> String {
        let path = repo_root().join(rel);
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
    }

    /// The `## code` headings of docs/causes.md, in order.
    fn documented_codes() -> Vec<String> {
        read(VOCABULARY_PAGE)
            .lines()
            .filter_map(|l| l.strip_prefix("## "))
            .map(|h| h.trim().to_string())
            .collect()
    }

    /// The `causes: [...]` list of a runbook's front matter (the simple flow-list subset
    /// scripts/check-runbooks.py enforces).
    fn runbook_causes(text: &str) -> Vec<String> {
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("---"), "runbook without front matter");
        let front: Vec<&str> = lines.take_while(|l| *l != "---").collect();
        let Some(list) = front.iter().find_map(|l| l.strip_prefix("causes:")) else {
            return Vec::new();
        };
        let list = list.trim();
        let inner = list
            .strip_prefix('[')
            .and_then(|l| l.strip_suffix(']'))
            .unwrap_or_else(|| panic!("causes is not a flow list: {list:?}"));
        inner
            .split(',')
            .map(|c| c.trim().trim_matches(|q| q == '"' || q == '\'').to_string())
            .filter(|c| !c.is_empty())
            .collect()
    }

    /// Every runbook under docs/runbooks (README aside): slug -> its `causes`.
    fn runbooks() -> BTreeMap<String, Vec<String>> {
        let dir = repo_root().join("docs/runbooks");
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
        let mut out = BTreeMap::new();
        for entry in entries {
            let path = entry.expect("directory entry").path();
            let Some(slug) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".md"))
            else {
                continue;
            };
            if slug == "README" {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("runbook is UTF-8");
            out.insert(slug.to_string(), runbook_causes(&text));
        }
        out
    }

    #[test]
    fn codes_are_unique_and_shaped_like_codes() {
        let mut seen = BTreeSet::new();
        for c in Cause::ALL {
            let code = c.as_str();
            assert!(seen.insert(code), "{code} is declared twice");
            let shaped = !code.is_empty()
                && code.split('-').all(|part| {
                    !part.is_empty()
                        && part
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                });
            assert!(shaped, "{code:?} is not lowercase-dash");
            assert!(!c.summary().is_empty() && !c.summary().contains('\n'));
        }
        assert!(seen.contains("unknown") && seen.contains("forbidden"));
    }

    #[test]
    fn docs_causes_md_covers_exactly_the_vocabulary() {
        let documented = documented_codes();
        let unique: BTreeSet<&str> = documented.iter().map(String::as_str).collect();
        assert_eq!(
            unique.len(),
            documented.len(),
            "a heading repeats: {documented:?}"
        );
        let declared: BTreeSet<&str> = Cause::ALL.iter().map(|c| c.as_str()).collect();
        let undocumented: Vec<_> = declared.difference(&unique).collect();
        let undeclared: Vec<_> = unique.difference(&declared).collect();
        assert!(
            undocumented.is_empty(),
            "causes without a `## code` section in docs/causes.md: {undocumented:?}"
        );
        assert!(
            undeclared.is_empty(),
            "docs/causes.md documents codes that are not a Cause: {undeclared:?}"
        );
    }

    #[test]
    fn every_cause_has_its_runbook_and_only_that_one() {
        let books = runbooks();
        for c in Cause::ALL {
            let code = c.as_str();
            assert_eq!(
                c.runbook(),
                format!("docs/runbooks/{}.md", c.runbook_slug())
            );
            assert!(
                repo_root().join(c.runbook()).is_file(),
                "{code}: {} does not exist",
                c.runbook()
            );
            let listing: Vec<&String> = books
                .iter()
                .filter(|(_, causes)| causes.iter().any(|x| x == code))
                .map(|(slug, _)| slug)
                .collect();
            assert_eq!(
                listing,
                [c.runbook_slug()],
                "{code} must be listed in the `causes` of its runbook {} and no other",
                c.runbook()
            );
        }
    }

    #[test]
    fn codes_round_trip_through_serde_and_from_str() {
        for c in Cause::ALL.iter().copied() {
            let v = serde_json::to_value(c).expect("serialize");
            assert_eq!(v, serde_json::Value::String(c.as_str().to_string()));
            let back: Cause = serde_json::from_value(v).expect("deserialize");
            assert_eq!(back, c);
            assert_eq!(c.as_str().parse::<Cause>(), Ok(c));
            assert_eq!(c.to_string(), c.as_str());
            assert_eq!(c.vocabulary_link(), format!("docs/causes.md#{c}"));
        }
        assert!(serde_json::from_str::<Cause>("\"crashloop\"").is_err());
        assert!(serde_json::from_str::<Cause>("\"OomKilled\"").is_err());
        assert_eq!(
            "crashloop".parse::<Cause>(),
            Err(UnknownCause("crashloop".into()))
        );
    }

    #[test]
    fn causes_order_by_code() {
        let mut by_enum: Vec<Cause> = Cause::ALL.to_vec();
        by_enum.sort();
        let mut by_code: Vec<&str> = Cause::ALL.iter().map(|c| c.as_str()).collect();
        by_code.sort_unstable();
        assert_eq!(
            by_enum.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
            by_code
        );
    }
}
