//! The SSH side of the demo server: who may log in ([`DemoAuth`]: one user, authorized
//! public keys and/or a password, compared in constant time) and russh's server handler,
//! which accepts session channels and starts the [`super::sftp`] subsystem on them.

use super::faults::Faults;
use super::fs::Vfs;
use super::sftp::SftpFs;
use russh::keys::PublicKey;
use russh::server::{Auth, ChannelOpenHandle, Msg, PublicKeyOffer, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// Who may log in.
#[derive(Clone, Default)]
pub struct DemoAuth {
    pub user: String,
    /// OpenSSH public-key lines (`ssh-ed25519 AAAA... comment`), as in `authorized_keys`.
    pub authorized_keys: Vec<String>,
    pub password: Option<String>,
}

impl std::fmt::Debug for DemoAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoAuth")
            .field("user", &self.user)
            .field("authorized_keys", &self.authorized_keys.len())
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
}

impl DemoAuth {
    /// Public-key login with one authorized key line.
    pub fn public_key(user: impl Into<String>, authorized_line: impl Into<String>) -> DemoAuth {
        DemoAuth {
            user: user.into(),
            authorized_keys: vec![authorized_line.into()],
            password: None,
        }
    }

    /// Password login.
    pub fn password(user: impl Into<String>, password: impl Into<String>) -> DemoAuth {
        DemoAuth {
            user: user.into(),
            authorized_keys: Vec::new(),
            password: Some(password.into()),
        }
    }

    /// Also accept `password`.
    pub fn with_password(mut self, password: impl Into<String>) -> DemoAuth {
        self.password = Some(password.into());
        self
    }
}

/// Parses the key of an OpenSSH public-key line (`type base64 [comment]`, or bare base64).
pub fn parse_key_line(line: &str) -> Result<PublicKey, String> {
    let mut parts = line.split_whitespace();
    let first = parts.next().ok_or("empty line")?;
    let b64 =
        if first.starts_with("ssh-") || first.starts_with("ecdsa-") || first.starts_with("sk-") {
            parts.next().ok_or("no key after the type")?
        } else {
            first
        };
    russh::keys::parse_public_key_base64(b64).map_err(|e| e.to_string())
}

/// What every connection of one server shares.
pub(super) struct Shared {
    pub(super) root: PathBuf,
    pub(super) user: String,
    pub(super) keys: Vec<PublicKey>,
    pub(super) password: Option<String>,
    pub(super) faults: Arc<Faults>,
}

/// The russh server: one [`Conn`] per accepted connection.
#[derive(Clone)]
pub(super) struct DemoSsh {
    pub(super) shared: Arc<Shared>,
}

impl russh::server::Server for DemoSsh {
    type Handler = Conn;

    fn new_client(&mut self, peer: Option<SocketAddr>) -> Conn {
        self.shared.faults.connected();
        tracing::debug!(peer = %peer.map_or_else(|| "unknown".to_string(), |p| p.to_string()), "Demo server accepted a connection.");
        Conn {
            shared: self.shared.clone(),
            channels: HashMap::new(),
        }
    }

    fn handle_session_error(&mut self, error: russh::Error) {
        tracing::debug!(error = %error, "Demo server session ended with an error.");
    }
}

/// One connection: its login and its channels until a subsystem takes them.
pub(super) struct Conn {
    shared: Arc<Shared>,
    channels: HashMap<ChannelId, Channel<Msg>>,
}

impl Conn {
    fn key_allowed(&self, user: &str, key: &PublicKey) -> bool {
        user == self.shared.user
            && self
                .shared
                .keys
                .iter()
                .any(|k| k.key_data() == key.key_data())
    }
}

impl russh::server::Handler for Conn {
    type Error = russh::Error;

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        let ok = user == self.shared.user
            && self
                .shared
                .password
                .as_deref()
                .is_some_and(|p| constant_eq(p.as_bytes(), password.as_bytes()));
        Ok(if ok { Auth::Accept } else { Auth::reject() })
    }

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(if self.key_allowed(user, offer.public_key) {
            Auth::Accept
        } else {
            Auth::reject()
        })
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(if self.key_allowed(user, key.public_key) {
            Auth::Accept
        } else {
            Auth::reject()
        })
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.channels.insert(channel.id(), channel);
        reply.accept().await;
        Ok(())
    }

    async fn channel_eof(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.close(channel)?;
        Ok(())
    }

    async fn subsystem_request(
        &mut self,
        channel_id: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        match (name, self.channels.remove(&channel_id)) {
            ("sftp", Some(channel)) => {
                session.channel_success(channel_id)?;
                let fs = SftpFs::new(
                    Vfs::new(self.shared.root.clone()),
                    self.shared.faults.clone(),
                    session.handle(),
                );
                russh_sftp::server::run(channel.into_stream(), fs).await;
            }
            _ => session.channel_failure(channel_id)?,
        }
        Ok(())
    }
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_lines_parse_with_and_without_type_and_comment() {
        let line = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ me@host";
        let k = parse_key_line(line).unwrap();
        let bare = parse_key_line(line.split_whitespace().nth(1).unwrap()).unwrap();
        assert_eq!(k.key_data(), bare.key_data());
        assert!(parse_key_line("ssh-ed25519").is_err());
    }

    #[test]
    fn passwords_compare_whole() {
        assert!(constant_eq(b"secret", b"secret"));
        assert!(!constant_eq(b"secret", b"secreT"));
        assert!(!constant_eq(b"secret", b"secret2"));
        assert!(!constant_eq(b"", b"x"));
    }
}
