//! Subcommands other than the one-shot question.

use anyhow::Result;

use crate::cli::{Command, GlobalArgs};
use crate::config::Settings;

pub async fn dispatch(cmd: Command, _settings: &Settings, _global: &GlobalArgs) -> Result<i32> {
    anyhow::bail!("{cmd:?} is not wired yet")
}
