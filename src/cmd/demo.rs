//! `regdrop demo`: the main job on a fresh machine, with nothing but this binary. Builds a
//! small synthetic register, starts the embedded loopback SFTP target, writes a config and
//! one subscription per standard report (pinned host key, key login, age recipients), runs
//! the daemon on a fast clock until each subscription has delivered a few scheduled runs,
//! then shows the receipts, verifies their chain and decrypts a sample.

use crate::daemon::{self, supervisor::Clock};
use crate::demo_server::{self, DemoAuth};
use crate::store::{ReceiptFilter, Store};
use anyhow::{bail, Context, Result};
use chrono::Utc;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const MARKER: &str = ".regdrop-demo";
/// How much faster than real time the demo's clock runs (one hour in three seconds).
const SPEED: f64 = 1200.0;

/// A clock starting now and running [`SPEED`] times faster than real time.
struct FastClock {
    base: chrono::DateTime<Utc>,
    started: std::time::Instant,
}

impl Clock for FastClock {
    fn now(&self) -> chrono::DateTime<Utc> {
        let ms = self.started.elapsed().as_secs_f64() * SPEED * 1000.0;
        self.base + chrono::Duration::milliseconds(ms as i64)
    }
    fn real(&self, span: chrono::Duration) -> std::time::Duration {
        span.to_std().unwrap_or_default().div_f64(SPEED)
    }
}

pub struct DemoOptions {
    pub dir: PathBuf,
    pub vehicles: u64,
    pub cycles: usize,
}

fn step(n: u32, text: impl AsRef<str>) {
    outln!("\n{n}. {}", text.as_ref());
}

/// Runs the demo in `opts.dir` (created; a previous demo folder is replaced).
pub fn run(opts: &DemoOptions) -> Result<()> {
    let dir = &opts.dir;
    if dir.exists() {
        if !dir.join(MARKER).exists() {
            bail!(
                "{} exists and is not a regdrop demo folder; pick another --dir",
                dir.display()
            );
        }
        std::fs::remove_dir_all(dir)
            .with_context(|| format!("removing the old demo in {}", dir.display()))?;
    }
    for sub in ["subscriptions", "secrets", "sftp-root/incoming"] {
        std::fs::create_dir_all(dir.join(sub))?;
    }
    std::fs::write(
        dir.join(MARKER),
        "made by `regdrop demo`; removed by the next one\n",
    )?;
    std::fs::set_permissions(dir.join("secrets"), std::fs::Permissions::from_mode(0o700))?;
    outln!("regdrop demo in {}", dir.display());

    // 1. The register.
    let register = dir.join("register.sqlite");
    let s = crate::register::generate(
        &register,
        &crate::register::GenerateOptions {
            vehicles: opts.vehicles,
            seed: 1,
        },
        &mut |_| {},
    )?;
    step(
        1,
        format!(
            "register: {} synthetic vehicles, {} ownerships in {:.1} s ({})",
            s.vehicles,
            s.ownerships,
            s.total_seconds,
            register.display()
        ),
    );

    // Keys: the customer's age identity, regdrop's SSH login key.
    let identity = age::x25519::Identity::generate();
    use age::secrecy::ExposeSecret;
    std::fs::write(
        dir.join("secrets/customer-age-identity.txt"),
        format!("{}\n", identity.to_string().expose_secret()),
    )?;
    let user_key_path = dir.join("secrets/regdrop_ed25519");
    let user_key = demo_server::load_or_create_host_key(Some(&user_key_path))?;
    let user_pub = user_key
        .public_key()
        .to_openssh()
        .context("encoding the login key")?;

    super::runtime()?.block_on(async {
        // 2. The customer's SFTP server, on loopback.
        let server = demo_server::start(
            dir.join("sftp-root"),
            DemoAuth::public_key("kunde", user_pub.clone()),
            Some(dir.join("demo-server-host-key")),
            "127.0.0.1:0".parse().expect("address"),
        )
        .await?;
        step(2, format!("demo SFTP target on {} (user kunde, key login), host key {}", server.addr(), server.info.host_key_fingerprint));

        // 3. Config and subscriptions.
        write_config(dir, server.addr().port(), server.host_key_line(), &identity.to_public().to_string())?;
        let loaded = crate::loader::load(&dir.join("regdrop.toml")).map_err(|e| anyhow::anyhow!("{e}"))?;
        if !loaded.problems.is_empty() {
            bail!("demo config invalid: {:?}", loaded.problems);
        }
        step(3, format!("config: {} subscriptions valid (`regdrop --config {} check`)", loaded.subscriptions.len(), dir.join("regdrop.toml").display()));

        // 4. The daemon itself, on a clock that runs SPEED times faster than real time.
        step(4, format!(
            "the daemon (`regdrop run`) on a clock running {SPEED}x (one hour in {:.0} s) until every subscription has delivered {} scheduled runs:",
            3600.0 / SPEED,
            opts.cycles
        ));
        let clock = Arc::new(FastClock { base: Utc::now(), started: std::time::Instant::now() });
        let state_db = loaded.daemon.state_db.clone();
        let ids: Vec<crate::core::identity::SubscriptionId> = loaded.subscriptions.iter().map(|s| s.id.clone()).collect();
        let cycles = opts.cycles;
        let done = async move {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30 + 10 * cycles as u64);
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                let enough = Store::open_location(&state_db)
                    .and_then(|st| st.receipts(&ReceiptFilter::default()))
                    .map(|rs| ids.iter().all(|id| rs.iter().filter(|r| &r.subscription == id).count() >= cycles))
                    .unwrap_or(false);
                if enough || std::time::Instant::now() > deadline {
                    return;
                }
            }
        };
        let options = daemon::Options { clock: clock.clone(), signals: false, metrics: false, ..daemon::Options::default() };
        daemon::run_with(dir.join("regdrop.toml"), done, options).await?;
        let store = Store::open(dir.join("state/regdrop.sqlite"))?;
        for r in store.receipts(&ReceiptFilter::default())? {
            let run = store.get_run(&r.run_id)?.context("run of a receipt")?;
            let sub = loaded.subscription(&r.subscription).context("subscription")?;
            outln!(
                "   {:<16} scheduled {:<20} -> {} ({} rows, {} bytes, receipt {})",
                r.subscription,
                sub.schedule.local(run.scheduled_at).format("%a %H:%M %Z"),
                r.remote_path,
                r.rows,
                r.bytes,
                r.id
            );
        }
        server.shutdown().await;
        Ok::<_, anyhow::Error>(())
    })?;

    // 5. Receipts and their chain.
    let store = Store::open(dir.join("state/regdrop.sqlite"))?;
    let receipts = store.receipts(&ReceiptFilter::default())?;
    step(
        5,
        format!(
            "receipts: {} (`regdrop receipts list`); {}",
            receipts.len(),
            store.verify_chain()?
        ),
    );

    // 6. What the customer got.
    show_delivered(dir, &receipts, &identity)?;
    outln!(
        "\nDone. Everything is in {}; try `regdrop --config {} receipts list`.",
        dir.display(),
        dir.join("regdrop.toml").display()
    );
    Ok(())
}

