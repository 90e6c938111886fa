//! Saved sessions: one JSON file per session in `DATA_DIR/sessions/`, rewritten after
//! every turn (a temporary file, then a rename, so a crash leaves the last whole
//! version), so `kai --resume` continues where the connection dropped.
//!
//! A file holds the conversation as the model saw it (the agent's
//! [`Snapshot`](crate::agent::Snapshot): every message through the egress, credentials
//! and Secret values scrubbed), never raw cluster data, and no approval: "yes for this
//! session" is asked again in a resumed session. Files are private to the user (0600).

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::llm::{ChatMessage, Role, Usage};

/// The file format's version; a file of another version is skipped when listing and
/// refused when resuming.
pub const VERSION: u32 = 1;
/// A listed first question is cut to this many characters.
const QUESTION_CHARS: usize = 60;

#[derive(Debug, thiserror::Error)]
pub enum SavedError {
    #[error("cannot {what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("session file {path} is not a kai session: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("no saved session {0:?} (kai sessions lists them)")]
    NotFound(String),
    #[error("no saved sessions yet in {0}")]
    NoneSaved(PathBuf),
    #[error("{0:?} is not a session id (kai sessions lists them)")]
    BadId(String),
}

/// One saved session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedSession {
    pub version: u32,
    pub id: String,
    pub started: jiff::Timestamp,
    pub updated: jiff::Timestamp,
    /// The kubeconfig context and namespace the session was in when last saved.
    pub context: String,
    pub namespace: String,
    pub model: String,
    /// The first question, as the model saw it.
    pub first_question: String,
    pub usage: Usage,
    /// The conversation as the model saw it (see the module comment).
    pub history: Vec<ChatMessage>,
}

impl SavedSession {
    /// A new session, not yet saved.
    pub fn new(context: &str, namespace: &str, model: &str) -> Self {
        let now = jiff::Timestamp::now();
        Self {
            version: VERSION,
            id: new_id(now),
            started: now,
            updated: now,
            context: context.to_string(),
            namespace: namespace.to_string(),
            model: model.to_string(),
            first_question: String::new(),
            usage: Usage::default(),
            history: Vec::new(),
        }
    }

    /// Take the conversation (already through the egress) and note the first question.
    pub fn update(&mut self, history: Vec<ChatMessage>, usage: Usage) {
        if self.first_question.is_empty() {
            if let Some(q) = history
                .iter()
                .find(|m| m.role == Role::User)
                .and_then(|m| m.content.as_deref())
            {
                self.first_question = q.to_string();
            }
        }
        self.history = history;
        self.usage = usage;
        self.updated = jiff::Timestamp::now();
    }
}

/// `20261130-085501-3fa2`: sorts by start time; the suffix keeps two sessions started in
/// the same second apart.
fn new_id(now: jiff::Timestamp) -> String {
    format!(
        "{}-{:04x}",
        now.strftime("%Y%m%d-%H%M%S"),
        fastrand::u16(..)
    )
}

/// Ids are file names: only what [`new_id`] makes (and nothing like `../x`).
fn check_id(id: &str) -> Result<(), SavedError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(SavedError::BadId(id.to_string()))
    }
}

pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("sessions")
}

fn path(data_dir: &Path, id: &str) -> PathBuf {
    dir(data_dir).join(format!("{id}.json"))
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> SavedError + 'a {
    move |source| SavedError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// Write `s` atomically: a private temporary file in the same directory, flushed, then
/// renamed over the old version.
pub fn save(data_dir: &Path, s: &SavedSession) -> Result<PathBuf, SavedError> {
    check_id(&s.id)?;
    let dir = dir(data_dir);
    create_private_dir(&dir)?;
    let target = path(data_dir, &s.id);
    let tmp = dir.join(format!(".{}.json.tmp-{}", s.id, std::process::id()));
    let text = serde_json::to_vec_pretty(s).map_err(|e| SavedError::Parse {
        path: target.clone(),
        message: e.to_string(),
    })?;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(&tmp).map_err(io("write", &tmp))?;
    f.write_all(&text).map_err(io("write", &tmp))?;
    f.sync_all().map_err(io("write", &tmp))?;
    drop(f);
    std::fs::rename(&tmp, &target).map_err(io("write", &target))?;
    Ok(target)
}

fn create_private_dir(dir: &Path) -> Result<(), SavedError> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir).map_err(io("create", dir))
}

