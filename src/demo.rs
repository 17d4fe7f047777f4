//! `regdrop demo`: the main job on a fresh machine, with nothing but this binary. Builds a
//! small synthetic register, starts the embedded loopback SFTP target, writes a config and
//! one subscription per standard report (pinned host key, key login, age recipients), runs
//! each subscription for its next scheduled fire times through the same delivery code the
//! daemon uses, then shows the receipts, verifies their chain and decrypts a sample.

use crate::config;
use crate::delivery::{self, Ctx, Outcome, Quiet};
use crate::demo_server::{self, DemoAuth};
use crate::store::{ReceiptFilter, Store};
use anyhow::{bail, Context, Result};
use chrono::Utc;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

const MARKER: &str = ".regdrop-demo";

pub struct DemoOptions {
    pub dir: PathBuf,
    pub vehicles: u64,
    pub cycles: usize,
}

fn step(n: u32, text: impl AsRef<str>) {
    println!("\n{n}. {}", text.as_ref());
}

/// Runs the demo in `opts.dir` (created; a previous demo folder is replaced).
pub fn run(opts: &DemoOptions) -> Result<()> {
    let dir = &opts.dir;
    if dir.exists() {
        if !dir.join(MARKER).exists() {
            bail!("{} exists and is not a regdrop demo folder; pick another --dir", dir.display());
        }
        std::fs::remove_dir_all(dir).with_context(|| format!("removing the old demo in {}", dir.display()))?;
    }
    for sub in ["subscriptions", "secrets", "sftp-root/incoming"] {
        std::fs::create_dir_all(dir.join(sub))?;
    }
    std::fs::write(dir.join(MARKER), "made by `regdrop demo`; removed by the next one\n")?;
    std::fs::set_permissions(dir.join("secrets"), std::fs::Permissions::from_mode(0o700))?;
    println!("regdrop demo in {}", dir.display());

    // 1. The register.
    let register = dir.join("register.sqlite");
    let s = crate::register::generate(&register, &crate::register::GenerateOptions { vehicles: opts.vehicles, seed: 1 }, &mut |_| {})?;
    step(1, format!("register: {} synthetic vehicles, {} ownerships in {:.1} s ({})", s.vehicles, s.ownerships, s.total_seconds, register.display()));

    // Keys: the customer's age identity, regdrop's SSH login key.
    let identity = age::x25519::Identity::generate();
    use age::secrecy::ExposeSecret;
    std::fs::write(dir.join("secrets/customer-age-identity.txt"), format!("{}\n", identity.to_string().expose_secret()))?;
    let user_key_path = dir.join("secrets/regdrop_ed25519");
    let user_key = demo_server::load_or_create_host_key(Some(&user_key_path))?;
    let user_pub = user_key.public_key().to_openssh().context("encoding the login key")?;

    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async {
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
        let loaded = config::load(&dir.join("regdrop.toml")).map_err(|e| anyhow::anyhow!("{e}"))?;
        if !loaded.problems.is_empty() {
            bail!("demo config invalid: {:?}", loaded.problems);
        }
        step(3, format!("config: {} subscriptions valid (`regdrop --config {} check`)", loaded.subscriptions.len(), dir.join("regdrop.toml").display()));

        // 4. Deliveries at the schedules' next fire times.
        std::fs::create_dir_all(loaded.daemon.state_db.parent().context("state path")?)?;
        let store = Store::open(&loaded.daemon.state_db)?;
        let ctx = Ctx {
            daemon: Arc::new(loaded.daemon.clone()),
            store: Arc::new(Mutex::new(store)),
            cancel: tokio_util::sync::CancellationToken::new(),
            xlsx_row_limit: None,
        };
        step(4, format!("deliveries: each subscription for its next {} fire times (clock simulated; `regdrop run` waits for them)", opts.cycles));
        let now = Utc::now();
        for sub in &loaded.subscriptions {
            for at in sub.schedule.upcoming(now, opts.cycles) {
                let local = sub.schedule.local(at).format("%a %Y-%m-%d %H:%M %Z");
                match delivery::deliver(&ctx, sub, at, &Quiet).await? {
                    Outcome::Delivered(r) => println!(
                        "   {:<18} {local:<28} -> {} ({} rows, {} bytes, receipt {})",
                        sub.id, r.remote_path, r.rows, r.bytes, r.id
                    ),
                    other => bail!("{}: {other:?}", sub.id),
                }
            }
        }
        server.shutdown().await;
        Ok::<_, anyhow::Error>(())
    })?;

    // 5. Receipts and their chain.
    let store = Store::open(dir.join("state/regdrop.sqlite"))?;
    let receipts = store.receipts(&ReceiptFilter::default())?;
    step(5, format!("receipts: {} (`regdrop receipts list`); {}", receipts.len(), store.verify_chain()?));

    // 6. What the customer got.
    let root = dir.join("sftp-root/incoming");
    let mut files: Vec<String> = std::fs::read_dir(&root)?.map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned())).collect::<Result<_, _>>()?;
    files.sort();
    step(6, format!("the customer's folder {}:", root.display()));
    for f in &files {
        println!("   {f}");
    }
    let sample = receipts.iter().find(|r| r.subscription == "demo-technical").context("no technical delivery")?;
    let path = root.join(Path::new(&sample.remote_path).file_name().context("remote name")?);
    let dec = age::Decryptor::new(std::fs::File::open(&path)?)?;
    let mut plain = Vec::new();
    dec.decrypt(std::iter::once(&identity as &dyn age::Identity))?.read_to_end(&mut plain)?;
    let text = crate::format::decode_latin1(&plain);
    println!("\n   decrypted with the customer's age identity: {} (ISO-8859-1, CRLF, ¤), first lines:", path.display());
    for line in text.lines().take(3) {
        let cut: String = line.chars().take(150).collect();
        println!("   {cut}...");
    }
    println!("\nDone. Everything is in {}; try `regdrop --config {} receipts list`.", dir.display(), dir.join("regdrop.toml").display());
    Ok(())
}

