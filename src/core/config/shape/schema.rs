//! The keys each table of the configuration files may hold, and what type each value has:
//! the map the shape check walks (mirrors `raw`; a unit test keeps the two in step).

use super::super::raw::{
    RawAuth, RawContact, RawDaemon, RawDaemonRuntime, RawDefaults, RawDelivery, RawEncryption,
    RawExtract, RawFilter, RawNotify, RawRange, RawRetention, RawSchedule, RawSubscription,
    RawTarget, RawWebhook,
};
use super::super::raw_mail::{RawEmail, RawSms, RawSmtp, RawSmtpAuth};
use super::serde_fields;
use crate::core::retry::RetryOverrides;

/// What a value must be.
#[derive(Debug, Clone, Copy)]
pub enum Ty {
    /// A string.
    Text,
    Bool,
    /// A float or an integer.
    Number,
    /// An integer in `min..=max`.
    Int {
        min: i128,
        max: i128,
    },
    /// One of these strings (serde enums).
    OneOf(&'static [&'static str]),
    /// An array of strings.
    TextList,
    /// A TOML date (`2026-01-31`, no quotes).
    Date,
    Table(&'static Table),
    /// An array of tables (`[[notify.webhook]]`).
    TableList(&'static Table),
    /// A table of strings with any keys (`[sms] fields`).
    TextMap,
    /// A string, or a table (the extract's period).
    TextOrTable(&'static Table),
    /// Anything (the validator refuses it with its own words).
    Any,
}

/// One key of a table.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    pub name: &'static str,
    pub ty: Ty,
    pub required: bool,
}

/// A table: its keys, and the field names serde knows for it (a key serde knows that this
/// map lacks is passed on unchecked, so a field added to `raw` is never refused here).
#[derive(Debug)]
pub struct Table {
    /// How messages name it: `[target]`, `a subscription file`.
    pub name: &'static str,
    pub keys: &'static [Key],
    pub serde_fields: fn() -> &'static [&'static str],
}

const fn req(name: &'static str, ty: Ty) -> Key {
    Key {
        name,
        ty,
        required: true,
    }
}

const fn opt(name: &'static str, ty: Ty) -> Key {
    Key {
        name,
        ty,
        required: false,
    }
}

const PORT: Ty = Ty::Int {
    min: 1,
    max: u16::MAX as i128,
};
const U32: Ty = Ty::Int {
    min: 0,
    max: u32::MAX as i128,
};
/// u64 and usize (64-bit targets).
const U64: Ty = Ty::Int {
    min: 0,
    max: u64::MAX as i128,
};
const I64: Ty = Ty::Int {
    min: i64::MIN as i128,
    max: i64::MAX as i128,
};

pub static RETRY: Table = Table {
    name: "[retry]",
    keys: &[
        opt("base_secs", U64),
        opt("factor", Ty::Number),
        opt("cap_secs", U64),
        opt("max_attempts", U32),
        opt("deadline_secs", U64),
    ],
    serde_fields: serde_fields::<RetryOverrides>,
};

static CONTACT: Table = Table {
    name: "[contact]",
    keys: &[opt("email", Ty::Text), opt("mobile", Ty::Text)],
    serde_fields: serde_fields::<RawContact>,
};

static SCHEDULE: Table = Table {
    name: "[schedule]",
    keys: &[
        req("cron", Ty::Text),
        opt("timezone", Ty::Text),
        opt("catch_up", Ty::OneOf(&["once", "skip"])),
        opt("jitter_secs", U64),
    ],
    serde_fields: serde_fields::<RawSchedule>,
};

static AUTH: Table = Table {
    name: "[target.auth]",
    keys: &[
        opt("key_file", Ty::Text),
        opt("passphrase_file", Ty::Text),
        opt("password_file", Ty::Text),
        opt("password_credential", Ty::Text),
        opt("key_credential", Ty::Text),
        opt("password", Ty::Any),
        opt("passphrase", Ty::Any),
    ],
    serde_fields: serde_fields::<RawAuth>,
};

static TARGET: Table = Table {
    name: "[target]",
    keys: &[
        req("host", Ty::Text),
        opt("port", PORT),
        req("username", Ty::Text),
        opt("host_keys", Ty::TextList),
        opt("known_hosts", Ty::Text),
        req("auth", Ty::Table(&AUTH)),
        req("remote_dir", Ty::Text),
        opt("create_dirs", Ty::Bool),
        opt("connect_timeout_secs", U64),
        opt("io_timeout_secs", U64),
        opt("channels", U64),
        opt("max_write", U64),
        opt("in_flight", U64),
        opt("commit", Ty::Text),
        opt("fsync", Ty::Bool),
        opt("posix_rename", Ty::Bool),
    ],
    serde_fields: serde_fields::<RawTarget>,
};

