//! The daemon file (`regdrop.toml`): its paths, `[defaults]`, `[retry]`, `[daemon]` and
//! `[retention]` tables -> [`DaemonConfig`] (`[notify]` in [`super::notify`]).

use super::super::limits;
use super::super::raw::RawDaemon;
use super::types::{DaemonConfig, Inherited};
use super::Problem;
use crate::core::config::location::DbLocation;
use crate::core::retry::RetryPolicy;
use crate::core::schedule;
use std::path::Path;
use std::time::Duration;

/// Validates the daemon file; `base` is the folder relative paths start from.
pub fn validate_daemon(raw: &RawDaemon, base: &Path) -> Result<DaemonConfig, Vec<Problem>> {
    let mut problems = Vec::new();
    let rel = |v: &Option<String>, default: &str| base.join(v.as_deref().unwrap_or(default));
    let timezone = raw
        .defaults
        .timezone
        .clone()
        .unwrap_or_else(|| "Europe/Oslo".into());
    if let Err(e) = schedule::parse_tz(&timezone) {
        problems.push(Problem::new("defaults.timezone", e));
    }
    let retry = RetryPolicy::default().with(&raw.retry);
    limits::retry_problems(&raw.retry, &retry, &mut problems);
    limits::check_range(
        "daemon.shutdown_grace_secs",
        raw.daemon.shutdown_grace_secs,
        (0, limits::SHUTDOWN_GRACE_SECS_MAX),
        "seconds in-flight runs get to finish on shutdown",
        &mut problems,
    );
    limits::check_range(
        "retention.spool_grace_hours",
        raw.retention.spool_grace_hours,
        (0, limits::SPOOL_GRACE_HOURS_MAX),
        "hours a delivered artifact stays in the spool",
        &mut problems,
    );
    limits::check_range(
        "retention.receipts_days",
        raw.retention.receipts_days,
        limits::RECEIPTS_DAYS,
        "days receipts and attempts are kept",
        &mut problems,
    );
    let node = node_and_lease(&raw.daemon, &mut problems);
    let metrics_listen = match &raw.daemon.metrics_listen {
        None => None,
        Some(s) => match s.parse::<std::net::SocketAddr>() {
            // Any address: a Prometheus on another machine scrapes 0.0.0.0:9187 (the
            // endpoint has no TLS or login; README "Metrics" says what that exposes).
            Ok(a) => Some(a),
            Err(_) => {
                problems.push(Problem::new(
                    "daemon.metrics_listen",
                    format!("`{s}` is not an address like 127.0.0.1:9187"),
                ));
                None
            }
        },
    };
    let max_concurrent = raw.daemon.max_concurrent.unwrap_or(4);
    let max_per_host = raw.daemon.max_per_host.unwrap_or(2);
    if max_concurrent == 0 {
        problems.push(Problem::new("daemon.max_concurrent", "must be at least 1"));
    }
    if max_per_host == 0 {
        problems.push(Problem::new("daemon.max_per_host", "must be at least 1"));
    }
    let service_user = raw.daemon.user.as_deref().map(str::trim);
    if let Some(u) = service_user {
        if u.is_empty()
            || !u
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            problems.push(Problem::new(
                "daemon.user",
                format!("`{u}` is not a user name; write the User= of the unit, e.g. user = \"regdrop\""),
            ));
        }
    }
    let secrets_dir = raw
        .secrets_dir
        .as_ref()
        .map(|s| base.join(s))
        .unwrap_or_else(|| base.to_path_buf());
    let smtp = raw
        .smtp
        .as_ref()
        .and_then(|s| super::smtp::validate_smtp(s, &secrets_dir, &mut problems));
    let notify = super::notify::validate_notify(&raw.notify, &secrets_dir, &mut problems);
    if !notify.email.is_empty() && raw.smtp.is_none() {
        problems.push(Problem::new(
            "notify.email",
            "e-mail alerts go through the [smtp] table, and there is none; add [smtp] (README \"Notifications\") or remove notify.email",
        ));
    }
    let sms = raw
        .sms
        .as_ref()
        .and_then(|s| super::email::validate_sms(s, &secrets_dir, &mut problems));
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(DaemonConfig {
        service_user: service_user.map(str::to_string),
        node: node.map(str::to_string),
        lease: Duration::from_secs(raw.daemon.lease_secs.unwrap_or(30)),
        register: DbLocation::from_config(
            raw.register.as_deref().unwrap_or("register.sqlite"),
            base,
        ),
        spool_dir: rel(&raw.spool_dir, "spool"),
        state_db: DbLocation::from_config(
            raw.state_db.as_deref().unwrap_or("state/regdrop.sqlite"),
            base,
        ),
        subscriptions_dir: rel(&raw.subscriptions_dir, "subscriptions"),
        inherited: Inherited {
            timezone,
            retry,
            secrets_dir,
            offers: super::Offers {
                smtp: smtp.is_some(),
                sms: sms.is_some(),
            },
        },
        max_concurrent,
        max_per_host,
        metrics_listen,
        shutdown_grace: Duration::from_secs(raw.daemon.shutdown_grace_secs.unwrap_or(60)),
        spool_grace: Duration::from_secs(
            raw.retention
                .spool_grace_hours
                .unwrap_or(24)
                .saturating_mul(3600),
        ),
        receipts_retention: Duration::from_secs(
            raw.retention
                .receipts_days
                .unwrap_or(2557)
                .saturating_mul(86_400),
        ),
        smtp,
        notify,
        sms,
    })
}

