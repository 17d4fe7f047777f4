//! The e-mail transport of a run (docs/design.md §4, README "E-mail delivery"): the same
//! run, attempt, retry and receipt rules as SFTP, with the files attached to one mail sent
//! through `[smtp]`, and for `[encryption] mode = "passphrase"` a passphrase made per
//! sealing and sent by SMS through `[sms]` before the mail.
//!
//! # One attempt
//! 1. What the store says was already sent wins: `sending` (the Message-ID was recorded
//!    just before DATA and no answer was recorded) means the mail may be out: permanent,
//!    the run needs an operator, nothing is sent again; `sent` means the server took it: the
//!    receipt is recorded, nothing is sent.
//! 2. The sealed files are checked against their recorded sizes and sums. A missing or
//!    changed file, or (passphrase mode) a file whose passphrase SMS is not recorded (the
//!    passphrase exists only in memory between sealing and the SMS), is discarded and
//!    sealed anew: nothing of it was mailed, so this is safe.
//! 3. No artifact: the mail settings are checked (secrets readable), a new passphrase is
//!    made, the extract is sealed with it (or to the recipients), the size is checked
//!    against `[email] max_bytes` (over: permanent, no SMS, no mail), then the passphrase
//!    goes by SMS with the file's reference (the first 8 characters of its SHA-256) and the
//!    SMS is recorded for this artifact. The passphrase is dropped.
//! 4. The mail: the Message-ID is recorded (`sending`) just before DATA; the server's
//!    acceptance is recorded (`sent`), then the receipt. A refusal or a connection lost
//!    before the message was handed over returns to step 2 on the next attempt with the
//!    same file and no new SMS; a lost reply after the message is permanent.

use super::{lock, Attempted, Ctx, DeliveryError, Observer, Sent};
use crate::core::config::validate::mask_mobile;
use crate::core::config::{EmailSpec, SmsFormat, SmsSpec, Subscription};
use crate::core::plan::RunPlan;
use crate::http_post;
use crate::mail;
use crate::store::{self, DeliveredFile, Run, RunFile, RunState};
use age::secrecy::{ExposeSecret, SecretString};
use tracing::{info, warn};

/// What the receipt of an e-mail delivery records.
#[derive(Debug, Clone)]
pub struct EmailDelivered {
    pub host: String,
    pub port: u16,
    pub message_id: String,
    pub to: Vec<String>,
    /// The server's reply to the message (cleaned).
    pub reply: String,
    /// The masked number the passphrase went to, if one did.
    pub sms_to: Option<String>,
}

/// The file's reference in the SMS and the mail body.
fn reference(sha256: &str) -> &str {
    &sha256[..8.min(sha256.len())]
}

