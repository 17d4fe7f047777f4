//! Notifications from the daemon: when a run ends, what to say ([`crate::core::notice`]),
//! recorded in the store once per run, event and recipient, then sent in a task of its own
//! with retries and backoff. Sending never holds up, fails or undoes a delivery: the run's
//! state and receipt are committed before anything is said, and a recipient that fails is
//! logged, counted (`regdrop_notifications_failed_total{channel}`) and tried again later.
//!
//! After a restart nothing is said twice: a notification is recorded before it is sent
//! (the store refuses a second one for the same run, event and recipient), ones left
//! pending by the last life are sent, and runs that went `needs_attention` or `failed` in
//! the last [`CATCH_UP`] without any alert recorded (the process died between the two)
//! get theirs.
//!
//! How a message travels is behind [`Outbox`]; the daemon's is [`Adapters`] (SMTP through
//! `[smtp]`, webhooks through the HTTP POST adapter).

use crate::core::config::{NotifySpec, SmtpSpec, Subscription, WebhookSpec};
use crate::core::errors::Chain;
use crate::core::identity::{RunId, SubscriptionId};
use crate::core::notice::{self, DeliveryFacts, Event, FileFacts, RunEnd, RunFacts, Wanted};
use crate::core::retry::{Classify, ErrorClass};
use crate::pipeline::delivery::Outcome;
use crate::store::{
    self, Channel, NewNotification, NoticeState, Notification, Receipt, RunFilter, RunState, Store,
};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

/// How far back the start looks for problem runs whose alert was never recorded.
pub const CATCH_UP: Duration = Duration::from_secs(24 * 3600);
/// How long the shutdown waits for notifications being sent (the rest stay pending and go
/// out on the next start).
pub const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);
/// The recipient of a customer notice as the store records it (the address itself is
/// looked up in the subscription when it is sent, and not copied into the store).
pub const CONTACT: &str = "contact";

/// Why one try of a notification failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    pub message: String,
    pub class: ErrorClass,
}

impl SendError {
    pub fn permanent(message: impl Into<String>) -> SendError {
        SendError {
            message: message.into(),
            class: ErrorClass::Permanent,
        }
    }

    /// From an adapter's error: its text (with causes) and class.
    pub fn from_error<E: std::error::Error + Classify + 'static>(e: &E) -> SendError {
        SendError {
            message: Chain(e).to_string(),
            class: e.class(),
        }
    }
}

impl Classify for SendError {
    fn class(&self) -> ErrorClass {
        self.class
    }
}

/// Sends one message. Implementations must not block the runtime.
pub trait Outbox: Send + Sync + 'static {
    /// An e-mail to `to`.
    fn email(
        &self,
        to: &str,
        subject: &str,
        body: &str,
    ) -> BoxFuture<'static, Result<(), SendError>>;
    /// A JSON POST to `hook`.
    fn webhook(&self, hook: &WebhookSpec, json: &str) -> BoxFuture<'static, Result<(), SendError>>;
}

/// The daemon's notifications.
pub struct Alerts {
    spec: Arc<NotifySpec>,
    store: Arc<Mutex<Store>>,
    outbox: Arc<dyn Outbox>,
    tracker: TaskTracker,
    cancel: CancellationToken,
}

impl Alerts {
    pub fn new(spec: NotifySpec, store: Arc<Mutex<Store>>, outbox: Arc<dyn Outbox>) -> Alerts {
        Alerts {
            spec: Arc::new(spec),
            store,
            outbox,
            tracker: TaskTracker::new(),
            cancel: CancellationToken::new(),
        }
    }

    /// A run ended: decide, record and send. Called by the supervisor with the run's result
    /// once the store has it; returns at once (sending runs in tasks).
    pub fn run_ended(
        &self,
        sub: &Subscription,
        run: &RunId,
        outcome: Option<&Outcome>,
        next_fire: Option<DateTime<Utc>>,
    ) {
        let end = match outcome {
            Some(Outcome::Delivered(_)) | Some(Outcome::AlreadyDelivered(_)) => RunEnd::Delivered,
            Some(Outcome::NeedsAttention { .. }) => RunEnd::NeedsAttention,
            Some(Outcome::Failed { .. }) => RunEnd::Failed,
            Some(Outcome::Interrupted { .. } | Outcome::Elsewhere { .. }) | None => {
                RunEnd::Unfinished
            }
        };
        if end == RunEnd::Unfinished {
            return;
        }
        let receipt = match outcome {
            Some(Outcome::Delivered(r)) | Some(Outcome::AlreadyDelivered(r)) => Some(r),
            _ => None,
        };
        if let Err(e) = self.decide(sub, run, end, receipt, next_fire) {
            error!(subscription = %sub.id, run = %run, error = %Chain(&e), "Cannot record the run's notifications; none sent.");
        }
    }