fn read(path: &Path) -> Result<SavedSession, SavedError> {
    let text = std::fs::read(path).map_err(io("read", path))?;
    let s: SavedSession = serde_json::from_slice(&text).map_err(|e| SavedError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    if s.version != VERSION {
        return Err(SavedError::Parse {
            path: path.to_path_buf(),
            message: format!("version {} (this kai reads {VERSION})", s.version),
        });
    }
    Ok(s)
}

/// Every readable saved session, the most recently updated first. Files that do not
/// parse are skipped (with a warning in the log), not fatal: one damaged file must not
/// hide the others.
pub fn list(data_dir: &Path) -> Result<Vec<SavedSession>, SavedError> {
    let dir = dir(data_dir);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io("read", &dir)(e)),
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let p = entry.path();
        let is_session = p.extension().is_some_and(|e| e == "json")
            && !p
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if !is_session {
            continue;
        }
        match read(&p) {
            Ok(s) => out.push(s),
            Err(e) => tracing::warn!("skipping {}: {e}", p.display()),
        }
    }
    out.sort_by(|a, b| b.updated.cmp(&a.updated).then(b.id.cmp(&a.id)));
    Ok(out)
}

/// The session `id`, or the latest one for `None`.
pub fn load(data_dir: &Path, id: Option<&str>) -> Result<SavedSession, SavedError> {
    match id {
        Some(id) => {
            check_id(id)?;
            let p = path(data_dir, id);
            if !p.exists() {
                return Err(SavedError::NotFound(id.to_string()));
            }
            read(&p)
        }
        None => list(data_dir)?
            .into_iter()
            .next()
            .ok_or_else(|| SavedError::NoneSaved(dir(data_dir))),
    }
}

/// One line per session for `kai sessions`: id, start, context, namespace, first
/// question. The caller makes it terminal-safe (names come from a kubeconfig, the
/// question from the user).
pub fn table(sessions: &[SavedSession]) -> String {
    let mut s = format!(
        "{:<20}  {:<16}  {:<20}  {:<16}  {}\n",
        "ID", "STARTED", "CONTEXT", "NAMESPACE", "FIRST QUESTION"
    );
    for x in sessions {
        let started = x
            .started
            .to_zoned(jiff::tz::TimeZone::system())
            .strftime("%Y-%m-%d %H:%M")
            .to_string();
        let q: String = x
            .first_question
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let q = if q.chars().count() > QUESTION_CHARS {
            format!("{}…", q.chars().take(QUESTION_CHARS).collect::<String>())
        } else {
            q
        };
        s.push_str(&format!(
            "{:<20}  {:<16}  {:<20}  {:<16}  {}\n",
            x.id, started, x.context, x.namespace, q
        ));
    }
    s
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_saved_atomically_listed_and_loaded() {
        let d = tempfile::tempdir().unwrap();
        assert!(matches!(
            load(d.path(), None),
            Err(SavedError::NoneSaved(_))
        ));
        let mut a = SavedSession::new("ctx-a", "shop", "m");
        a.update(
            vec![
                ChatMessage::user("why is web down?"),
                ChatMessage::assistant("because"),
            ],
            Usage::default(),
        );
        save(d.path(), &a).unwrap();
        let mut b = SavedSession::new("ctx-b", "default", "m");
        b.id = format!("{}-b", b.id);
        b.update(vec![ChatMessage::user("second session")], Usage::default());
        b.updated = a.updated + jiff::SignedDuration::from_secs(5);
        save(d.path(), &b).unwrap();
        // Saving again replaces the file; no temporary file is left behind.
        a.update(
            vec![
                ChatMessage::user("why is web down?"),
                ChatMessage::assistant("because"),
                ChatMessage::user("and now?"),
            ],
            Usage::default(),
        );
        a.updated = b.updated + jiff::SignedDuration::from_secs(5);
        save(d.path(), &a).unwrap();
        let names: Vec<String> = std::fs::read_dir(dir(d.path()))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path(d.path(), &a.id))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let all = list(d.path()).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].id, a.id, "latest updated first");
        assert_eq!(all[0].first_question, "why is web down?");
        assert_eq!(all[0].history.len(), 3);
        assert_eq!(load(d.path(), None).unwrap().id, a.id);
        assert_eq!(load(d.path(), Some(&b.id)).unwrap().context, "ctx-b");
        let t = table(&all);
        assert!(t.contains("ctx-a") && t.contains("why is web down?"), "{t}");
        assert!(t.lines().count() == 3, "{t}");
    }

    #[test]
    fn bad_ids_and_damaged_files() {
        let d = tempfile::tempdir().unwrap();
        assert!(matches!(
            load(d.path(), Some("../../etc/passwd")),
            Err(SavedError::BadId(_))
        ));
        assert!(matches!(
            load(d.path(), Some("nope")),
            Err(SavedError::NotFound(_))
        ));
        create_private_dir(&dir(d.path())).unwrap();
        std::fs::write(dir(d.path()).join("broken.json"), "{not json").unwrap();
        let s = SavedSession::new("c", "n", "m");
        save(d.path(), &s).unwrap();
        let all = list(d.path()).unwrap();
        assert_eq!(all.len(), 1, "the damaged file is skipped");
        assert!(matches!(
            load(d.path(), Some("broken")),
            Err(SavedError::Parse { .. })
        ));
    }
}