/// `[daemon] node` (trimmed) and the bounds of `lease_secs`.
fn node_and_lease<'a>(
    raw: &'a super::super::raw::RawDaemonRuntime,
    problems: &mut Vec<Problem>,
) -> Option<&'a str> {
    limits::check_range(
        "daemon.lease_secs",
        raw.lease_secs,
        limits::LEASE_SECS,
        "seconds a node's claim on a run lasts without a heartbeat",
        problems,
    );
    let node = raw.node.as_deref().map(str::trim);
    if let Some(n) = node {
        if let Err(why) = node_name_problem(n) {
            problems.push(Problem::new("daemon.node", why));
        }
    }
    node
}

/// Why `name` cannot name a node (`[daemon] node`, and the host name it defaults to):
/// empty, longer than [`limits::NODE_NAME_MAX`], or with a space or control character
/// (it is shown in `regdrop status` and logs).
pub fn node_name_problem(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("is empty; write this node's name, e.g. node = \"regdrop-1\"".into());
    }
    if name.chars().count() > limits::NODE_NAME_MAX {
        return Err(format!(
            "is longer than {} characters; write a short name, e.g. node = \"regdrop-1\"",
            limits::NODE_NAME_MAX
        ));
    }
    if name.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(format!(
            "{name:?} has a space or control character; write a name of printable characters, e.g. node = \"regdrop-1\""
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{keys, message_at};
    use super::*;

    #[test]
    fn a_postgresql_state_db_and_a_postgresql_register_are_taken() {
        let d = daemon(
            "state_db = \"postgresql://regdrop@db/regdrop\"\nregister = \"postgres://reader:pw@replica/mvr?options=-csearch_path%3Dregdrop\"",
        )
        .unwrap();
        assert_eq!(
            d.register.postgres().map(|u| u.expose()),
            Some("postgres://reader:pw@replica/mvr?options=-csearch_path%3Dregdrop")
        );
        assert!(!d.register.to_string().contains(":pw@"), "{}", d.register);
        let d = daemon("register = \"PostgreSQL://r@db/mvr\"").unwrap();
        assert!(d.register.postgres().is_some());
        let d = daemon("state_db = \" postgresql://regdrop@db/regdrop \"").unwrap();
        assert_eq!(
            d.state_db.postgres().map(|u| u.expose()),
            Some("postgresql://regdrop@db/regdrop")
        );
    }

    fn daemon(toml_text: &str) -> Result<DaemonConfig, Vec<Problem>> {
        let raw: RawDaemon = toml::from_str(toml_text).expect("a daemon file");
        validate_daemon(&raw, Path::new("/etc/regdrop"))
    }

    #[test]
    fn an_empty_file_takes_every_default_relative_to_its_folder() {
        let d = daemon("").unwrap();
        let base = Path::new("/etc/regdrop");
        assert_eq!(d.register, DbLocation::Sqlite(base.join("register.sqlite")));
        assert_eq!(d.spool_dir, base.join("spool"));
        assert_eq!(
            d.state_db,
            DbLocation::Sqlite(base.join("state/regdrop.sqlite"))
        );
        assert_eq!(d.subscriptions_dir, base.join("subscriptions"));
        assert_eq!(d.inherited.secrets_dir, base);
        assert_eq!(d.inherited.timezone, "Europe/Oslo");
        assert_eq!((d.max_concurrent, d.max_per_host), (4, 2));
        assert_eq!(d.metrics_listen, None);
        assert_eq!(d.shutdown_grace, Duration::from_secs(60));
        assert_eq!(d.spool_grace, Duration::from_secs(24 * 3600));
        assert_eq!(d.receipts_retention, Duration::from_secs(2557 * 86_400));
    }

    #[test]
    fn given_values_are_used() {
        let d = daemon(
            "register = \"r.db\"\nsecrets_dir = \"secrets\"\n\
             [defaults]\ntimezone = \"UTC\"\n\
             [daemon]\nmax_concurrent = 8\nmax_per_host = 1\nmetrics_listen = \"127.0.0.1:9187\"\nshutdown_grace_secs = 5\n\
             [retention]\nspool_grace_hours = 2\nreceipts_days = 10\n",
        )
        .unwrap();
        assert_eq!(d.register, DbLocation::Sqlite("/etc/regdrop/r.db".into()));
        assert_eq!(d.inherited.secrets_dir, Path::new("/etc/regdrop/secrets"));
        assert_eq!(d.inherited.timezone, "UTC");
        assert_eq!((d.max_concurrent, d.max_per_host), (8, 1));
        assert_eq!(d.metrics_listen, Some("127.0.0.1:9187".parse().unwrap()));
        assert_eq!(d.shutdown_grace, Duration::from_secs(5));
        assert_eq!(d.spool_grace, Duration::from_secs(7200));
        assert_eq!(d.receipts_retention, Duration::from_secs(864_000));
    }

    #[test]
    fn every_rule_names_its_key_and_all_are_collected() {
        let p = daemon(
            "[defaults]\ntimezone = \"Mars/Olympus\"\n\
             [retry]\nbase_secs = 0\n\
             [daemon]\nmax_concurrent = 0\nmax_per_host = 0\nshutdown_grace_secs = 3601\n\
             [retention]\nspool_grace_hours = 8761\nreceipts_days = 0\n",
        )
        .unwrap_err();
        assert_eq!(
            keys(&p),
            [
                "defaults.timezone",
                "retry.base_secs",
                "daemon.shutdown_grace_secs",
                "retention.spool_grace_hours",
                "retention.receipts_days",
                "daemon.max_concurrent",
                "daemon.max_per_host",
            ]
        );
        assert_eq!(
            message_at(&p, "defaults.timezone"),
            "`Mars/Olympus` is not an IANA time zone name (e.g. Europe/Oslo)"
        );
        assert_eq!(
            message_at(&p, "daemon.shutdown_grace_secs"),
            "3601 is out of range; seconds in-flight runs get to finish on shutdown: write a number from 0 to 3600"
        );
        assert_eq!(
            message_at(&p, "retention.spool_grace_hours"),
            "8761 is out of range; hours a delivered artifact stays in the spool: write a number from 0 to 8760"
        );
        assert_eq!(
            message_at(&p, "retention.receipts_days"),
            "0 is out of range; days receipts and attempts are kept: write a number from 1 to 36500"
        );
        assert_eq!(
            message_at(&p, "daemon.max_concurrent"),
            "must be at least 1"
        );
        assert_eq!(message_at(&p, "daemon.max_per_host"), "must be at least 1");
    }

    #[test]
    fn node_and_lease_have_defaults_and_bounds() {
        let d = daemon("").unwrap();
        assert_eq!(
            (d.node.as_deref(), d.lease),
            (None, Duration::from_secs(30))
        );
        let d = daemon("[daemon]\nnode = \" regdrop-2 \"\nlease_secs = 5\n").unwrap();
        assert_eq!(
            (d.node.as_deref(), d.lease),
            (Some("regdrop-2"), Duration::from_secs(5))
        );
        let long = "n".repeat(65);
        for (text, key, says) in [
            (
                "[daemon]\nlease_secs = 4\n",
                "daemon.lease_secs",
                "from 5 to 3600",
            ),
            ("[daemon]\nnode = \"  \"\n", "daemon.node", "is empty"),
            (
                "[daemon]\nnode = \"a b\"\n",
                "daemon.node",
                "space or control",
            ),
            (
                "[daemon]\nnode = \"a\\u0007\"\n",
                "daemon.node",
                "space or control",
            ),
            (
                &format!("[daemon]\nnode = \"{long}\"\n"),
                "daemon.node",
                "longer than 64",
            ),
        ] {
            let p = daemon(text).unwrap_err();
            assert_eq!(keys(&p), [key], "{text}");
            assert!(message_at(&p, key).contains(says), "{text}: {p:?}");
        }
        assert!(node_name_problem(&"n".repeat(64)).is_ok());
    }

    #[test]
    fn the_metrics_endpoint_may_listen_on_any_address() {
        for a in [
            "0.0.0.0:9187",
            "[::]:9187",
            "192.0.2.7:9187",
            "127.0.0.1:9187",
        ] {
            let d = daemon(&format!("[daemon]\nmetrics_listen = \"{a}\"\n")).unwrap();
            assert_eq!(d.metrics_listen, Some(a.parse().unwrap()), "{a}");
        }
    }

    #[test]
    fn a_metrics_address_that_does_not_parse_is_refused() {
        let p = daemon("[daemon]\nmetrics_listen = \"localhost\"\n").unwrap_err();
        assert_eq!(
            message_at(&p, "daemon.metrics_listen"),
            "`localhost` is not an address like 127.0.0.1:9187"
        );
    }
}