    fn decide(
        &self,
        sub: &Subscription,
        run: &RunId,
        end: RunEnd,
        receipt: Option<&Receipt>,
        next_fire: Option<DateTime<Utc>>,
    ) -> store::Result<()> {
        let customer_notice = sub.customer_notice && sub.contact_email.is_some();
        let operator: &[Event] = if self.spec.has_operator_channel() {
            &self.spec.events
        } else {
            &[]
        };
        if operator.is_empty() && !customer_notice {
            return Ok(());
        }
        let (last, facts) = {
            let s = store::lock(&self.store);
            let last = s.last_operator_event(&sub.id)?;
            let Some(r) = s.get_run(run)? else {
                return Ok(());
            };
            let attempts = match receipt {
                Some(rc) => rc.attempts,
                None => s.attempts(run)?.len() as u32,
            };
            let facts = RunFacts {
                subscription: sub.id.to_string(),
                customer: sub.customer.clone(),
                run: run.to_string(),
                scheduled_at: r.scheduled_at,
                state: r.state.to_string(),
                reason: r.state_reason.clone().filter(|_| receipt.is_none()),
                attempts,
                next_fire,
                delivery: receipt.map(delivery_facts),
            };
            (last, facts)
        };
        let events = notice::events(
            end,
            last,
            Wanted {
                operator,
                customer_notice,
            },
        );
        let mut new = Vec::new();
        for event in events {
            if event.is_customer() {
                if let Some(m) = notice::customer_notice(&facts) {
                    new.push(self.notification(
                        sub,
                        run,
                        event,
                        Channel::Email,
                        CONTACT,
                        &m.subject,
                        m.body,
                    ));
                }
                continue;
            }
            let m = notice::operator_message(event, &facts);
            for to in &self.spec.email {
                new.push(self.notification(
                    sub,
                    run,
                    event,
                    Channel::Email,
                    to,
                    &m.subject,
                    m.body.clone(),
                ));
            }
            let json = notice::webhook_body(event, &facts).to_string();
            for hook in &self.spec.webhooks {
                new.push(self.notification(
                    sub,
                    run,
                    event,
                    Channel::Webhook,
                    &hook.name,
                    &m.subject,
                    json.clone(),
                ));
            }
        }
        if new.is_empty() {
            return Ok(());
        }
        let fresh = store::lock(&self.store).record_notifications(&new)?;
        for n in fresh {
            info!(subscription = %sub.id, run = %run, event = n.event.as_str(), channel = n.channel.as_str(),
                  recipient = %shown_recipient(&n), "Notification queued.");
            self.spawn(n, sub.contact_email.clone());
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn notification(
        &self,
        sub: &Subscription,
        run: &RunId,
        event: Event,
        channel: Channel,
        recipient: &str,
        subject: &str,
        body: String,
    ) -> NewNotification {
        NewNotification {
            run_id: run.clone(),
            subscription: sub.id.clone(),
            event,
            channel,
            recipient: recipient.to_string(),
            subject: subject.to_string(),
            body,
        }
    }

    /// At start: sends what the last life left pending, and the alerts of problem runs of
    /// the last [`CATCH_UP`] that have none recorded. `subs` are the loaded subscriptions.
    pub fn start(
        &self,
        subs: &BTreeMap<SubscriptionId, Arc<Subscription>>,
        next_fire: impl Fn(&SubscriptionId) -> Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) {
        let pending = store::lock(&self.store).pending_notifications();
        match pending {
            Ok(list) => {
                for n in list {
                    let contact = subs
                        .get(&n.subscription)
                        .and_then(|s| s.contact_email.clone());
                    info!(run = %n.run_id, event = n.event.as_str(), channel = n.channel.as_str(),
                          recipient = %shown_recipient(&n), "Sending a notification left pending before the restart.");
                    self.spawn(n, contact);
                }
            }
            Err(e) => error!(error = %Chain(&e), "Cannot list pending notifications."),
        }
        if !self.spec.has_operator_channel() {
            return;
        }
        let since = chrono::Duration::from_std(CATCH_UP)
            .ok()
            .and_then(|d| now.checked_sub_signed(d))
            .unwrap_or(now);
        let runs = store::lock(&self.store).list_runs(&RunFilter {
            states: vec![RunState::NeedsAttention, RunState::Failed],
            ..Default::default()
        });
        let runs = match runs {
            Ok(r) => r,
            Err(e) => {
                error!(error = %Chain(&e), "Cannot list problem runs for their alerts.");
                return;
            }
        };
        for r in runs.into_iter().filter(|r| r.updated_at >= since) {
            let Some(sub) = subs.get(&r.subscription) else {
                continue;
            };
            let event = if r.state == RunState::Failed {
                Event::Failed
            } else {
                Event::NeedsAttention
            };
            let done = store::lock(&self.store).notified(&r.id, event);
            if matches!(done, Ok(false)) {
                let end = if event == Event::Failed {
                    RunEnd::Failed
                } else {
                    RunEnd::NeedsAttention
                };
                if let Err(e) = self.decide(sub, &r.id, end, None, next_fire(&r.subscription)) {
                    error!(run = %r.id, error = %Chain(&e), "Cannot record the run's notifications; none sent.");
                }
            }
        }
    }

    fn spawn(&self, n: Notification, contact: Option<String>) {
        let spec = self.spec.clone();
        let store = self.store.clone();
        let outbox = self.outbox.clone();
        let cancel = self.cancel.clone();
        self.tracker.spawn(async move {
            deliver(n, contact, &spec, &store, outbox.as_ref(), &cancel).await;
        });
    }

    /// Lets notifications being sent finish for up to [`SHUTDOWN_WAIT`]; the ones waiting
    /// for a retry stay pending and go out on the next start.
    pub async fn shutdown(&self) {
        self.cancel.cancel();
        self.tracker.close();
        if tokio::time::timeout(SHUTDOWN_WAIT, self.tracker.wait())
            .await
            .is_err()
        {
            warn!("Notifications still being sent at shutdown stay pending; they go out on the next start.");
        }
    }
}

fn delivery_facts(r: &Receipt) -> DeliveryFacts {
    DeliveryFacts {
        receipt_id: r.id,
        file_name: r.remote_path.rsplit('/').next().unwrap_or("").to_string(),
        bytes: r.bytes,
        rows: r.rows,
        sha256: r.ciphertext_sha256.clone(),
        plaintext_sha256: r.plaintext_sha256.clone(),
        delivered_at: r.delivered_at,
        files: r
            .files
            .iter()
            .map(|f| FileFacts {
                file_name: f.name.clone(),
                bytes: f.bytes,
                rows: f.rows,
                sha256: f.sha256.clone(),
            })
            .collect(),
    }
}

/// The recipient for logs: the customer's address is never logged.
fn shown_recipient(n: &Notification) -> &str {
    &n.recipient
}

/// Tries `n` until it is sent, fails permanently, runs out of tries, or the daemon stops.
async fn deliver(
    n: Notification,
    contact: Option<String>,
    spec: &NotifySpec,
    store: &Mutex<Store>,
    outbox: &dyn Outbox,
    cancel: &CancellationToken,
) {
    let channel = n.channel.as_str();
    let mut tries = n.tries;
    loop {
        let result = match n.channel {
            Channel::Email => {
                let to = if n.recipient == CONTACT {
                    contact.clone()
                } else {
                    Some(n.recipient.clone())
                };
                match to {
                    Some(to) => outbox.email(&to, &n.subject, &n.body).await,
                    None => Err(SendError::permanent(
                        "the subscription has no contact e-mail any more",
                    )),
                }
            }
            Channel::Webhook => match spec.webhooks.iter().find(|w| w.name == n.recipient) {
                Some(hook) => outbox.webhook(hook, &n.body).await,
                None => Err(SendError::permanent(format!(
                    "webhook {} is not configured any more",
                    n.recipient
                ))),
            },
        };
        tries += 1;
        let (state, err) = match &result {
            Ok(()) => (NoticeState::Sent, None),
            Err(e) if e.is_retryable() && tries < spec.attempts => {
                (NoticeState::Pending, Some(e.message.as_str()))
            }
            Err(e) => (NoticeState::Failed, Some(e.message.as_str())),
        };
        if let Err(e) = store::lock(store).notification_tried(&n, state, err) {
            error!(run = %n.run_id, error = %Chain(&e), "Cannot record a notification's try.");
        }
        match result {
            Ok(()) => {
                metrics::counter!("regdrop_notifications_sent_total", "channel" => channel)
                    .increment(1);
                info!(run = %n.run_id, event = n.event.as_str(), channel, recipient = %shown_recipient(&n), tries, "Notification sent.");
                return;
            }
            Err(e) => {
                metrics::counter!("regdrop_notifications_failed_total", "channel" => channel)
                    .increment(1);
                if state == NoticeState::Failed {
                    error!(run = %n.run_id, event = n.event.as_str(), channel, recipient = %shown_recipient(&n), tries,
                           error = %e, "Notification not sent; giving up on it (the delivery is not affected).");
                    return;
                }
                let wait = spec.backoff(tries);
                warn!(run = %n.run_id, event = n.event.as_str(), channel, recipient = %shown_recipient(&n), tries,
                      error = %e, wait_secs = wait.as_secs(), "Notification not sent; trying again.");
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = cancel.cancelled() => return,
                }
            }
        }
    }
}

/// The daemon's [`Outbox`]: e-mail through `[smtp]` ([`crate::mail`]), webhooks through
/// [`crate::http_post`].
pub struct Adapters {
    smtp: Option<Arc<SmtpSpec>>,
}

impl Adapters {
    pub fn new(daemon: &crate::core::config::DaemonConfig) -> Adapters {
        Adapters {
            smtp: daemon.smtp.clone().map(Arc::new),
        }
    }
}

impl Outbox for Adapters {
    fn email(
        &self,
        to: &str,
        subject: &str,
        body: &str,
    ) -> BoxFuture<'static, Result<(), SendError>> {
        let Some(server) = self.smtp.clone() else {
            return Box::pin(async {
                Err(SendError::permanent(
                    "no [smtp] table in regdrop.toml; add one to send e-mail",
                ))
            });
        };
        let mail = crate::mail::Mail {
            from: server.from.clone(),
            to: vec![to.to_string()],
            subject: subject.to_string(),
            body: body.to_string(),
            attachments: vec![],
            message_id: crate::mail::new_message_id("regdrop-notice", &server.from),
        };
        Box::pin(async move {
            crate::mail::send(&server, &mail, || Ok(()))
                .await
                .map(|_| ())
                .map_err(|e| SendError::from_error(&e))
        })
    }

