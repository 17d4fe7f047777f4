//! The `email_sends` table: how far an e-mail run's sending got, so a crash or a retry
//! never sends a second passphrase for the same file or a second mail for one run
//! (docs/design.md §4, README "E-mail"). One row per run: `sms_sent` (the passphrase
//! SMS for artifact X was accepted by the gateway), `sending` (the Message-ID recorded just
//! before SMTP DATA), `sent` (the server took the mail). Discarding the artifact deletes
//! the row.

use super::db::{params, OptionalExtension};
use super::model::{EmailSend, RunId};
use super::{Result, Store};

impl Store {
    /// The run's sending state, if any.
    pub fn email_send(&self, run: &RunId) -> Result<Option<EmailSend>> {
        self.conn
            .query_row(
                "SELECT run_id, artifact_sha256, state, sms_to, message_id, reply FROM email_sends WHERE run_id = ?1",
                [run],
                |r| {
                    Ok(EmailSend {
                        run_id: r.get(0)?,
                        artifact_sha256: r.get(1)?,
                        state: r.get(2)?,
                        sms_to: r.get(3)?,
                        message_id: r.get(4)?,
                        reply: r.get(5)?,
                    })
                },
            )
            .optional()
    }

    /// The passphrase SMS for `artifact_sha256` went to `sms_to` (masked).
    pub fn email_sms_sent(&self, run: &RunId, artifact_sha256: &str, sms_to: &str) -> Result<()> {
        let now = self.now();
        self.conn.execute(
            "INSERT INTO email_sends (run_id, artifact_sha256, state, sms_to, sms_sent_at, updated_at) \
             VALUES (?1, ?2, 'sms_sent', ?3, ?4, ?4) \
             ON CONFLICT (run_id) DO UPDATE SET artifact_sha256 = ?2, state = 'sms_sent', sms_to = ?3, \
             sms_sent_at = ?4, message_id = NULL, reply = NULL, updated_at = ?4",
            params![run, artifact_sha256, sms_to, now],
        )?;
        Ok(())
    }

    /// The mail with `message_id` is about to be handed over (just before DATA).
    pub fn email_sending(
        &self,
        run: &RunId,
        artifact_sha256: &str,
        message_id: &str,
    ) -> Result<()> {
        let now = self.now();
        self.conn.execute(
            "INSERT INTO email_sends (run_id, artifact_sha256, state, message_id, updated_at) \
             VALUES (?1, ?2, 'sending', ?3, ?4) \
             ON CONFLICT (run_id) DO UPDATE SET state = 'sending', message_id = ?3, updated_at = ?4",
            params![run, artifact_sha256, message_id, now],
        )?;
        Ok(())
    }

    /// The server took the mail.
    pub fn email_sent(&self, run: &RunId, reply: &str) -> Result<()> {
        self.conn.execute(
            "UPDATE email_sends SET state = 'sent', reply = ?2, updated_at = ?3 WHERE run_id = ?1",
            params![run, reply, self.now()],
        )?;
        Ok(())
    }

    /// The mail was definitely not sent (refused, or no connection before the message): back
    /// to `sms_sent` when a passphrase SMS went out, else no row.
    pub fn email_not_sent(&self, run: &RunId) -> Result<()> {
        let tx = self.write_tx()?;
        tx.execute(
            "DELETE FROM email_sends WHERE run_id = ?1 AND sms_to IS NULL",
            [run],
        )?;
        tx.execute(
            "UPDATE email_sends SET state = 'sms_sent', message_id = NULL, updated_at = ?2 WHERE run_id = ?1",
            params![run, self.now()],
        )?;
        tx.commit()?;
        Ok(())
    }
}
