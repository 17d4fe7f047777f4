//! Notifications, the pure part: which end of a run produces which [`Event`], and what the
//! operator alert (subject, body, webhook JSON) and the customer's delivery notice say.
//!
//! Only metadata goes into a message: ids, names of the subscription and customer, states,
//! counts, sizes, hashes, times and regdrop's own reason text. The builders take a
//! [`RunFacts`], which has no place for a register value, a contact address or a secret;
//! the reason is cleaned ([`scrub_reason`]: control characters escaped, anything shaped
//! like a fødselsnummer or D-number masked, bounded length) because parts of it can come
//! from a customer's server. The webhook body's fields are documented in the README
//! ("Notifications") and fixed by [`WEBHOOK_SCHEMA`]; a change to them is a new schema
//! number.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// The `schema` field of every webhook body; bumped when a field changes meaning or goes.
pub const WEBHOOK_SCHEMA: u32 = 1;

/// The longest reason (in characters) a message carries; the store keeps the whole text.
pub const REASON_MAX: usize = 600;

/// What a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// A run stopped on a permanent error and waits for an operator (operators).
    NeedsAttention,
    /// A run gave up after its retries (operators).
    Failed,
    /// The first delivery of a subscription after an alert for it (operators).
    Recovered,
    /// A run delivered its files (the customer's contact, when the subscription asks).
    Delivered,
}

impl Event {
    /// The operator events, in the order `[notify] events` lists them by default.
    pub const OPERATOR: [Event; 3] = [Event::NeedsAttention, Event::Failed, Event::Recovered];

    pub fn as_str(self) -> &'static str {
        match self {
            Event::NeedsAttention => "needs_attention",
            Event::Failed => "failed",
            Event::Recovered => "recovered",
            Event::Delivered => "delivered",
        }
    }

    pub fn parse(s: &str) -> Option<Event> {
        [
            Event::NeedsAttention,
            Event::Failed,
            Event::Recovered,
            Event::Delivered,
        ]
        .into_iter()
        .find(|e| e.as_str() == s)
    }

    /// Whether this event leaves a subscription with an open problem (a later delivery is
    /// then a recovery).
    pub fn is_problem(self) -> bool {
        matches!(self, Event::NeedsAttention | Event::Failed)
    }

    /// Whether the event goes to the customer (else to the operators).
    pub fn is_customer(self) -> bool {
        self == Event::Delivered
    }
}

/// How a run ended, as far as notifications care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnd {
    /// Delivered now, or found delivered when it was resumed (the notice may not have gone
    /// out before a crash; sending is deduplicated per run and event).
    Delivered,
    NeedsAttention,
    Failed,
    /// Interrupted by shutdown or stopped by an error outside the protocol: the run resumes,
    /// nothing is said yet.
    Unfinished,
}

/// What the daemon's configuration asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted<'a> {
    /// The operator events turned on (`[notify] events`).
    pub operator: &'a [Event],
    /// The subscription asked for delivery notices and has a contact e-mail.
    pub customer_notice: bool,
}

/// The events one run end produces. `last_alert` is the subscription's latest operator
/// event that was sent (or is being sent): a delivery after a problem alert is a recovery.
/// A recovery is only announced when the problem was.
pub fn events(end: RunEnd, last_alert: Option<Event>, wanted: Wanted<'_>) -> Vec<Event> {
    let mut out = Vec::new();
    match end {
        RunEnd::NeedsAttention => out.push(Event::NeedsAttention),
        RunEnd::Failed => out.push(Event::Failed),
        RunEnd::Delivered => {
            if last_alert.is_some_and(Event::is_problem) {
                out.push(Event::Recovered);
            }
        }
        RunEnd::Unfinished => {}
    }
    out.retain(|e| wanted.operator.contains(e));
    if end == RunEnd::Delivered && wanted.customer_notice {
        out.push(Event::Delivered);
    }
    out
}

/// The delivered file, as a notice names it: metadata only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryFacts {
    pub receipt_id: i64,
    /// The file name on the customer's server (no folder).
    pub file_name: String,
    /// Bytes delivered (the encrypted file).
    pub bytes: u64,
    pub rows: u64,
    /// SHA-256 of the delivered file (what `sha256sum` on the customer's side shows).
    pub sha256: String,
    /// SHA-256 of the plaintext (after decryption).
    pub plaintext_sha256: String,
    pub delivered_at: DateTime<Utc>,
    /// Further files of the run (code tables): name, bytes, rows, SHA-256.
    pub files: Vec<FileFacts>,
}

