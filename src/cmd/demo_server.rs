//! `regdrop demo-server`: the embedded loopback SFTP server, on its own.

use super::runtime;
use anyhow::{bail, Result};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub(super) fn demo_server(
    root: PathBuf,
    listen: std::net::SocketAddr,
    user: String,
    authorized_key: Option<String>,
    password_file: Option<PathBuf>,
    host_key: Option<PathBuf>,
) -> Result<ExitCode> {
    use crate::demo_server::{self as ds, DemoAuth};
    std::fs::create_dir_all(&root)?;
    let key_line = authorized_key
        .map(|k| {
            if Path::new(&k).exists() {
                std::fs::read_to_string(&k).map(|s| s.trim().to_string())
            } else {
                Ok(k)
            }
        })
        .transpose()?;
    let password = password_file
        .map(|p| std::fs::read_to_string(&p).map(|s| s.trim_end_matches(['\n', '\r']).to_string()))
        .transpose()?;
    let auth = match (key_line, password) {
        (Some(k), Some(p)) => DemoAuth::public_key(&user, k).with_password(p),
        (Some(k), None) => DemoAuth::public_key(&user, k),
        (None, Some(p)) => DemoAuth::password(&user, p),
        (None, None) => bail!("give --authorized-key and/or --password-file: the demo server does not allow anonymous logins"),
    };
    runtime()?.block_on(async {
        let h = ds::start(root.clone(), auth, host_key, listen).await?;
        outln!(
            "demo SFTP server on {} serving {} for user {user}",
            h.addr(),
            root.display()
        );
        outln!("pin this host key: {}", h.host_key_line());
        outln!("(Ctrl-C stops it)");
        tokio::signal::ctrl_c().await?;
        h.shutdown().await;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}
