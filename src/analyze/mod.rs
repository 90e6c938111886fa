//! Deterministic analyzers: cluster state in, ranked root-cause findings out.
