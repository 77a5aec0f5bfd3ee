//! `agentenv export kubernetes ENV [--schedule CRON] [--image IMAGE] [--spec-in-image]
//! [--cache hostpath:PATH|pvc:NAME] [-- AGENT…]`: print the manifests that run the agent on a
//! cluster (multi-document YAML on stdout; warnings on stderr). The manifests are built by
//! [`crate::export::kubernetes`].

use std::path::PathBuf;

use super::output;
use crate::error::Result;
use crate::export::kubernetes;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// A CronJob (a Job without a schedule) whose pod runs `agentenv run`, and the ConfigMap
    /// with the spec; Secrets are referenced, never inlined.
    Kubernetes(KubernetesArgs),
}

#[derive(Debug, clap::Args)]
pub struct KubernetesArgs {
    /// The environment spec (YAML).
    pub env: PathBuf,
    /// When to run, in cron syntax (e.g. `0 6 * * 1-5`) [default: the spec's
    /// `schedule.cron`; without either, a one-off Job].
    #[arg(long, value_name = "CRON")]
    pub schedule: Option<String>,
    /// The container image (agentenv, git and the agent; see deploy/Containerfile)
    /// [default: the spec's `schedule.image`, else agentenv:VERSION].
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,
    /// The spec is in the image at /etc/agentenv/env/FILE: no ConfigMap.
    #[arg(long)]
    pub spec_in_image: bool,
    /// The node-level clone cache: `hostpath:PATH` or `pvc:NAME` [default: the spec's
    /// `schedule.cache`, else hostpath:/var/cache/agentenv/NAME].
    #[arg(long, value_name = "VOLUME")]
    pub cache: Option<String>,
    /// The agent's command line [default: the spec's `agent.command`].
    #[arg(last = true, value_name = "AGENT")]
    pub agent: Vec<String>,
}

/// `agentenv export …`.
pub fn run(cmd: Command) -> Result<()> {
    match cmd {
        Command::Kubernetes(args) => {
            let export = kubernetes::export(&kubernetes::Options {
                env: args.env,
                schedule: args.schedule,
                image: args.image,
                spec_in_image: args.spec_in_image,
                cache: args.cache,
                agent: args.agent,
            })?;
            for w in &export.warnings {
                output::eprint(&format!("warning: {w}\n"));
            }
            output::print(&export.yaml)
        }
    }
}