static PERIOD: Table = Table {
    name: "[extract.period]",
    keys: &[req("from", Ty::Date), req("to", Ty::Date)],
    // An untagged enum: serde names no fields.
    serde_fields: no_fields,
};

static RANGE: Table = Table {
    name: "a range",
    keys: &[opt("min", I64), opt("max", I64)],
    serde_fields: serde_fields::<RawRange>,
};

static FILTER: Table = Table {
    name: "[extract.filter]",
    keys: &[
        opt("first_registration_year", Ty::Table(&RANGE)),
        opt("make", Ty::TextList),
        opt("model", Ty::TextList),
        opt("vehicle_group", Ty::TextList),
        opt("fuel", Ty::TextList),
        opt("hybrid_category", Ty::TextList),
        opt("seats", Ty::Table(&RANGE)),
        opt("status", Ty::TextList),
        opt("org_number", Ty::TextList),
        opt("municipality", Ty::TextList),
        opt("county", Ty::TextList),
    ],
    serde_fields: serde_fields::<RawFilter>,
};

static EXTRACT: Table = Table {
    name: "[extract]",
    keys: &[
        req("report", Ty::Text),
        opt("code_tables", Ty::TextList),
        opt("columns", Ty::TextList),
        opt("format", Ty::Text),
        opt("encoding", Ty::OneOf(&["utf-8", "iso-8859-1"])),
        opt("line_ending", Ty::OneOf(&["lf", "crlf"])),
        opt("period", Ty::TextOrTable(&PERIOD)),
        opt("period_field", Ty::Text),
        opt("filter", Ty::Table(&FILTER)),
    ],
    serde_fields: serde_fields::<RawExtract>,
};

static ENCRYPTION: Table = Table {
    name: "[encryption]",
    keys: &[opt("recipients", Ty::TextList), opt("mode", Ty::Text)],
    serde_fields: serde_fields::<RawEncryption>,
};

static DELIVERY: Table = Table {
    name: "[delivery]",
    keys: &[
        opt("file_name", Ty::Text),
        opt("if_exists", Ty::Text),
        opt("verify", Ty::Text),
        opt("manifest", Ty::Bool),
        opt("done_marker", Ty::Bool),
        opt("notice", Ty::Bool),
    ],
    serde_fields: serde_fields::<RawDelivery>,
};

static EMAIL: Table = Table {
    name: "[email]",
    keys: &[
        req("to", Ty::TextList),
        opt("subject", Ty::Text),
        opt("max_bytes", U64),
    ],
    serde_fields: serde_fields::<RawEmail>,
};

/// A subscription file.
pub static SUBSCRIPTION: Table = Table {
    name: "a subscription file",
    keys: &[
        req("id", Ty::Text),
        req("customer", Ty::Text),
        opt("customer_org_number", Ty::Text),
        opt("case_number", Ty::Text),
        opt("invoice_reference", Ty::Text),
        opt("legal_basis", Ty::Text),
        opt("contact", Ty::Table(&CONTACT)),
        opt("enabled", Ty::Bool),
        req("schedule", Ty::Table(&SCHEDULE)),
        // Exactly one of the two (the validator says so).
        opt("target", Ty::Table(&TARGET)),
        opt("email", Ty::Table(&EMAIL)),
        req("extract", Ty::Table(&EXTRACT)),
        req("encryption", Ty::Table(&ENCRYPTION)),
        opt("delivery", Ty::Table(&DELIVERY)),
        opt("retry", Ty::Table(&RETRY)),
    ],
    serde_fields: serde_fields::<RawSubscription>,
};

static DEFAULTS: Table = Table {
    name: "[defaults]",
    keys: &[opt("timezone", Ty::Text)],
    serde_fields: serde_fields::<RawDefaults>,
};

static DAEMON_RUNTIME: Table = Table {
    name: "[daemon]",
    keys: &[
        opt("max_concurrent", U64),
        opt("max_per_host", U64),
        opt("metrics_listen", Ty::Text),
        opt("shutdown_grace_secs", U64),
        opt("user", Ty::Text),
        opt("node", Ty::Text),
        opt("lease_secs", U64),
    ],
    serde_fields: serde_fields::<RawDaemonRuntime>,
};