/// Step 6: lists the customer's folder and decrypts one delivered file with the customer's
/// identity, as the customer would.
fn show_delivered(
    dir: &Path,
    receipts: &[crate::store::Receipt],
    identity: &age::x25519::Identity,
) -> Result<()> {
    let root = dir.join("sftp-root/incoming");
    let mut files: Vec<String> = std::fs::read_dir(&root)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    files.sort();
    step(6, format!("the customer's folder {}:", root.display()));
    for f in &files {
        outln!("   {f}");
    }
    let sample = receipts
        .iter()
        .find(|r| r.subscription == "demo-technical")
        .context("no technical delivery")?;
    let path = root.join(
        Path::new(&sample.remote_path)
            .file_name()
            .context("remote name")?,
    );
    let dec = age::Decryptor::new(std::fs::File::open(&path)?)?;
    let mut plain = Vec::new();
    dec.decrypt(std::iter::once(identity as &dyn age::Identity))?
        .read_to_end(&mut plain)?;
    let text = crate::core::text::decode_latin1(&plain);
    outln!(
        "\n   decrypted with the customer's age identity: {} (ISO-8859-1, CRLF, ¤), first lines:",
        path.display()
    );
    for line in text.lines().take(3) {
        let cut: String = line.chars().take(150).collect();
        outln!("   {cut}...");
    }
    Ok(())
}

fn write_config(dir: &Path, port: u16, host_key: &str, recipient: &str) -> Result<()> {
    std::fs::write(
        dir.join("regdrop.toml"),
        "# Written by `regdrop demo`.\nregister = \"register.sqlite\"\nspool_dir = \"spool\"\nstate_db = \"state/regdrop.sqlite\"\nsubscriptions_dir = \"subscriptions\"\nsecrets_dir = \"secrets\"\n[defaults]\ntimezone = \"Europe/Oslo\"\n[daemon]\nshutdown_grace_secs = 10\n",
    )?;
    let target = format!(
        "[target]\nhost = \"127.0.0.1\"\nport = {port}\nusername = \"kunde\"\nhost_keys = [\"{host_key}\"]\nauth = {{ key_file = \"regdrop_ed25519\" }}\nremote_dir = \"/incoming\"\n"
    );
    let subs = [
        ("demo-technical", "Demo Forsikring ASA", "5 * * * *", "report = \"technical\"\nformat = \"dsv\"\nencoding = \"iso-8859-1\"\nline_ending = \"crlf\"\nfilter = { vehicle_group = [\"101\"], make = [\"TESLA\"] }", ""),
        ("demo-owners-csv", "Demo Bompenger AS", "20 * * * *", "report = \"technical_owners\"\nformat = \"csv\"\nfilter = { county = [\"03\"], status = [\"REGISTRERT\"] }", "legal_basis = \"Demo: bompengeforskriften, avtale 2026-1\"\n"),
        ("demo-first-reg", "Demo Import AS", "35 * * * *", "report = \"first_registrations\"\nformat = \"xlsx\"\nperiod = { from = 2024-01-01, to = 2024-12-31 }", ""),
        ("demo-owners", "Demo Parkering AS", "50 * * * *", "report = \"owners\"\nformat = \"dsv\"\nfilter = { make = [\"VOLVO\"], county = [\"46\"] }", "legal_basis = \"Demo: parkeringsforskriften § 33\"\n"),
    ];
    for (id, customer, cron, extract, legal) in subs {
        std::fs::write(
            dir.join("subscriptions").join(format!("{id}.toml")),
            format!(
                "id = \"{id}\"\ncustomer = \"{customer}\"\ncase_number = \"26/DEMO\"\n{legal}[schedule]\ncron = \"{cron}\"\ntimezone = \"Europe/Oslo\"\n{target}[extract]\n{extract}\n[encryption]\nrecipients = [\"{recipient}\"]\n[delivery]\nfile_name = \"{{id}}_{{run:%Y%m%dT%H%M}}.{{ext}}\"\n"
            ),
        )?;
    }
    Ok(())
}