    fn webhook(&self, hook: &WebhookSpec, json: &str) -> BoxFuture<'static, Result<(), SendError>> {
        let body = match serde_json::from_str(json) {
            Ok(v) => v,
            Err(e) => {
                let e = SendError::permanent(format!("the recorded webhook body is not JSON: {e}"));
                return Box::pin(async move { Err(e) });
            }
        };
        let mut post =
            crate::http_post::Post::new(hook.url.clone(), crate::http_post::Body::Json(body));
        post.timeout = hook.timeout;
        post.secret_header =
            hook.auth
                .as_ref()
                .map(|(name, value)| crate::http_post::SecretHeader {
                    name: name.clone(),
                    value: value.clone(),
                });
        Box::pin(async move {
            crate::http_post::post(&post)
                .await
                .map(|_| ())
                .map_err(|e| SendError::from_error(&e))
        })
    }
}

#[cfg(test)]
mod tests {
    //! The sending logic with an in-process outbox that fails on purpose (fault injection);
    //! the real SMTP and HTTP servers are in `tests/it/notifications.rs`.
    use super::*;
    use crate::core::config::raw::RawSubscription;
    use crate::core::config::validate::{validate_subscription, Inherited};
    use crate::core::retry::RetryPolicy;
    use crate::store::NewRun;