/// One attempt of an e-mail run; see the module docs.
pub(super) async fn attempt(
    ctx: &Ctx,
    sub: &Subscription,
    plan: &RunPlan,
    email: &EmailSpec,
    run: &mut Run,
    n: u32,
    obs: &dyn Observer,
) -> Result<Attempted, DeliveryError> {
    let id = run.id.clone();
    let smtp = ctx.daemon.smtp.as_ref().ok_or_else(|| {
        DeliveryError::Setup(format!(
            "subscription {} delivers by [email], but regdrop.toml has no [smtp] table; add the mail server (config.example.toml shows one)",
            sub.id
        ))
    })?;
    let sms = if plan.encryption.passphrase {
        Some(ctx.daemon.sms.as_ref().ok_or_else(|| {
            DeliveryError::Setup(format!(
                "subscription {} sends its passphrase by SMS, but regdrop.toml has no [sms] table; add the SMS gateway (config.example.toml shows one)",
                sub.id
            ))
        })?)
    } else {
        None
    };
    // 1. What was sent already.
    let sent_before = lock(&ctx.store).email_send(&id)?;
    if let Some(s) = &sent_before {
        match s.state.as_str() {
            "sending" => {
                return Err(DeliveryError::MailUnconfirmed {
                    run: id.clone(),
                    message_id: s.message_id.clone().unwrap_or_default(),
                })
            }
            "sent" => {
                if let Some(a) = run.artifact.clone() {
                    info!(subscription = %sub.id, run = %id, "The mail of this run was sent before; recording the receipt.");
                    let extras = lock(&ctx.store).run_files(&id)?;
                    return Ok(Attempted::Delivered {
                        d: Sent::Email(EmailDelivered {
                            host: smtp.host.clone(),
                            port: smtp.port,
                            message_id: s.message_id.clone().unwrap_or_default(),
                            to: email.to.clone(),
                            reply: s.reply.clone().unwrap_or_default(),
                            sms_to: s.sms_to.clone(),
                        }),
                        files: attached_files(&extras),
                        artifact: a,
                    });
                }
            }
            _ => {}
        }
    }
    // 2. The sealed files, if any.
    if let Some(a) = run.artifact.clone() {
        let extras = lock(&ctx.store).run_files(&id)?;
        let why = match super::check_spool(&a, &extras).await? {
            super::SpoolCheck::Intact => None,
            super::SpoolCheck::Missing => {
                Some("the sealed file is missing from the spool".to_string())
            }
            super::SpoolCheck::Changed(d) => {
                Some(format!("the sealed file changed after sealing ({d})"))
            }
        }
        .or_else(|| {
            let sms_for_it = sent_before
                .as_ref()
                .is_some_and(|s| s.artifact_sha256 == a.ciphertext_sha256 && s.sms_to.is_some());
            (sms.is_some() && !sms_for_it).then(|| {
                "its passphrase was never sent by SMS (it is kept only until then)".to_string()
            })
        });
        if let Some(why) = why {
            warn!(subscription = %sub.id, run = %id, reason = %why, "Sealed file not mailed; sealing it again.");
            *run = lock(&ctx.store)
                .discard_artifact(&id, &format!("attempt {n}: {why}; sealed again"))?;
            for p in std::iter::once(&a.path).chain(extras.iter().map(|f| &f.path)) {
                let _ = std::fs::remove_file(p);
            }
        }
    }
    // 3. Seal (and send the passphrase).
    if run.artifact.is_none() {
        check_settings(smtp, sms)?;
        let pass = sms.map(|_| crate::seal::new_passphrase());
        super::record::generate(ctx, plan, run, obs, pass.clone()).await?;
        let a = sealed(run)?;
        let extras = lock(&ctx.store).run_files(&id)?;
        if let Err(e) = check_size(sub, email, &a, &extras) {
            *run = lock(&ctx.store).discard_artifact(&id, &format!("attempt {n}: {e}"))?;
            for p in std::iter::once(&a.path).chain(extras.iter().map(|f| &f.path)) {
                let _ = std::fs::remove_file(p);
            }
            return Err(e);
        }
        if let (Some(sms), Some(pass)) = (sms, pass) {
            let to = email.sms_to.as_deref().ok_or_else(|| {
                DeliveryError::Setup(format!(
                    "subscription {} has no contact mobile for the passphrase",
                    sub.id
                ))
            })?;
            obs.stage(&id, "sending the passphrase by SMS");
            send_sms(sms, to, &a, &pass).await?;
            let masked = mask_mobile(to);
            lock(&ctx.store).email_sms_sent(&id, &a.ciphertext_sha256, &masked)?;
            info!(subscription = %sub.id, run = %id, to = %masked, reference = reference(&a.ciphertext_sha256), "Passphrase sent by SMS.");
        }
    }
    let a = sealed(run)?;
    let extras = lock(&ctx.store).run_files(&id)?;
    check_size(sub, email, &a, &extras)?;
    if run.state != RunState::Uploading {
        *run = lock(&ctx.store).set_state(&id, RunState::Uploading, None)?;
    }
    // 4. The mail.
    obs.stage(&id, &format!("sending the mail (attempt {n})"));
    let sms_to = lock(&ctx.store).email_send(&id)?.and_then(|s| s.sms_to);
    let message = compose(sub, plan, smtp, email, &id, &a, &extras, sms_to.as_deref())?;
    let store = ctx.store.clone();
    let (rid, sha, mid) = (
        id.clone(),
        a.ciphertext_sha256.clone(),
        message.message_id.clone(),
    );
    let result = mail::send(smtp, &message, move || {
        lock(&store)
            .email_sending(&rid, &sha, &mid)
            .map_err(|e| e.to_string())
    })
    .await;
    match result {
        Ok(sent) => {
            lock(&ctx.store).email_sent(&id, &sent.reply)?;
            info!(subscription = %sub.id, run = %id, message_id = %sent.message_id, "Mail accepted by the server.");
            Ok(Attempted::Delivered {
                d: Sent::Email(EmailDelivered {
                    host: smtp.host.clone(),
                    port: smtp.port,
                    message_id: sent.message_id,
                    to: email.to.clone(),
                    reply: sent.reply,
                    sms_to,
                }),
                files: attached_files(&extras),
                artifact: a,
            })
        }
        Err(e) if e.nothing_sent() => {
            lock(&ctx.store).email_not_sent(&id)?;
            Err(DeliveryError::Mail(e))
        }
        Err(e) => Err(DeliveryError::Mail(e)),
    }
}