/// One further file of a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileFacts {
    pub file_name: String,
    pub bytes: u64,
    pub rows: u64,
    pub sha256: String,
}

/// Everything a notification may say about a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunFacts {
    pub subscription: String,
    pub customer: String,
    pub run: String,
    pub scheduled_at: DateTime<Utc>,
    /// The run's state (`needs_attention`, `failed`, `delivered`).
    pub state: String,
    /// Why it is not delivered (regdrop's text; cleaned by the builders).
    pub reason: Option<String>,
    pub attempts: u32,
    /// When the subscription fires next, if it is scheduled.
    pub next_fire: Option<DateTime<Utc>>,
    /// Present when the run delivered.
    pub delivery: Option<DeliveryFacts>,
}

/// An e-mail: subject and plain-text body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub subject: String,
    pub body: String,
}

fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A reason made safe to send: control characters and invisible characters escaped,
/// every run of exactly 11 digits that is a valid fødselsnummer or D-number masked, and cut
/// at [`REASON_MAX`] characters.
pub fn scrub_reason(reason: &str) -> String {
    let masked = mask_fnr(reason);
    let mut out = String::with_capacity(masked.len().min(REASON_MAX + 8));
    for (n, c) in masked.chars().enumerate() {
        if n >= REASON_MAX {
            out.push_str("...");
            break;
        }
        match c {
            '\n' | '\t' => out.push(' '),
            c if c.is_control()
                || matches!(c as u32, 0x200b..=0x200f | 0x202a..=0x202e | 0x2060..=0x2069 | 0xfeff) =>
            {
                out.push_str(&format!("\\u{{{:x}}}", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}

fn mask_fnr(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() {
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            let run = &s[start..i];
            if run.len() == 11 && crate::core::ids::is_valid_fnr(run) {
                out.push_str("[11 digits masked]");
            } else {
                out.push_str(run);
            }
        } else {
            let c = s[i..].chars().next().expect("in range");
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// The operator alert for `event` (one of [`Event::OPERATOR`]) as an e-mail.
pub fn operator_message(event: Event, f: &RunFacts) -> Message {
    let what = match event {
        Event::NeedsAttention => "needs attention",
        Event::Failed => "failed",
        Event::Recovered => "recovered",
        Event::Delivered => "delivered",
    };
    let subject = format!("[regdrop] {}: {what} (run {})", f.subscription, f.run);
    let mut body = format!(
        "Subscription: {}\nCustomer: {}\nRun: {}\nScheduled: {}\nState: {}\nAttempts: {}\n",
        f.subscription,
        f.customer,
        f.run,
        ts(f.scheduled_at),
        f.state,
        f.attempts
    );
    if let Some(r) = &f.reason {
        body += &format!("Reason: {}\n", scrub_reason(r));
    }
    if let Some(d) = &f.delivery {
        body += &format!(
            "Receipt: {}\nFile: {} ({} bytes, {} rows)\n",
            d.receipt_id, d.file_name, d.bytes, d.rows
        );
    }
    body += &format!(
        "Next fire: {}\n\n",
        f.next_fire
            .map(ts)
            .unwrap_or_else(|| "not scheduled".into())
    );
    body += match event {
        Event::NeedsAttention => {
            "The run stopped on an error that retrying cannot fix. Fix the cause, then `regdrop retry RUN`.\n"
        }
        Event::Failed => {
            "The run gave up after its retries. Find the cause with `regdrop status`, then `regdrop retry RUN`.\n"
        }
        Event::Recovered => "The subscription delivered again after the earlier alert.\n",
        Event::Delivered => "",
    };
    Message {
        subject,
        body: body.replace("RUN", &f.run),
    }
}

/// The webhook body (JSON) for `event`; fields as documented in the README.
pub fn webhook_body(event: Event, f: &RunFacts) -> serde_json::Value {
    let d = f.delivery.as_ref();
    serde_json::json!({
        "schema": WEBHOOK_SCHEMA,
        "event": event.as_str(),
        "subscription": f.subscription,
        "customer": f.customer,
        "run": f.run,
        "scheduled_at": ts(f.scheduled_at),
        "state": f.state,
        "reason": f.reason.as_deref().map(scrub_reason),
        "attempts": f.attempts,
        "next_fire": f.next_fire.map(ts),
        "receipt_id": d.map(|d| d.receipt_id),
        "file": d.map(|d| d.file_name.clone()),
        "bytes": d.map(|d| d.bytes),
        "rows": d.map(|d| d.rows),
        "sha256": d.map(|d| d.sha256.clone()),
    })
}

/// The customer's delivery notice, or `None` when the run delivered nothing.
pub fn customer_notice(f: &RunFacts) -> Option<Message> {
    let d = f.delivery.as_ref()?;
    let mut body = format!(
        "A delivery for {} (subscription {}) is on your server.\n\n\
         File: {}\nSize: {} bytes\nRows: {}\nSHA-256: {}\nReceipt: {}\nDelivered: {}\n",
        f.customer,
        f.subscription,
        d.file_name,
        d.bytes,
        d.rows,
        d.sha256,
        d.receipt_id,
        ts(d.delivered_at)
    );
    for x in &d.files {
        body += &format!(
            "\nAlso: {} ({} bytes, {} rows, SHA-256 {})",
            x.file_name, x.bytes, x.rows, x.sha256
        );
    }
    if !d.files.is_empty() {
        body.push('\n');
    }
    body += "\nCheck the file with `sha256sum -c NAME.sha256` beside it. Quote the receipt number \
             in any question about this delivery. This message holds no register data.\n";
    Some(Message {
        subject: format!("Delivery {}: {}", d.receipt_id, d.file_name),
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const ALL: &[Event] = &Event::OPERATOR;

    fn wanted(customer: bool) -> Wanted<'static> {
        Wanted {
            operator: ALL,
            customer_notice: customer,
        }
    }

    fn facts(delivered: bool) -> RunFacts {
        let at = Utc.with_ymd_and_hms(2026, 11, 25, 6, 0, 0).unwrap();
        RunFacts {
            subscription: "acme".into(),
            customer: "ACME AS".into(),
            run: "acme-20261125T060000Z".into(),
            scheduled_at: at,
            state: if delivered {
                "delivered"
            } else {
                "needs_attention"
            }
            .into(),
            reason: (!delivered).then(|| "host key mismatch: the server showed SHA256:abc".into()),
            attempts: 1,
            next_fire: Some(at + chrono::Duration::days(1)),
            delivery: delivered.then(|| DeliveryFacts {
                receipt_id: 42,
                file_name: "acme_20261125.dsv.age".into(),
                bytes: 1234,
                rows: 10,
                sha256: "ab".repeat(32),
                plaintext_sha256: "cd".repeat(32),
                delivered_at: at + chrono::Duration::minutes(1),
                files: vec![],
            }),
        }
    }

    #[test]
    fn each_run_end_gives_its_events() {
        use Event::*;
        assert_eq!(
            events(RunEnd::NeedsAttention, None, wanted(true)),
            [NeedsAttention]
        );
        assert_eq!(
            events(RunEnd::Failed, Some(NeedsAttention), wanted(false)),
            [Failed]
        );
        assert_eq!(events(RunEnd::Delivered, None, wanted(false)), []);
        assert_eq!(events(RunEnd::Delivered, None, wanted(true)), [Delivered]);
        assert_eq!(events(RunEnd::Unfinished, Some(Failed), wanted(true)), []);
    }

    #[test]
    fn recovery_is_the_first_delivery_after_a_problem_alert() {
        use Event::*;
        for problem in [NeedsAttention, Failed] {
            assert_eq!(
                events(RunEnd::Delivered, Some(problem), wanted(true)),
                [Recovered, Delivered]
            );
        }
        // After the recovery was announced, a delivery is just a delivery.
        assert_eq!(
            events(RunEnd::Delivered, Some(Recovered), wanted(false)),
            []
        );
    }

    #[test]
    fn events_turned_off_are_not_produced() {
        let only_failed = Wanted {
            operator: &[Event::Failed],
            customer_notice: false,
        };
        assert_eq!(events(RunEnd::NeedsAttention, None, only_failed), []);
        assert_eq!(
            events(RunEnd::Delivered, Some(Event::Failed), only_failed),
            []
        );
        assert_eq!(events(RunEnd::Failed, None, only_failed), [Event::Failed]);
    }

    #[test]
    fn event_names_round_trip() {
        for e in [
            Event::NeedsAttention,
            Event::Failed,
            Event::Recovered,
            Event::Delivered,
        ] {
            assert_eq!(Event::parse(e.as_str()), Some(e));
        }
        assert_eq!(Event::parse("needs-attention"), None);
    }

    #[test]
    fn the_webhook_body_has_the_documented_fields() {
        let v = webhook_body(Event::NeedsAttention, &facts(false));
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let mut expected = [
            "schema",
            "event",
            "subscription",
            "customer",
            "run",
            "scheduled_at",
            "state",
            "reason",
            "attempts",
            "next_fire",
            "receipt_id",
            "file",
            "bytes",
            "rows",
            "sha256",
        ];
        expected.sort_unstable();
        assert_eq!(keys, expected);
        assert_eq!(v["schema"], 1);
        assert_eq!(v["event"], "needs_attention");
        assert_eq!(v["run"], "acme-20261125T060000Z");
        assert_eq!(v["scheduled_at"], "2026-11-25T06:00:00Z");
        assert_eq!(v["next_fire"], "2026-11-26T06:00:00Z");
        assert_eq!(v["attempts"], 1);
        assert!(v["receipt_id"].is_null() && v["file"].is_null());

        let v = webhook_body(Event::Recovered, &facts(true));
        assert_eq!(v["event"], "recovered");
        assert_eq!(v["receipt_id"], 42);
        assert_eq!(v["file"], "acme_20261125.dsv.age");
        assert_eq!(v["bytes"], 1234);
        assert_eq!(v["sha256"], "ab".repeat(32));
        assert!(v["reason"].is_null());
    }

    #[test]
    fn the_operator_mail_names_the_run_and_the_command() {
        let m = operator_message(Event::NeedsAttention, &facts(false));
        assert_eq!(
            m.subject,
            "[regdrop] acme: needs attention (run acme-20261125T060000Z)"
        );
        assert!(m.body.contains("Reason: host key mismatch"), "{}", m.body);
        assert!(
            m.body.contains("`regdrop retry acme-20261125T060000Z`"),
            "{}",
            m.body
        );
        assert!(m.body.contains("Next fire: 2026-11-26T06:00:00Z"));
        let m = operator_message(Event::Recovered, &facts(true));
        assert!(m.body.contains("Receipt: 42"), "{}", m.body);
    }

    #[test]
    fn the_customer_notice_has_file_size_rows_sum_and_receipt() {
        let m = customer_notice(&facts(true)).unwrap();
        assert_eq!(m.subject, "Delivery 42: acme_20261125.dsv.age");
        for part in [
            "File: acme_20261125.dsv.age",
            "Size: 1234 bytes",
            "Rows: 10",
            &format!("SHA-256: {}", "ab".repeat(32)),
            "Receipt: 42",
        ] {
            assert!(m.body.contains(part), "{part} in {}", m.body);
        }
        assert!(customer_notice(&facts(false)).is_none());
    }

    #[test]
    fn reasons_are_cleaned_masked_and_bounded() {
        // A valid fødselsnummer is masked, other 11-digit runs stay.
        let fnr = (100..500)
            .find_map(|i| crate::core::ids::make_fnr(1970, 1, 1, i, false))
            .expect("an fnr");
        let r = scrub_reason(&format!(
            "row 7: owner {fnr} at 12345678901\u{1b}[31m\nnext"
        ));
        assert!(!r.contains(&fnr), "{r}");
        assert!(r.contains("[11 digits masked]"), "{r}");
        assert!(r.contains("12345678901"), "{r}");
        assert!(r.contains("\\u{1b}[31m next"), "{r}");
        let long = scrub_reason(&"x".repeat(5000));
        assert_eq!(long.chars().count(), REASON_MAX + 3);
        // The builders use it.
        let mut f = facts(false);
        f.reason = Some(format!("owner {fnr}"));
        assert!(!operator_message(Event::Failed, &f).body.contains(&fnr));
        assert!(!webhook_body(Event::Failed, &f).to_string().contains(&fnr));
    }
}
