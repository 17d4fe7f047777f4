//! The `[target.auth]` table: where the login secret lives (a key file, a password file or
//! a systemd credential, exactly one), never the secret itself -> [`AuthSpec`].

use super::super::raw::RawAuth;
use super::types::{AuthSpec, Inherited};
use super::Problem;

/// The login, or `None` (with the problems pushed) when not exactly one way is given.
pub(super) fn validate_auth(
    a: &RawAuth,
    inh: &Inherited,
    p: &mut Vec<Problem>,
) -> Option<AuthSpec> {
    if a.password.is_some() {
        p.push(Problem::new(
            "target.auth.password",
            "secrets never go into subscription files; put the password in a 0600 file and set password_file, or use a systemd credential (password_credential)",
        ));
    }
    if a.passphrase.is_some() {
        p.push(Problem::new(
            "target.auth.passphrase",
            "secrets never go into subscription files; put the passphrase in a 0600 file and set passphrase_file",
        ));
    }
    let path = |s: &String| inh.secrets_dir.join(s);
    let chosen = [
        a.key_file.is_some(),
        a.password_file.is_some(),
        a.password_credential.is_some(),
        a.key_credential.is_some(),
    ]
    .iter()
    .filter(|x| **x)
    .count();
    if chosen != 1 {
        if a.password.is_none() && a.passphrase.is_none() || chosen > 1 {
            p.push(Problem::new(
                "target.auth",
                "give exactly one of key_file, password_file, password_credential, key_credential",
            ));
        }
        return None;
    }
    for (name, cred) in [
        ("password_credential", &a.password_credential),
        ("key_credential", &a.key_credential),
    ] {
        if let Some(c) = cred {
            if c.is_empty() || c.contains('/') {
                p.push(Problem::new(format!("target.auth.{name}"), format!("`{c}` is not a credential name (no `/`); it is the NAME of LoadCredential=NAME:PATH")));
            }
        }
    }
    if a.passphrase_file.is_some() && a.key_file.is_none() && a.key_credential.is_none() {
        p.push(Problem::new(
            "target.auth.passphrase_file",
            "a passphrase only makes sense with key_file or key_credential",
        ));
    }
    let passphrase_file = a.passphrase_file.as_ref().map(path);
    Some(if let Some(k) = &a.key_file {
        AuthSpec::KeyFile {
            path: path(k),
            passphrase_file,
        }
    } else if let Some(f) = &a.password_file {
        AuthSpec::PasswordFile(path(f))
    } else if let Some(c) = &a.password_credential {
        AuthSpec::PasswordCredential(c.clone())
    } else {
        AuthSpec::KeyCredential {
            name: a.key_credential.clone().unwrap_or_default(),
            passphrase_file,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::{inherited, keys, message_at};
    use super::*;

    fn auth(toml_text: &str) -> (Option<AuthSpec>, Vec<Problem>) {
        let raw: RawAuth = toml::from_str(toml_text).expect("a [target.auth] table");
        let mut p = Vec::new();
        (validate_auth(&raw, &inherited(), &mut p), p)
    }

    #[test]
    fn each_way_to_log_in_alone_passes_with_paths_in_the_secrets_folder() {
        let dir = inherited().secrets_dir;
        let cases = [
            (
                "key_file = \"k\"\npassphrase_file = \"pp\"",
                AuthSpec::KeyFile {
                    path: dir.join("k"),
                    passphrase_file: Some(dir.join("pp")),
                },
            ),
            (
                "password_file = \"pw\"",
                AuthSpec::PasswordFile(dir.join("pw")),
            ),
            (
                "password_credential = \"acme-pw\"",
                AuthSpec::PasswordCredential("acme-pw".into()),
            ),
            (
                "key_credential = \"acme-key\"",
                AuthSpec::KeyCredential {
                    name: "acme-key".into(),
                    passphrase_file: None,
                },
            ),
        ];
        for (text, want) in cases {
            let (a, p) = auth(text);
            assert!(p.is_empty(), "{text}: {p:?}");
            assert_eq!(a, Some(want), "{text}");
        }
    }

    #[test]
    fn none_or_two_ways_are_refused() {
        for text in ["", "key_file = \"k\"\npassword_file = \"pw\""] {
            let (a, p) = auth(text);
            assert_eq!(a, None);
            assert_eq!(
                message_at(&p, "target.auth"),
                "give exactly one of key_file, password_file, password_credential, key_credential"
            );
        }
    }

    #[test]
    fn secrets_in_the_file_are_refused_with_where_to_put_them() {
        let (a, p) = auth("password = \"hunter2\"\npassphrase = \"x\"");
        assert_eq!(a, None);
        // With only the refused secrets there is nothing else to say.
        assert_eq!(keys(&p), ["target.auth.password", "target.auth.passphrase"]);
        assert_eq!(
            message_at(&p, "target.auth.password"),
            "secrets never go into subscription files; put the password in a 0600 file and set password_file, or use a systemd credential (password_credential)"
        );
        assert_eq!(
            message_at(&p, "target.auth.passphrase"),
            "secrets never go into subscription files; put the passphrase in a 0600 file and set passphrase_file"
        );
        let (_, p) = auth("password = \"hunter2\"\npassword_file = \"pw\"");
        assert_eq!(keys(&p), ["target.auth.password"]);
    }

    #[test]
    fn credential_names_have_no_slash() {
        let (_, p) = auth("password_credential = \"a/b\"");
        assert_eq!(
            message_at(&p, "target.auth.password_credential"),
            "`a/b` is not a credential name (no `/`); it is the NAME of LoadCredential=NAME:PATH"
        );
        let (_, p) = auth("key_credential = \"\"");
        assert_eq!(keys(&p), ["target.auth.key_credential"]);
    }

    #[test]
    fn a_passphrase_needs_a_key() {
        let (_, p) = auth("password_file = \"pw\"\npassphrase_file = \"pp\"");
        assert_eq!(
            message_at(&p, "target.auth.passphrase_file"),
            "a passphrase only makes sense with key_file or key_credential"
        );
    }
}
