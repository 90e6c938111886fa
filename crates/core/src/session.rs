//! "All for this session": remembered in one place the agent holds for the session.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;

use crate::agent::protocol::{ApprovalRequest, Decision};
use crate::tools::Approver;

/// An [`Approver`] that remembers [`Decision::ApprovedForSession`].
///
/// The agent wraps its front-end approver once per session and puts this in
/// `CallCtx::approver`. After the user answers "all", later non-dangerous changes are
/// approved without asking (reported as `ApprovedForSession`, so the audit log says why);
/// dangerous changes always go to the front end, and "all" given to a dangerous change
/// counts for that change only.
pub struct SessionApprovals {
    inner: Arc<dyn Approver>,
    all: AtomicBool,
    /// Told about every change approved by an earlier "all", so the user still sees it.
    notify: Option<Notifier>,
}

/// Called with a change approved without asking.
type Notifier = Box<dyn Fn(&ApprovalRequest) + Send + Sync>;

impl SessionApprovals {
    pub fn new(inner: Arc<dyn Approver>) -> Self {
        Self {
            inner,
            all: AtomicBool::new(false),
            notify: None,
        }
    }

    /// Like [`SessionApprovals::new`], calling `notify` for each change approved without
    /// asking because of an earlier "all".
    pub fn with_notifier(
        inner: Arc<dyn Approver>,
        notify: impl Fn(&ApprovalRequest) + Send + Sync + 'static,
    ) -> Self {
        Self {
            notify: Some(Box::new(notify)),
            ..Self::new(inner)
        }
    }

    /// Whether the user has said "all" in this session.
    pub fn approved_for_session(&self) -> bool {
        self.all.load(Ordering::SeqCst)
    }

    /// Forget "all" (e.g. a `/reset` in the REPL).
    pub fn reset(&self) {
        self.all.store(false, Ordering::SeqCst);
    }
}

#[async_trait]
impl Approver for SessionApprovals {
    async fn request(&self, request: ApprovalRequest) -> Decision {
        if !request.dangerous && self.approved_for_session() {
            if let Some(n) = &self.notify {
                n(&request);
            }
            return Decision::ApprovedForSession;
        }
        let dangerous = request.dangerous;
        match self.inner.request(request).await {
            Decision::ApprovedForSession if dangerous => Decision::Approved,
            Decision::ApprovedForSession => {
                self.all.store(true, Ordering::SeqCst);
                Decision::ApprovedForSession
            }
            other => other,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    struct Script(Mutex<Vec<Decision>>, Mutex<usize>);

    #[async_trait]
    impl Approver for Script {
        async fn request(&self, _r: ApprovalRequest) -> Decision {
            *self.1.lock().unwrap() += 1;
            let mut s = self.0.lock().unwrap();
            if s.is_empty() {
                Decision::Denied
            } else {
                s.remove(0)
            }
        }
    }

    fn req(dangerous: bool) -> ApprovalRequest {
        ApprovalRequest {
            id: "x".into(),
            tool: "scale".into(),
            title: "t".into(),
            diff: "d".into(),
            kubectl: String::new(),
            dangerous,
            confirm_name: dangerous.then(|| "web".into()),
        }
    }

    #[tokio::test]
    async fn all_for_session_skips_later_safe_questions_but_never_dangerous_ones() {
        let inner = Arc::new(Script(
            Mutex::new(vec![Decision::ApprovedForSession, Decision::Denied]),
            Mutex::new(0),
        ));
        let s = SessionApprovals::new(inner.clone());
        assert_eq!(s.request(req(false)).await, Decision::ApprovedForSession);
        assert!(s.approved_for_session());
        assert_eq!(s.request(req(false)).await, Decision::ApprovedForSession);
        assert_eq!(
            *inner.1.lock().unwrap(),
            1,
            "the second safe change was not asked"
        );
        assert_eq!(
            s.request(req(true)).await,
            Decision::Denied,
            "dangerous changes are always asked"
        );
        assert_eq!(*inner.1.lock().unwrap(), 2);
        s.reset();
        assert!(!s.approved_for_session());
    }

    #[tokio::test]
    async fn all_on_a_dangerous_change_counts_once() {
        let inner = Arc::new(Script(
            Mutex::new(vec![Decision::ApprovedForSession]),
            Mutex::new(0),
        ));
        let s = SessionApprovals::new(inner);
        assert_eq!(s.request(req(true)).await, Decision::Approved);
        assert!(!s.approved_for_session());
        assert_eq!(s.request(req(false)).await, Decision::Denied);
    }

    #[tokio::test]
    async fn changes_approved_by_all_are_announced() {
        let inner = Arc::new(Script(
            Mutex::new(vec![Decision::ApprovedForSession]),
            Mutex::new(0),
        ));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let s = SessionApprovals::with_notifier(inner, move |r| {
            log.lock().unwrap().push(r.title.clone())
        });
        s.request(req(false)).await;
        assert!(
            seen.lock().unwrap().is_empty(),
            "the asked change is not announced"
        );
        let mut second = req(false);
        second.title = "scale web to 4".into();
        assert_eq!(s.request(second).await, Decision::ApprovedForSession);
        assert_eq!(*seen.lock().unwrap(), vec!["scale web to 4".to_string()]);
    }
}
