//! The corpus checker (`scripts/check-runbooks.py`) as part of the test suite: the
//! built-in runbooks and the labelled queries must pass it, and a broken runbook must
//! make it fail, naming the file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn check(repo: &Path) -> Output {
    let script = root().join("scripts/check-runbooks.py");
    Command::new("python3")
        .arg(&script)
        .arg("--root")
        .arg(repo)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run python3 {} ({e}); scripts/install-deps.sh installs it",
                script.display()
            )
        })
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn the_builtin_corpus_passes_the_checker() {
    let o = check(&root());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).starts_with("check-runbooks: ok:"),
        "{}",
        text(&o)
    );
}

#[test]
fn a_broken_runbook_fails_the_checker_by_name() {
    // A copy of the parts of the repository the checker reads, with one runbook broken.
    let tmp = tempfile::tempdir().unwrap();
    let runbooks = tmp.path().join("docs/runbooks");
    std::fs::create_dir_all(&runbooks).unwrap();
    std::fs::copy(
        root().join("docs/causes.md"),
        tmp.path().join("docs/causes.md"),
    )
    .unwrap();
    for e in std::fs::read_dir(root().join("docs/runbooks")).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, runbooks.join(p.file_name().unwrap())).unwrap();
    }
    assert_eq!(check(tmp.path()).status.code(), Some(0), "the copy passes");
    let oom = runbooks.join("oom-killed.md");
    let text_before = std::fs::read_to_string(&oom).unwrap();
    std::fs::write(&oom, text_before.replace("## Prevention", "## Aftercare")).unwrap();
    let o = check(tmp.path());
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("docs/runbooks/oom-killed.md"), "{err}");
    assert!(err.contains("Aftercare"), "{err}");
}
