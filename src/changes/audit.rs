//! The audit log: JSONL at `<data_dir>/audit.jsonl`, one line per decision, append-only.
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

/// Check the log can be written before anything is asked or applied.
pub fn check_writable(data_dir: &Path) -> Result<(), AuditError> {
    open_append(data_dir).map(|_| ())
}

/// Append one record as one line, in one write (O_APPEND keeps concurrent lines whole).
pub fn append(data_dir: &Path, record: &AuditRecord) -> Result<(), AuditError> {
    let mut f = open_append(data_dir)?;
    let mut line = serde_json::to_vec(record).map_err(|e| AuditError::Write {
        path: path(data_dir),
        source: std::io::Error::other(e),
    })?;
    line.push(b'\n');
    f.write_all(&line).map_err(|source| AuditError::Write {
        path: path(data_dir),
        source,
    })
}

/// Every record, oldest first. Lines that do not parse (a torn write, a hand edit) are
/// skipped rather than hiding the rest of the history.
pub fn read_all(data_dir: &Path) -> Result<Vec<AuditRecord>, AuditError> {
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

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
        }
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
