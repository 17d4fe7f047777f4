//! `regdrop init`: lays out a machine for the service.

use std::process::ExitCode;

/// Where and how to install.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub(super) fn run(_args: &Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`regdrop init` is not built yet")
}
