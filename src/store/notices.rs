//! The `notifications` table: what was (or is being) said to whom about a run, so an alert
//! or notice goes out once per run, event and recipient, also across restarts
//! ([`Store::record_notifications`]), and what the daemon still owes after a restart
//! ([`Store::pending_notifications`]).

use super::db::{params, Backend, OptionalExtension, Row, ToValue};
use super::model::{parse_ts, RunId, SubscriptionId};
use super::{Result, Store, StoreError};
use crate::core::notice::Event;
use chrono::{DateTime, Utc};

/// Where a notification goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    Email,
    Webhook,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Webhook => "webhook",
        }
    }

    fn parse(s: &str) -> Result<Channel> {
        match s {
            "email" => Ok(Channel::Email),
            "webhook" => Ok(Channel::Webhook),
            _ => Err(StoreError::Corrupt(format!(
                "unknown notification channel {s:?}"
            ))),
        }
    }
}

/// Where a notification is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeState {
    /// Decided, not (yet) delivered to its recipient.
    Pending,
    Sent,
    /// Given up after its tries.
    Failed,
}

impl NoticeState {
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeState::Pending => "pending",
            NoticeState::Sent => "sent",
            NoticeState::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Result<NoticeState> {
        match s {
            "pending" => Ok(NoticeState::Pending),
            "sent" => Ok(NoticeState::Sent),
            "failed" => Ok(NoticeState::Failed),
            _ => Err(StoreError::Corrupt(format!(
                "unknown notification state {s:?}"
            ))),
        }
    }
}

/// A notification to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNotification {
    pub run_id: RunId,
    pub subscription: SubscriptionId,
    pub event: Event,
    pub channel: Channel,
    /// An operator address, a webhook's name, or `contact`.
    pub recipient: String,
    pub subject: String,
    /// The e-mail body, or the webhook's JSON.
    pub body: String,
}

/// A recorded notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub run_id: RunId,
    pub subscription: SubscriptionId,
    pub event: Event,
    pub channel: Channel,
    pub recipient: String,
    pub state: NoticeState,
    pub tries: u32,
    pub last_error: Option<String>,
    pub subject: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLS: &str = "run_id, subscription, event, channel, recipient, state, tries, last_error, \
    subject, body, created_at, updated_at";

fn read(row: &Row) -> Result<Notification> {
    let event: String = row.get(2)?;
    Ok(Notification {
        run_id: row.get(0)?,
        subscription: row.get(1)?,
        event: Event::parse(&event)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown notification event {event:?}")))?,
        channel: Channel::parse(&row.get::<_, String>(3)?)?,
        recipient: row.get(4)?,
        state: NoticeState::parse(&row.get::<_, String>(5)?)?,
        tries: u32::try_from(row.get::<_, i64>(6)?)
            .map_err(|_| StoreError::Corrupt("notification tries out of range".into()))?,
        last_error: row.get(7)?,
        subject: row.get(8)?,
        body: row.get(9)?,
        created_at: parse_ts(&row.get::<_, String>(10)?)?,
        updated_at: parse_ts(&row.get::<_, String>(11)?)?,
    })
}

impl Store {
    /// Insertion order among notifications of the same second: SQLite's implicit `rowid`,
    /// PostgreSQL's `seq` identity column.
    fn insertion_order(&self) -> &'static str {
        match self.conn.backend() {
            Backend::Sqlite => "rowid",
            Backend::Postgres => "seq",
        }
    }

    fn query_notifications(
        &self,
        where_: &str,
        args: &[&dyn ToValue],
    ) -> Result<Vec<Notification>> {
        let order = self.insertion_order();
        self.conn
            .query(
                &format!(
                    "SELECT {COLS} FROM notifications WHERE {where_} ORDER BY created_at, {order}"
                ),
                args,
            )?
            .iter()
            .map(read)
            .collect()
    }

    /// Records `new` in one transaction and returns the ones that were not there before
    /// (pending, to be sent). One that exists (same run, event, channel and recipient) is
    /// left as it is: it was sent, is being sent, or failed.
    pub fn record_notifications(&self, new: &[NewNotification]) -> Result<Vec<Notification>> {
        let tx = self.write_tx()?;
        let now = self.now();
        let mut fresh = Vec::new();
        for n in new {
            let added = tx.execute(
                "INSERT INTO notifications (run_id, subscription, event, channel, recipient, \
                 state, tries, subject, body, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, 'pending', 0, ?6, ?7, ?8, ?8) ON CONFLICT DO NOTHING",
                params![
                    n.run_id,
                    n.subscription,
                    n.event.as_str(),
                    n.channel.as_str(),
                    n.recipient,
                    n.subject,
                    n.body,
                    now
                ],
            )?;
            if added == 1 {
                fresh.push((n.run_id.clone(), n.event, n.channel, n.recipient.clone()));
            }
        }
        tx.commit()?;
        let mut out = Vec::new();
        for (run, event, channel, recipient) in fresh {
            out.extend(self.query_notifications(
                "run_id = ?1 AND event = ?2 AND channel = ?3 AND recipient = ?4",
                &[&run, &event.as_str(), &channel.as_str(), &recipient],
            )?);
        }
        Ok(out)
    }

    /// Whether anything was recorded for `run` and `event` (to any recipient).
    pub fn notified(&self, run: &RunId, event: Event) -> Result<bool> {
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM notifications WHERE run_id = ?1 AND event = ?2 LIMIT 1",
                params![run, event.as_str()],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// The subscription's latest operator event recorded (needs_attention, failed or
    /// recovered), to tell a recovery from a plain delivery.
    pub fn last_operator_event(&self, subscription: &SubscriptionId) -> Result<Option<Event>> {
        let order = self.insertion_order();
        let e: Option<String> = self
            .conn
            .query_row(
                &format!("SELECT event FROM notifications WHERE subscription = ?1 AND event != 'delivered' \
                 ORDER BY created_at DESC, {order} DESC LIMIT 1"),
                [subscription],
                |r| r.get(0),
            )
            .optional()?;
        e.map(|e| {
            Event::parse(&e)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown notification event {e:?}")))
        })
        .transpose()
    }

    /// Notifications decided but not delivered yet (to send after a restart).
    pub fn pending_notifications(&self) -> Result<Vec<Notification>> {
        self.query_notifications("state = 'pending'", &[])
    }

    /// Every notification about `run`.
    pub fn notifications_of(&self, run: &RunId) -> Result<Vec<Notification>> {
        self.query_notifications("run_id = ?1", &[run])
    }

    /// Records one try of a notification: its new state and, when it failed, why.
    pub fn notification_tried(
        &self,
        n: &Notification,
        state: NoticeState,
        error: Option<&str>,
    ) -> Result<()> {
        self.conn.execute(
            "UPDATE notifications SET state = ?5, tries = tries + 1, last_error = ?6, updated_at = ?7 \
             WHERE run_id = ?1 AND event = ?2 AND channel = ?3 AND recipient = ?4",
            params![
                n.run_id,
                n.event.as_str(),
                n.channel.as_str(),
                n.recipient,
                state.as_str(),
                error,
                self.now()
            ],
        )?;
        Ok(())
    }
}
