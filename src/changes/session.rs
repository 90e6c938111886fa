//! "All for this session": remembered in one place the agent holds for the session.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;

use crate::agent::protocol::{ApprovalRequest, Decision};
use crate::tools::Approver;

/// An [`Approver`] that remembers [`Decision::ApprovedForSession`].
///
/// The agent wraps its front-end approver once per session and puts this in
/// `ToolCtx::approver`. After the user answers "all", later non-dangerous changes are
/// approved without asking (reported as `ApprovedForSession`, so the audit log says why);
/// dangerous changes always go to the front end, and "all" given to a dangerous change
/// counts for that change only.
pub struct SessionApprovals {
    inner: Arc<dyn Approver>,
    all: AtomicBool,
}

impl SessionApprovals {
    pub fn new(inner: Arc<dyn Approver>) -> Self {
        Self {
            inner,
            all: AtomicBool::new(false),
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
}
