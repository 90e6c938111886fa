//! `kai lint FILE...|DIR|-`: the manifest checks of kai-manifest over files, for CI.
//! No model, and no cluster unless `--cluster` (custom resources against their CRDs). Exit 3 when an error-level rule fires, 2 for unreadable input.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;

use crate::app::Exit;
use crate::cli::{GlobalArgs, Output};
use crate::config::Settings;
use crate::exit;
use crate::ui::term::for_terminal;
use kai_manifest::crd::CrdSchemas;
use kai_manifest::{report, Options, RULES};

#[derive(Debug, Args)]
pub struct LintArgs {
    /// Manifest files, directories (searched for *.yaml, *.yml, *.json), or `-` for stdin.
    #[arg(value_name = "FILE")]
    pub paths: Vec<PathBuf>,
    /// Print the rules (id, severity, summary) and exit.
    #[arg(long)]
    pub list_rules: bool,
    /// Turn a rule off (repeatable; adds to the config file's `[lint] disable`).
    #[arg(long, value_name = "RULE")]
    pub disable: Vec<String>,
    /// Also check custom resources against the CRDs of the current context (their
    /// OpenAPI schemas). Lint stays offline by default so CI works without a cluster.
    #[arg(long)]
    pub cluster: bool,
}

/// The files under `dir` that look like manifests, sorted (stable output for CI).
fn manifests_in(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') {
            continue;
        }
        // Not followed: a symlink loop must not hang CI.
        let meta = std::fs::symlink_metadata(&p)?;
        if meta.is_dir() {
            manifests_in(&p, out)?;
        } else if meta.is_file() && [".yaml", ".yml", ".json"].iter().any(|x| name.ends_with(x)) {
            out.push(p);
        }
    }
    Ok(())
}

/// `(name, text)` of every input, read whole (each is bounded again when parsed).
pub fn read_inputs(paths: &[PathBuf]) -> Result<Vec<(String, String)>, Exit> {
    let usage = |m: String| Exit::new(exit::USAGE, m);
    let mut files = Vec::new();
    for p in paths {
        if p.as_os_str() == "-" {
            let mut text = String::new();
            std::io::stdin()
                .take(kai_text::bounded::MAX_DOCUMENT_BYTES as u64 + 1)
                .read_to_string(&mut text)
                .map_err(|e| usage(format!("cannot read stdin: {e}")))?;
            files.push(("-".to_string(), text));
            continue;
        }
        let meta =
            std::fs::metadata(p).map_err(|e| usage(format!("cannot read {}: {e}", p.display())))?;
        let mut list = Vec::new();
        if meta.is_dir() {
            manifests_in(p, &mut list)
                .map_err(|e| usage(format!("cannot read {}: {e}", p.display())))?;
            if list.is_empty() {
                return Err(usage(format!(
                    "{} has no *.yaml, *.yml or *.json files",
                    p.display()
                )));
            }
        } else {
            list.push(p.clone());
        }
        for f in list {
            let mut text = String::new();
            std::fs::File::open(&f)
                .and_then(|h| {
                    h.take(kai_text::bounded::MAX_DOCUMENT_BYTES as u64 + 1)
                        .read_to_string(&mut text)
                })
                .map_err(|e| usage(format!("cannot read {}: {e}", f.display())))?;
            files.push((f.display().to_string(), text));
        }
    }
    Ok(files)
}

/// The options from `-n`, the config file and `--disable`; unknown rule ids are named
/// on stderr (a typo must not silently keep a rule on).
pub fn options(settings: &Settings, extra_disabled: &[String]) -> Options {
    let disabled: BTreeSet<String> = settings
        .lint_disable
        .iter()
        .chain(extra_disabled)
        .map(|s| s.trim().to_string())
        .collect();
    for id in &disabled {
        if !RULES.iter().any(|r| r.id == id) {
            let ids: Vec<String> = RULES.iter().map(|r| r.id.to_string()).collect();
            let near = kai_text::suggest::suggest(id, &ids);
            let hint = near
                .first()
                .map(|n| format!(" (did you mean {n}?)"))
                .unwrap_or_default();
            eprintln!(
                "kai: warning: unknown lint rule {}{hint}; see kai lint --list-rules",
                for_terminal(id)
            );
        }
    }
    Options {
        namespace: settings.namespace.clone(),
        disabled,
        cluster: None,
        crds: None,
    }
}

/// Write the answer to stdout; a closed pipe (`kai lint ... | head`) is not an error.
pub fn out(text: &str) {
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(text.as_bytes()).and_then(|_| o.flush());
}

pub fn list_rules(output: Output) {
    if output == Output::Json {
        let rules: Vec<serde_json::Value> = RULES
            .iter()
            .map(|r| serde_json::json!({"id": r.id, "severity": r.severity, "summary": r.summary}))
            .collect();
        out(&(crate::ui::json::pretty(&serde_json::Value::Array(rules)) + "\n"));
        return;
    }
    let mut text = String::new();
    for r in RULES {
        text.push_str(&format!(
            "{:<28} {:<8} {}\n",
            r.id,
            r.severity.as_str(),
            r.summary
        ));
    }
    out(&text);
}

/// With `--cluster`: the CRD schemas of the custom kinds in `files`. Not reaching the
/// cluster is a note on each of them, not a failure: the rest of the checks still run.
async fn crd_schemas(settings: &Settings, files: &[(String, String)]) -> CrdSchemas {
    let wanted = kai_manifest::crd::custom_kinds_in_files(files);
    if wanted.is_empty() {
        return CrdSchemas::default();
    }
    match crate::oneshot::connect_cluster(settings).await {
        Ok(cluster) => cluster.crd_schemas(&wanted).await,
        Err(e) => {
            eprintln!(
                "kai: warning: custom resources not checked against their CRDs: {}",
                for_terminal(&e.to_string())
            );
            CrdSchemas {
                unchecked: wanted
                    .into_iter()
                    .map(|k| (k, format!("cannot reach the cluster ({e})")))
                    .collect(),
                ..CrdSchemas::default()
            }
        }
    }
}

pub async fn run(settings: &Settings, global: &GlobalArgs, args: &LintArgs) -> Result<i32> {
    if args.list_rules {
        list_rules(global.output);
        return Ok(exit::OK);
    }
    if args.paths.is_empty() {
        return Err(Exit::new(
            exit::USAGE,
            "nothing to lint: give manifest files, a directory, or - for stdin (kai lint --list-rules shows the rules)",
        )
        .into());
    }
    let files = read_inputs(&args.paths)?;
    let mut opts = options(settings, &args.disable);
    if args.cluster {
        opts.crds = Some(crd_schemas(settings, &files).await);
    }
    let report = kai_manifest::check_files(&files, &opts);
    out(&match global.output {
        Output::Json => crate::ui::json::pretty(&report::json(&report)) + "\n",
        Output::Sarif => {
            crate::ui::json::pretty(&report::sarif(&report, env!("CARGO_PKG_VERSION"))) + "\n"
        }
        _ => for_terminal(&report::human(&report)),
    });
    Ok(if report.has_errors() {
        exit::PROBLEMS_FOUND
    } else {
        exit::OK
    })
}