    /// Records every call; the first `fail` calls of each channel fail with `class`.
    struct Recording {
        calls: Mutex<Vec<(String, String)>>,
        fail: usize,
        class: ErrorClass,
    }

    impl Recording {
        fn answer(&self, channel: &str, to: &str) -> Result<(), SendError> {
            let mut c = self.calls.lock().unwrap();
            c.push((channel.to_string(), to.to_string()));
            let n = c.iter().filter(|(ch, _)| ch == channel).count();
            if n <= self.fail {
                Err(SendError {
                    message: format!("try {n} refused"),
                    class: self.class,
                })
            } else {
                Ok(())
            }
        }
    }

    impl Outbox for Recording {
        fn email(&self, to: &str, _s: &str, _b: &str) -> BoxFuture<'static, Result<(), SendError>> {
            let r = self.answer("email", to);
            Box::pin(async move { r })
        }
        fn webhook(
            &self,
            hook: &WebhookSpec,
            _json: &str,
        ) -> BoxFuture<'static, Result<(), SendError>> {
            let r = self.answer("webhook", &hook.name);
            Box::pin(async move { r })
        }
    }

    fn sub() -> Subscription {
        let raw: RawSubscription = toml::from_str(
            "id = \"acme\"\ncustomer = \"ACME AS\"\ncontact = { email = \"it@acme.no\" }\n\
             [schedule]\ncron = \"0 6 * * *\"\n\
             [target]\nhost = \"127.0.0.1\"\nusername = \"u\"\nremote_dir = \"/in\"\n\
             host_keys = [\"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ\"]\n\
             [target.auth]\nkey_file = \"k\"\n[extract]\nreport = \"technical\"\n\
             [encryption]\nrecipients = [\"age13k7zew9msc69sqmx4wt7jlxxdz9y25wdpsce3yqrwn5cm2880y6szzkp7r\"]\n\
             [delivery]\nnotice = true\n",
        )
        .unwrap();
        let inherited = Inherited {
            timezone: "UTC".into(),
            retry: RetryPolicy::default(),
            secrets_dir: "/etc/regdrop".into(),
            offers: crate::core::config::validate::Offers::ASSUMED,
        };
        validate_subscription(&raw, &inherited, std::path::Path::new("acme.toml")).unwrap()
    }

    fn spec(attempts: u32) -> NotifySpec {
        NotifySpec {
            email: vec!["drift@x.no".into()],
            webhooks: vec![WebhookSpec {
                name: "ops".into(),
                url: "http://127.0.0.1:9/h".into(),
                auth: None,
                timeout: Duration::from_secs(1),
            }],
            attempts,
            retry_base: Duration::from_secs(1),
            ..NotifySpec::default()
        }
    }

    /// A store with one run of `acme` in needs_attention.
    fn store_with_problem_run() -> (Arc<Mutex<Store>>, RunId) {
        let s = Store::open_in_memory().unwrap();
        let run = s
            .create_run(&NewRun {
                subscription: "acme".into(),
                scheduled_at: "2026-11-25T06:00:00Z".parse().unwrap(),
            })
            .unwrap()
            .into_run();
        s.set_state(&run.id, RunState::NeedsAttention, Some("host key mismatch"))
            .unwrap();
        (Arc::new(Mutex::new(s)), run.id)
    }

    fn outcome(run: &RunId) -> Outcome {
        Outcome::NeedsAttention {
            run: run.clone(),
            reason: "host key mismatch".into(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retryable_refusals_are_tried_again_up_to_the_attempts_then_given_up() {
        let (store, run) = store_with_problem_run();
        let outbox = Arc::new(Recording {
            calls: Mutex::new(vec![]),
            fail: 100,
            class: ErrorClass::Retryable,
        });
        let alerts = Alerts::new(spec(3), store.clone(), outbox.clone());
        alerts.run_ended(&sub(), &run, Some(&outcome(&run)), None);
        tokio::time::sleep(Duration::from_secs(60)).await;
        // 3 tries per recipient (1 s, then 2 s apart), then failed.
        assert_eq!(outbox.calls.lock().unwrap().len(), 6);
        let n = store::lock(&store).notifications_of(&run).unwrap();
        assert_eq!(n.len(), 2);
        for n in n {
            assert_eq!((n.state, n.tries), (NoticeState::Failed, 3), "{n:?}");
            assert_eq!(n.last_error.as_deref(), Some("try 3 refused"));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_permanent_refusal_is_not_retried_and_a_later_success_is_recorded() {
        let (store, run) = store_with_problem_run();
        let outbox = Arc::new(Recording {
            calls: Mutex::new(vec![]),
            fail: 1,
            class: ErrorClass::Permanent,
        });
        let alerts = Alerts::new(spec(5), store.clone(), outbox.clone());
        alerts.run_ended(&sub(), &run, Some(&outcome(&run)), None);
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(outbox.calls.lock().unwrap().len(), 2);
        let n = store::lock(&store).notifications_of(&run).unwrap();
        assert!(
            n.iter()
                .all(|n| n.state == NoticeState::Failed && n.tries == 1),
            "{n:?}"
        );

        let outbox = Arc::new(Recording {
            calls: Mutex::new(vec![]),
            fail: 2,
            class: ErrorClass::Retryable,
        });
        let (store, run) = store_with_problem_run();
        let alerts = Alerts::new(spec(5), store.clone(), outbox.clone());
        alerts.run_ended(&sub(), &run, Some(&outcome(&run)), None);
        tokio::time::sleep(Duration::from_secs(60)).await;
        let n = store::lock(&store).notifications_of(&run).unwrap();
        // email: fails twice then sent (3 tries); webhook the same.
        assert!(
            n.iter()
                .all(|n| n.state == NoticeState::Sent && n.tries == 3),
            "{n:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_same_run_end_twice_and_a_restart_send_nothing_again() {
        let (store, run) = store_with_problem_run();
        let outbox = Arc::new(Recording {
            calls: Mutex::new(vec![]),
            fail: 0,
            class: ErrorClass::Retryable,
        });
        let alerts = Alerts::new(spec(5), store.clone(), outbox.clone());
        alerts.run_ended(&sub(), &run, Some(&outcome(&run)), None);
        alerts.run_ended(&sub(), &run, Some(&outcome(&run)), None);
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(outbox.calls.lock().unwrap().len(), 2);
        // A new life: the catch-up finds the problem run already alerted.
        let again = Alerts::new(spec(5), store.clone(), outbox.clone());
        let subs = BTreeMap::from([(SubscriptionId::from("acme"), Arc::new(sub()))]);
        again.start(&subs, |_| None, Utc::now());
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(outbox.calls.lock().unwrap().len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_problem_run_without_an_alert_gets_it_at_start() {
        let (store, run) = store_with_problem_run();
        let outbox = Arc::new(Recording {
            calls: Mutex::new(vec![]),
            fail: 0,
            class: ErrorClass::Retryable,
        });
        let subs = BTreeMap::from([(SubscriptionId::from("acme"), Arc::new(sub()))]);
        let alerts = Alerts::new(spec(5), store.clone(), outbox.clone());
        alerts.start(&subs, |_| None, Utc::now());
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(outbox.calls.lock().unwrap().len(), 2);
        let n = store::lock(&store).notifications_of(&run).unwrap();
        assert!(n
            .iter()
            .all(|n| n.event == Event::NeedsAttention && n.state == NoticeState::Sent));
    }

    #[tokio::test(start_paused = true)]
    async fn a_notification_left_pending_is_sent_at_start_with_its_recorded_body() {
        let (store, run) = store_with_problem_run();
        store::lock(&store)
            .record_notifications(&[NewNotification {
                run_id: run.clone(),
                subscription: "acme".into(),
                event: Event::NeedsAttention,
                channel: Channel::Email,
                recipient: "drift@x.no".into(),
                subject: "as decided".into(),
                body: "before the restart".into(),
            }])
            .unwrap();
        let outbox = Arc::new(Recording {
            calls: Mutex::new(vec![]),
            fail: 0,
            class: ErrorClass::Retryable,
        });
        let subs = BTreeMap::from([(SubscriptionId::from("acme"), Arc::new(sub()))]);
        let alerts = Alerts::new(spec(5), store.clone(), outbox.clone());
        alerts.start(&subs, |_| None, Utc::now());
        tokio::time::sleep(Duration::from_secs(5)).await;
        // Only the pending one: the run has an alert recorded, so the catch-up adds nothing.
        assert_eq!(
            *outbox.calls.lock().unwrap(),
            [("email".to_string(), "drift@x.no".to_string())]
        );
        let n = store::lock(&store).notifications_of(&run).unwrap();
        assert_eq!((n.len(), n[0].state), (1, NoticeState::Sent));
    }
}