fn sealed(run: &Run) -> Result<store::Artifact, DeliveryError> {
    run.artifact
        .clone()
        .ok_or_else(|| DeliveryError::Task("the sealed artifact was not recorded".into()))
}

/// The code tables attached beside the main file, as the receipt lists them.
fn attached_files(extras: &[RunFile]) -> Vec<DeliveredFile> {
    extras
        .iter()
        .map(|f| DeliveredFile {
            name: f.file_name.clone(),
            remote_path: f.file_name.clone(),
            code_table: f.code_table.clone(),
            rows: f.rows,
            bytes: f.ciphertext_bytes,
            sha256: f.ciphertext_sha256.clone(),
            plaintext_sha256: f.plaintext_sha256.clone(),
        })
        .collect()
}

/// The secrets the sending needs are readable (before any extract is made).
fn check_settings(
    smtp: &crate::core::config::SmtpSpec,
    sms: Option<&SmsSpec>,
) -> Result<(), DeliveryError> {
    if let Some(a) = &smtp.auth {
        crate::secret::read(&a.password).map_err(mail::MailError::from)?;
    }
    if let Some((_, r)) = sms.and_then(|s| s.auth.as_ref()) {
        crate::secret::read(r).map_err(|e| DeliveryError::Sms(http_post::HttpError::from(e)))?;
    }
    Ok(())
}

/// Every attached file together within `[email] max_bytes`, else a permanent error.
fn check_size(
    sub: &Subscription,
    email: &EmailSpec,
    a: &store::Artifact,
    extras: &[RunFile],
) -> Result<(), DeliveryError> {
    let total = a.ciphertext_bytes + extras.iter().map(|f| f.ciphertext_bytes).sum::<u64>();
    if total > email.max_bytes {
        return Err(DeliveryError::TooLarge {
            sub: sub.id.clone(),
            bytes: total,
            max: email.max_bytes,
        });
    }
    Ok(())
}

/// Sends the passphrase of sealed file `a` to `to` through the gateway.
async fn send_sms(
    sms: &SmsSpec,
    to: &str,
    a: &store::Artifact,
    pass: &SecretString,
) -> Result<(), DeliveryError> {
    let text = format!(
        "Passord til {} (ref {}): {}",
        a.file_name,
        reference(&a.ciphertext_sha256),
        pass.expose_secret()
    );
    let fields = sms.render(to, &text);
    let body = match sms.format {
        SmsFormat::Json => http_post::Body::Json(serde_json::Value::Object(
            fields
                .into_iter()
                .map(|(k, v)| (k, serde_json::Value::String(v)))
                .collect(),
        )),
        SmsFormat::Form => http_post::Body::Form(fields),
    };
    let mut post = http_post::Post::new(sms.url.clone(), body);
    post.timeout = sms.timeout;
    post.ca_file = sms.ca_file.clone();
    post.secret_header = sms
        .auth
        .as_ref()
        .map(|(name, value)| http_post::SecretHeader {
            name: name.clone(),
            value: value.clone(),
        });
    http_post::post(&post).await.map_err(DeliveryError::Sms)?;
    Ok(())
}

