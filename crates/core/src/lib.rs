//! kai's core: the agent loop that every front end drives through one protocol
//! (operations in, events out), the tool framework it dispatches to, the approval types
//! every front end answers, and the exit codes.
//!
//! Nothing here knows a cluster or a terminal: tools arrive as handlers in a
//! [`tools::Registry`], pre-gathering as an [`agent::Gatherer`], approval as a
//! [`tools::Approver`].

pub mod agent;
pub mod exit;
pub mod session;
pub mod tools;