fn write_config(dir: &Path, port: u16, host_key: &str, recipient: &str) -> Result<()> {
    std::fs::write(
        dir.join("regdrop.toml"),
        "# Written by `regdrop demo`.\nregister = \"register.sqlite\"\nspool_dir = \"spool\"\nstate_db = \"state/regdrop.sqlite\"\nsubscriptions_dir = \"subscriptions\"\nsecrets_dir = \"secrets\"\n[defaults]\ntimezone = \"Europe/Oslo\"\n",
    )?;
    let target = format!(
        "[target]\nhost = \"127.0.0.1\"\nport = {port}\nusername = \"kunde\"\nhost_keys = [\"{host_key}\"]\nauth = {{ key_file = \"regdrop_ed25519\" }}\nremote_dir = \"/incoming\"\n"
    );
    let subs = [
        ("demo-technical", "Demo Forsikring ASA", "0 5 * * MON", "report = \"technical\"\nformat = \"dsv\"\nencoding = \"iso-8859-1\"\nline_ending = \"crlf\"\nfilter = { vehicle_group = [\"101\"], make = [\"TESLA\"] }", ""),
        ("demo-owners-csv", "Demo Bompenger AS", "30 2 * * *", "report = \"technical_owners\"\nformat = \"csv\"\nfilter = { county = [\"03\"], status = [\"REGISTRERT\"] }", "legal_basis = \"Demo: bompengeforskriften, avtale 2026-1\"\n"),
        ("demo-first-reg", "Demo Import AS", "0 7 1 * *", "report = \"first_registrations\"\nformat = \"xlsx\"\nperiod = { from = 2024-01-01, to = 2024-12-31 }", ""),
        ("demo-owners", "Demo Parkering AS", "0 6 * * *", "report = \"owners\"\nformat = \"dsv\"\nfilter = { make = [\"VOLVO\"], county = [\"46\"] }", "legal_basis = \"Demo: parkeringsforskriften § 33\"\n"),
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