/// The mail of a run: the sealed files attached, a body saying what they are and how to
/// open them (no personal data: names, sizes, sums, the SMS reference).
#[allow(clippy::too_many_arguments)]
fn compose(
    sub: &Subscription,
    plan: &RunPlan,
    smtp: &crate::core::config::SmtpSpec,
    email: &EmailSpec,
    run: &crate::core::identity::RunId,
    a: &store::Artifact,
    extras: &[RunFile],
    sms_to: Option<&str>,
) -> Result<mail::Mail, DeliveryError> {
    let mut attachments = Vec::with_capacity(1 + extras.len());
    let mut lines = Vec::new();
    for (path, name, sha, bytes) in extras
        .iter()
        .map(|f| {
            (
                &f.path,
                &f.file_name,
                &f.ciphertext_sha256,
                f.ciphertext_bytes,
            )
        })
        .chain(std::iter::once((
            &a.path,
            &a.file_name,
            &a.ciphertext_sha256,
            a.ciphertext_bytes,
        )))
    {
        let data = std::fs::read(path).map_err(|e| {
            DeliveryError::Spool(format!(
                "cannot read the sealed file {path}: {e}; check the spool folder"
            ))
        })?;
        attachments.push(mail::Attachment {
            name: name.clone(),
            content_type: "application/octet-stream".into(),
            data,
        });
        lines.push(format!("  {sha}  {name}  ({bytes} bytes)"));
    }
    let how = if plan.encryption.passphrase {
        format!(
            "Passordet er sendt på SMS til {} med referanse {}.\n\
             The passphrase was sent by SMS to {} with reference {}.\n",
            sms_to.unwrap_or("kontaktpersonen"),
            reference(&a.ciphertext_sha256),
            sms_to.unwrap_or("the contact person"),
            reference(&a.ciphertext_sha256),
        )
    } else if plan.encryption.encrypt {
        "Filene er kryptert til nøkkelen deres (age-mottaker i avtalen).\n\
         The files are encrypted to your age key (the recipient in the agreement).\n"
            .to_string()
    } else {
        "Filene er åpne data og ikke kryptert.\nThe files are open data, not encrypted.\n"
            .to_string()
    };
    let open = if plan.encryption.passphrase {
        format!(
            "  age -d -o {plain} {file}      (spør etter passordet / asks for the passphrase)\n",
            plain = a.file_name.trim_end_matches(".age"),
            file = a.file_name
        )
    } else {
        format!(
            "  age -d -i NØKKEL.txt -o {plain} {file}\n",
            plain = a.file_name.trim_end_matches(".age"),
            file = a.file_name
        )
    };
    let body = format!(
        "Uttrekk fra kjøretøyregisteret / Extract from the vehicle register\n\
         Abonnement / subscription: {id}{case}\n\
         Kjøring / run: {run}\n\n\
         {how}\n\
         Slik åpner du fila / How to open the file, with age (https://age-encryption.org,\n\
         for Linux, macOS and Windows):\n{open}\n\
         SHA-256 av vedleggene / of the attachments (sha256sum):\n{sums}\n\n\
         Uttrekk over {max} bytes sendes med SFTP. / Extracts over {max} bytes go by SFTP.\n",
        id = sub.id,
        case = sub
            .case_number
            .as_deref()
            .map(|c| format!(", sak / case {c}"))
            .unwrap_or_default(),
        max = email.max_bytes,
        sums = lines.join("\n"),
    );
    Ok(mail::Mail {
        from: smtp.from.clone(),
        to: email.to.clone(),
        subject: plan
            .subject
            .clone()
            .unwrap_or_else(|| format!("Uttrekk {}", sub.id)),
        body,
        attachments,
        message_id: mail::new_message_id(run, &smtp.from),
    })
}
