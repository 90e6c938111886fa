//! The audit log: JSONL at `<data_dir>/audit.jsonl`, append-only.
//!
//! One line per decision. An approved change is written twice under one id: a
//! `pending` record, flushed to disk *before* anything is sent (a change kai cannot
//! record is a change it does not make), and a `completed` record with the outcome.
//! [`read_all`] folds the lines of one id into one record; a change whose completion
//! never came (kai was killed mid-apply) stays visible as pending.
//!
//! Secret values never reach it (they are redacted before a record is built), so the log
//! can be shared when asking "what did kai do?".

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const FILE: &str = "audit.jsonl";

/// One object touched (or proposed to be touched) by a change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditObject {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    /// The live object before the change (`None`: it did not exist).
    pub before: Option<Value>,
    /// The object after the change (`None`: deleted, or nothing applied).
    pub after: Option<Value>,
    pub applied: bool,
    pub error: Option<String>,
}

impl AuditObject {
    pub fn label(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {ns}/{}", self.kind, self.name),
            None => format!("{} {}", self.kind, self.name),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub id: String,
    /// RFC 3339.
    pub time: String,
    pub context: String,
    pub user: String,
    pub tool: String,
    pub title: String,
    /// "Deployment shop/web", or the first object and a count.
    pub object: String,
    pub diff: String,
    pub kubectl: String,
    pub dangerous: bool,
    /// approved | approved_for_session | auto_approved | denied | denied_with_feedback | aborted
    pub decision: String,
    pub feedback: Option<String>,
    /// True when every object was applied.
    pub applied: bool,
    pub error: Option<String>,
    pub objects: Vec<AuditObject>,
    /// `pending` (written before the change was sent), `completed` (its outcome), or
    /// absent for a decision that sent nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

pub const PENDING: &str = "pending";
pub const COMPLETED: &str = "completed";

impl AuditRecord {
    /// Written before sending, with no completion after it.
    pub fn is_pending(&self) -> bool {
        self.status.as_deref() == Some(PENDING)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("cannot write the audit log {path}: {source}; kai applies nothing it cannot record, so fix the permissions or the data directory (--data-dir / KAI_DATA_DIR)")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read the audit log {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE)
}

fn open_append(data_dir: &Path) -> Result<std::fs::File, AuditError> {
    let p = path(data_dir);
    let err = |source| AuditError::Write {
        path: p.clone(),
        source,
    };
    std::fs::create_dir_all(data_dir).map_err(err)?;
    let mut opts = std::fs::OpenOptions::new();
    opts.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // The log holds object contents: readable by its owner only.
        opts.mode(0o600);
    }
    opts.open(&p).map_err(err)
}

/// Logs proven writable in this process.
static PROVEN: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// Prove the log can be written before anything is asked or applied: opening is not
/// enough (a full disk, or a device that refuses writes, opens fine), so an empty line
/// (which [`read_all`] skips) is written and synced, once per process.
pub fn check_writable(data_dir: &Path) -> Result<(), AuditError> {
    let p = path(data_dir);
    if PROVEN.lock().map(|v| v.contains(&p)).unwrap_or(false) {
        return Ok(());
    }
    write_synced(data_dir, b"\n")?;
    if let Ok(mut v) = PROVEN.lock() {
        v.push(p);
    }
    Ok(())
}

fn write_synced(data_dir: &Path, bytes: &[u8]) -> Result<(), AuditError> {
    let mut f = open_append(data_dir)?;
    let err = |source| AuditError::Write {
        path: path(data_dir),
        source,
    };
    f.write_all(bytes).map_err(err)?;
    f.flush().map_err(err)?;
    // On disk before the change it records is sent.
    f.sync_data().map_err(err)
}

/// Append one record as one line, in one write (O_APPEND keeps concurrent lines whole),
/// synced to disk before returning.
pub fn append(data_dir: &Path, record: &AuditRecord) -> Result<(), AuditError> {
    let err = |e: serde_json::Error| AuditError::Write {
        path: path(data_dir),
        source: std::io::Error::other(e),
    };
    // The audit log is an egress too: a Secret value copied into another field (an
    // annotation, an error message) is replaced wherever it appears. Only remembered
    // values: pattern rules could alter ordinary values an undo restores.
    let mut value = serde_json::to_value(record).map_err(err)?;
    kai_text::redact::scrub_known_json(&mut value);
    let mut line = serde_json::to_vec(&value).map_err(err)?;
    line.push(b'\n');
    write_synced(data_dir, &line)
}

/// Every line's record, oldest first. Lines that do not parse (a torn write, a hand
/// edit) are skipped rather than hiding the rest of the history.
pub fn read_lines(data_dir: &Path) -> Result<Vec<AuditRecord>, AuditError> {
    let p = path(data_dir);
    let text = match std::fs::read_to_string(&p) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(AuditError::Read { path: p, source }),
    };
    Ok(text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}

/// One record per change, oldest first: a change's completion replaces its pending
/// record, in the pending record's place.
pub fn read_all(data_dir: &Path) -> Result<Vec<AuditRecord>, AuditError> {
    Ok(fold(read_lines(data_dir)?))
}

fn fold(lines: Vec<AuditRecord>) -> Vec<AuditRecord> {
    let mut out: Vec<AuditRecord> = Vec::with_capacity(lines.len());
    let mut at: std::collections::HashMap<String, usize> = Default::default();
    for r in lines {
        match at.get(&r.id) {
            Some(&i) => out[i] = r,
            None => {
                at.insert(r.id.clone(), out.len());
                out.push(r);
            }
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;

    /// A record of a one-object change, for tests here and in `undo`.
    pub(crate) fn record(id: &str, applied: bool) -> AuditRecord {
        AuditRecord {
            id: id.into(),
            time: "2024-01-01T00:00:00Z".into(),
            context: "ctx".into(),
            user: "alice".into(),
            tool: "scale".into(),
            title: "scale".into(),
            object: "Deployment shop/web".into(),
            diff: String::new(),
            kubectl: String::new(),
            dangerous: false,
            decision: "approved".into(),
            feedback: None,
            applied,
            error: None,
            objects: vec![],
            status: None,
        }
    }

    #[test]
    fn a_completion_replaces_its_pending_record() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = record("c3", false);
        p.status = Some(PENDING.into());
        append(dir.path(), &record("a1", false)).unwrap();
        append(dir.path(), &p).unwrap();
        append(dir.path(), &record("b2", true)).unwrap();
        let mut done = record("c3", true);
        done.status = Some(COMPLETED.into());
        append(dir.path(), &done).unwrap();
        let all = read_all(dir.path()).unwrap();
        assert_eq!(
            all.iter()
                .map(|r| (r.id.as_str(), r.applied))
                .collect::<Vec<_>>(),
            [("a1", false), ("c3", true), ("b2", true)]
        );
        assert_eq!(read_lines(dir.path()).unwrap().len(), 4);
        // A pending record alone stays pending.
        append(dir.path(), &{
            let mut q = record("d4", false);
            q.status = Some(PENDING.into());
            q
        })
        .unwrap();
        assert!(read_all(dir.path()).unwrap()[3].is_pending());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_log_that_opens_but_refuses_writes_is_not_writable() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/dev/full", path(dir.path())).unwrap();
        assert!(matches!(
            check_writable(dir.path()),
            Err(AuditError::Write { .. })
        ));
        assert!(append(dir.path(), &record("x", false)).is_err());
        let ok = tempfile::tempdir().unwrap();
        check_writable(ok.path()).unwrap();
        assert!(read_all(ok.path()).unwrap().is_empty());
    }

    #[test]
    fn appends_one_line_per_record_and_reads_them_back() {
        let dir = tempfile::tempdir().unwrap();
        append(dir.path(), &record("a1", true)).unwrap();
        append(dir.path(), &record("b2", false)).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(path(dir.path()))
            .unwrap()
            .write_all(b"{torn\n")
            .unwrap();
        let all = read_all(dir.path()).unwrap();
        assert_eq!(
            all.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            ["a1", "b2"]
        );
        assert_eq!(
            std::fs::read_to_string(path(dir.path()))
                .unwrap()
                .lines()
                .count(),
            3
        );
    }

    #[test]
    fn missing_log_is_empty_history() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_all(&dir.path().join("nope")).unwrap().is_empty());
    }
}
