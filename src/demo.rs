//! `kai demo` and `kai testcluster`: the local test cluster for newcomers and exploration.

use anyhow::Result;

use crate::cli::{DemoArgs, GlobalArgs, TestclusterCmd};
use crate::config::Settings;

pub async fn run(_settings: &Settings, _global: &GlobalArgs, _args: &DemoArgs) -> Result<i32> {
    anyhow::bail!("kai demo is being wired")
}

pub async fn testcluster(_cmd: TestclusterCmd) -> Result<i32> {
    anyhow::bail!("kai testcluster is being wired")
}