static RETENTION: Table = Table {
    name: "[retention]",
    keys: &[opt("spool_grace_hours", U64), opt("receipts_days", U64)],
    serde_fields: serde_fields::<RawRetention>,
};

static SMTP_AUTH: Table = Table {
    name: "[smtp.auth]",
    keys: &[
        req("username", Ty::Text),
        opt("password_file", Ty::Text),
        opt("password_credential", Ty::Text),
        opt("password", Ty::Any),
    ],
    serde_fields: serde_fields::<RawSmtpAuth>,
};

static SMTP: Table = Table {
    name: "[smtp]",
    keys: &[
        req("host", Ty::Text),
        opt("port", PORT),
        opt("tls", Ty::Text),
        req("from", Ty::Text),
        opt("ca_file", Ty::Text),
        opt("timeout_secs", U64),
        opt("auth", Ty::Table(&SMTP_AUTH)),
    ],
    serde_fields: serde_fields::<RawSmtp>,
};

static SMS: Table = Table {
    name: "[sms]",
    keys: &[
        req("url", Ty::Text),
        opt("format", Ty::Text),
        req("fields", Ty::TextMap),
        opt("auth_header", Ty::Text),
        opt("auth_file", Ty::Text),
        opt("auth_credential", Ty::Text),
        opt("ca_file", Ty::Text),
        opt("timeout_secs", U64),
    ],
    serde_fields: serde_fields::<RawSms>,
};

static WEBHOOK: Table = Table {
    name: "[[notify.webhook]]",
    keys: &[
        opt("name", Ty::Text),
        req("url", Ty::Text),
        opt("auth_header", Ty::Text),
        opt("auth_file", Ty::Text),
        opt("auth_credential", Ty::Text),
        opt("timeout_secs", U64),
    ],
    serde_fields: serde_fields::<RawWebhook>,
};

static NOTIFY: Table = Table {
    name: "[notify]",
    keys: &[
        opt("email", Ty::TextList),
        opt("webhook", Ty::TableList(&WEBHOOK)),
        opt("events", Ty::TextList),
        opt("attempts", U32),
        opt("retry_base_secs", U64),
    ],
    serde_fields: serde_fields::<RawNotify>,
};

/// `regdrop.toml`.
pub static DAEMON: Table = Table {
    name: "regdrop.toml",
    keys: &[
        opt("register", Ty::Text),
        opt("spool_dir", Ty::Text),
        opt("state_db", Ty::Text),
        opt("subscriptions_dir", Ty::Text),
        opt("secrets_dir", Ty::Text),
        opt("defaults", Ty::Table(&DEFAULTS)),
        opt("retry", Ty::Table(&RETRY)),
        opt("daemon", Ty::Table(&DAEMON_RUNTIME)),
        opt("retention", Ty::Table(&RETENTION)),
        opt("smtp", Ty::Table(&SMTP)),
        opt("sms", Ty::Table(&SMS)),
        opt("notify", Ty::Table(&NOTIFY)),
    ],
    serde_fields: serde_fields::<RawDaemon>,
};

fn no_fields() -> &'static [&'static str] {
    &[]
}

/// Every table reachable from `root` (for "`port` belongs in [target]").
pub fn tables(root: &'static Table) -> Vec<&'static Table> {
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        for k in out[i].keys {
            if let Ty::Table(t) | Ty::TextOrTable(t) | Ty::TableList(t) = k.ty {
                if !out.iter().any(|o| std::ptr::eq(*o, t)) {
                    out.push(t);
                }
            }
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The map and the serde mirror name the same keys, table by table: a key added to
    /// `raw` without its type here would only be checked by serde (first error only).
    #[test]
    fn every_table_names_exactly_the_keys_serde_knows() {
        for root in [&SUBSCRIPTION, &DAEMON] {
            for t in tables(root) {
                if std::ptr::eq(t, &PERIOD) {
                    continue;
                }
                let mut ours: Vec<&str> = t.keys.iter().map(|k| k.name).collect();
                let mut theirs: Vec<&str> = (t.serde_fields)().to_vec();
                ours.sort_unstable();
                theirs.sort_unstable();
                assert_eq!(ours, theirs, "{}", t.name);
            }
        }
    }
}
