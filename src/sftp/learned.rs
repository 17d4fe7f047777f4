//! What deliveries learned about servers by trying (a multi-channel upload that failed
//! where one channel worked, a rename that replaced, a hardlink that did not link), kept per `host:port` for the life of
//! the process and forgotten after a day, so the next delivery starts from it.

use super::profile::ServerProfile;
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, Default)]
struct Facts {
    rename_replaces: Option<bool>,
    parallel_writes_ok: Option<bool>,
    hardlink_ok: Option<bool>,
}

type Known = HashMap<String, (Instant, Facts)>;
static LEARNED: LazyLock<Mutex<Known>> = LazyLock::new(|| Mutex::new(HashMap::new()));
const KEEP: Duration = Duration::from_secs(24 * 3600);

fn update(addr: &str, f: impl FnOnce(&mut Facts)) {
    let mut map = LEARNED.lock().unwrap_or_else(|e| e.into_inner());
    let entry = map
        .entry(addr.to_string())
        .or_insert((Instant::now(), Facts::default()));
    entry.0 = Instant::now();
    f(&mut entry.1);
}

/// Adds what is known about `addr` to a freshly built profile.
pub(crate) fn apply(addr: &str, p: &mut ServerProfile) {
    let mut map = LEARNED.lock().unwrap_or_else(|e| e.into_inner());
    map.retain(|_, (at, _)| at.elapsed() < KEEP);
    if let Some((_, f)) = map.get(addr) {
        p.rename_replaces = p.rename_replaces.or(f.rename_replaces);
        p.parallel_writes_ok = p.parallel_writes_ok.or(f.parallel_writes_ok);
        p.hardlink_ok = p.hardlink_ok.or(f.hardlink_ok);
    }
}

pub(crate) fn parallel_writes_failed(addr: &str) {
    update(addr, |f| f.parallel_writes_ok = Some(false));
}

pub(crate) fn rename_replaces(addr: &str, replaces: bool) {
    update(addr, |f| f.rename_replaces = Some(replaces));
}

pub(crate) fn hardlink_broken(addr: &str) {
    update(addr, |f| f.hardlink_ok = Some(false));
}
