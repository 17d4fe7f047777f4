//! An age recipient as configured: the line as written (trimmed; for receipts, manifests
//! and messages) and the public key parsed from it once, at validation, so sealing only
//! encrypts. `age1...` (X25519), `ssh-ed25519 ...` or `ssh-rsa ...` lines.

use std::fmt;

/// One parsed recipient. Equal when the lines are; it holds only public keys.
#[derive(Clone)]
pub struct Recipient {
    line: String,
    key: Key,
}

#[derive(Clone)]
enum Key {
    X25519(age::x25519::Recipient),
    Ssh(age::ssh::Recipient),
}

/// Why a line is not a recipient; the message is the one `regdrop check` prints.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecipientError {
    #[error("`{0}` is not an age recipient; use an `age1...` key (from `age-keygen -y`) or an `ssh-ed25519`/`ssh-rsa` public-key line")]
    Unknown(String),
    #[error("`{0}` does not parse as an age recipient; check it was copied whole")]
    Garbled(String),
}

impl Recipient {
    /// Parses a recipient line (surrounding whitespace is ignored). Errors quote the line,
    /// cut to 40 characters.
    pub fn parse(line: &str) -> Result<Recipient, RecipientError> {
        let line = line.trim();
        let garbled = || RecipientError::Garbled(short(line));
        let key = if line.starts_with("age1") {
            Key::X25519(line.parse().map_err(|_| garbled())?)
        } else if line.starts_with("ssh-ed25519 ") || line.starts_with("ssh-rsa ") {
            Key::Ssh(line.parse().map_err(|_| garbled())?)
        } else {
            return Err(RecipientError::Unknown(short(line)));
        };
        Ok(Recipient {
            line: line.to_string(),
            key,
        })
    }

    /// The line as configured (trimmed).
    pub fn as_str(&self) -> &str {
        &self.line
    }

    /// The key, as `age::Encryptor::with_recipients` takes it.
    pub fn age(&self) -> &dyn age::Recipient {
        match &self.key {
            Key::X25519(k) => k,
            Key::Ssh(k) => k,
        }
    }
}

impl From<age::x25519::Recipient> for Recipient {
    fn from(key: age::x25519::Recipient) -> Recipient {
        Recipient {
            line: key.to_string(),
            key: Key::X25519(key),
        }
    }
}

impl std::str::FromStr for Recipient {
    type Err = RecipientError;
    fn from_str(s: &str) -> Result<Recipient, RecipientError> {
        Recipient::parse(s)
    }
}

impl fmt::Display for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.line)
    }
}

impl fmt::Debug for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Recipient").field(&self.line).finish()
    }
}

impl PartialEq for Recipient {
    fn eq(&self, other: &Recipient) -> bool {
        self.line == other.line
    }
}

impl Eq for Recipient {}

impl PartialEq<str> for Recipient {
    fn eq(&self, other: &str) -> bool {
        self.line == other
    }
}

impl PartialEq<&str> for Recipient {
    fn eq(&self, other: &&str) -> bool {
        self.line == *other
    }
}

impl PartialEq<String> for Recipient {
    fn eq(&self, other: &String) -> bool {
        &self.line == other
    }
}

fn short(s: &str) -> String {
    if s.chars().count() > 40 {
        format!("{}...", s.chars().take(40).collect::<String>())
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AGE: &str = "age13k7zew9msc69sqmx4wt7jlxxdz9y25wdpsce3yqrwn5cm2880y6szzkp7r";
    const SSH: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ me@host";

    #[test]
    fn an_age_line_parses_and_keeps_its_text_trimmed() {
        let r = Recipient::parse(&format!("  {AGE}\n")).unwrap();
        assert_eq!(r.as_str(), AGE);
        assert_eq!(r.to_string(), AGE);
        assert_eq!(format!("{r:?}"), format!("Recipient({AGE:?})"));
    }

    #[test]
    fn an_ssh_line_parses() {
        let r: Recipient = SSH.parse().unwrap();
        assert_eq!(r, SSH);
    }

    #[test]
    fn bad_lines_are_refused_with_the_validators_messages() {
        assert_eq!(
            Recipient::parse("bob@example.no").unwrap_err().to_string(),
            "`bob@example.no` is not an age recipient; use an `age1...` key (from `age-keygen -y`) or an `ssh-ed25519`/`ssh-rsa` public-key line"
        );
        assert_eq!(
            Recipient::parse("age1qqqq").unwrap_err().to_string(),
            "`age1qqqq` does not parse as an age recipient; check it was copied whole"
        );
        assert_eq!(
            Recipient::parse("ssh-ed25519 AAAAnope").unwrap_err(),
            RecipientError::Garbled("ssh-ed25519 AAAAnope".into())
        );
        assert_eq!(
            Recipient::parse(&"x".repeat(50)).unwrap_err(),
            RecipientError::Unknown(format!("{}...", "x".repeat(40)))
        );
    }

    #[test]
    fn recipients_are_equal_by_line() {
        let a = Recipient::parse(AGE).unwrap();
        assert_eq!(a, Recipient::parse(&format!(" {AGE} ")).unwrap());
        assert_ne!(a, Recipient::parse(SSH).unwrap());
        let id = age::x25519::Identity::generate();
        let from_key = Recipient::from(id.to_public());
        assert_eq!(
            from_key,
            Recipient::parse(&id.to_public().to_string()).unwrap()
        );
    }
}
