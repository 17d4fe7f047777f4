//! What goes wrong: one fault per test, and the fault campaign (many random faults).

mod campaign;
mod single_faults;

use crate::util::daemon_env::Env;
use chrono::{DateTime, Utc};
use regdrop::pipeline::delivery::Ctx;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// An [`Env`] whose state folder exists (the store can be opened before the daemon ran).
fn new_env(rows: usize, extra: &str) -> Env {
    let env = Env::new(rows, extra);
    std::fs::create_dir_all(env.path().join("state")).unwrap();
    env
}

/// The delivery context of `env`'s config (which must load without problems), and the
/// loaded config to take subscriptions from.
fn ctx_of(env: &Env) -> (Ctx, regdrop::loader::Loaded) {
    let loaded = regdrop::loader::load(&env.config()).unwrap();
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    let ctx = Ctx {
        daemon: Arc::new(loaded.daemon.clone()),
        store: Arc::new(Mutex::new(env.store())),
        cancel: CancellationToken::new(),
        xlsx_row_limit: None,
        sealing: Default::default(),
    };
    (ctx, loaded)
}
