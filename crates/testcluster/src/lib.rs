//! A real Kubernetes control plane on loopback for kai's tests and `kai demo`.
