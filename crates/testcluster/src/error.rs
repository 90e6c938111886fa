/// Everything that can go wrong starting or using the test cluster. Messages say what to
/// do next where there is something to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("building the test cluster binaries failed: {0}")]
    Build(String),
    #[error("{component} exited during start-up ({status}); last lines of {log}:\n{tail}")]
    ComponentExited {
        component: String,
        status: String,
        log: String,
        tail: String,
    },
    #[error("timed out after {secs}s waiting for {what}{detail}")]
    Timeout {
        what: String,
        secs: u64,
        detail: String,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("generating certificates: {0}")]
    Pki(#[from] rcgen::Error),
    #[error("Kubernetes API, {context}: {source}")]
    Kube {
        context: String,
        #[source]
        source: kube::Error,
    },
    #[error("kubeconfig: {0}")]
    Kubeconfig(#[from] kube::config::KubeconfigError),
    #[error("unknown scenario {name:?}; known scenarios: {known}")]
    UnknownScenario { name: String, known: String },
    #[error("scenario {name}: {message}")]
    Scenario { name: String, message: String },
    #[error("the test cluster was stopped")]
    Stopped,
    #[error("{0}")]
    Other(String),
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn kube(context: impl Into<String>, source: kube::Error) -> Self {
        Error::Kube {
            context: context.into(),
            source,
        }
    }
}
