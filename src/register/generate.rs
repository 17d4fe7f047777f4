//! The synthetic register: a deterministic (same seed, same content), realistic fleet with
//! valid identifiers, owners, co-owners, lessees and ownership history, fast enough for the
//! real fleet's 4 million vehicles.
//!
//! One thread makes rows (a single `Pcg64` stream, so the content depends only on the seed
//! and the vehicle count), another inserts them into SQLite in large transactions with
//! prepared statements while the journal is off; indexes are built after the load and the
//! database is switched back to WAL at the end. Dates are relative to a fixed as-of date
//! ([`AS_OF`]) so that a seed always means the same register.

use super::refdata::{refdata, Municipality, RefData};
use super::schema;
use super::RegisterError;
use crate::core::catalog::{column_of, TECHNICAL};
use crate::core::ids;
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;
use std::collections::HashSet;
use std::path::Path;
use std::sync::mpsc;
use std::time::Instant;

/// The synthetic register's "today" (`YYYYMMDD`): no date lies after it.
pub const AS_OF: (i32, u32, u32) = (2025, 6, 30);

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenerateOptions {
    /// Number of vehicles (the real register has about 4 million).
    pub vehicles: u64,
    /// Seed of the random stream; the same seed and count give the same content.
    pub seed: u64,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            vehicles: 10_000,
            seed: 1,
        }
    }
}

/// What was generated.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateSummary {
    pub vehicles: u64,
    /// All ownership rows (current and history).
    pub ownerships: u64,
    /// Organisations in the pool owners and lessors are drawn from.
    pub organisations: u64,
    /// Seconds spent loading rows (before indexes).
    pub load_seconds: f64,
    /// Seconds spent building indexes.
    pub index_seconds: f64,
    pub total_seconds: f64,
}

/// Vehicles per batch handed from the maker thread to the writer.
const BATCH: usize = 4096;
/// Batches per transaction.
const BATCHES_PER_TX: usize = 64;

/// Generates a synthetic register into `db` (created if missing). Existing vehicles and
/// ownerships in `db` are replaced (no other connection may hold the database). The load
/// runs without a journal: an interrupted run leaves a partial register, so run it again.
/// `progress` is called with the number of vehicles written so far.
pub fn generate(
    db: &Path,
    opts: &GenerateOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<GenerateSummary, RegisterError> {
    if opts.vehicles > 50_000_000 {
        return Err(RegisterError::InvalidOption(format!(
            "--vehicles {} is more than the 50,000,000 the plate series can hold",
            opts.vehicles
        )));
    }
    let started = Instant::now();
    let conn = schema::open_rw(db)?;
    conn.execute_batch(
        "DROP TABLE IF EXISTS ownership; DROP TABLE IF EXISTS vehicle;
         DELETE FROM register_meta;",
    )?;
    conn.execute_batch(&schema::ddl())?;
    conn.pragma_update(None, "journal_mode", "OFF")?;
    conn.pragma_update(None, "synchronous", "OFF")?;
    conn.pragma_update(None, "cache_size", -65_536i64)?; // 64 MiB

    let (tx, rx) = mpsc::sync_channel::<Batch>(4);
    let total = opts.vehicles;
    let seed = opts.seed;
    let maker = std::thread::Builder::new()
        .name("register-generate".into())
        .spawn(move || {
            let mut m = Maker::new(seed, total);
            let orgs = m.orgs.len() as u64;
            let mut next = 1u64;
            while next <= total {
                let n = (total - next + 1).min(BATCH as u64);
                let mut b = Batch::with_capacity(n as usize);
                for id in next..next + n {
                    m.vehicle(id, &mut b);
                }
                next += n;
                if tx.send(b).is_err() {
                    break; // the writer stopped; it reports its error
                }
            }
            orgs
        })
        .map_err(|e| RegisterError::Worker(e.to_string()))?;

    let write = (|| -> Result<(u64, u64), RegisterError> {
        let cols: Vec<String> = TECHNICAL.iter().map(|f| column_of(f.0)).collect();
        let placeholders: Vec<String> = (1..=86).map(|i| format!("?{i}")).collect();
        let vsql = format!(
            "INSERT INTO vehicle (id, {}) VALUES ({})",
            cols.join(", "),
            placeholders.join(", ")
        );
        let osql = format!(
            "INSERT INTO ownership (vehicle_id, role, {}) VALUES ({})",
            OWNER_COLS.join(", "),
            (1..=OWNER_COLS.len() + 2)
                .map(|i| format!("?{i}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let (mut vehicles, mut owners) = (0u64, 0u64);
        let mut in_tx = 0usize;
        conn.execute_batch("BEGIN")?;
        {
            let mut vst = conn.prepare(&vsql)?;
            let mut ost = conn.prepare(&osql)?;
            for b in rx.iter() {
                for (i, v) in b.vehicles.iter().enumerate() {
                    vst.raw_bind_parameter(1, b.ids[i] as i64)?;
                    for (j, &(s, e)) in v.iter().enumerate() {
                        if s == e {
                            vst.raw_bind_parameter(j + 2, rusqlite::types::Null)?;
                        } else {
                            vst.raw_bind_parameter(j + 2, &b.text[s as usize..e as usize])?;
                        }
                    }
                    vst.raw_execute()?;
                }
                for o in &b.owners {
                    ost.raw_bind_parameter(1, o.vehicle as i64)?;
                    ost.raw_bind_parameter(2, o.role)?;
                    for (j, &(s, e)) in o.fields.iter().enumerate() {
                        if s == e {
                            ost.raw_bind_parameter(j + 3, rusqlite::types::Null)?;
                        } else {
                            ost.raw_bind_parameter(j + 3, &b.text[s as usize..e as usize])?;
                        }
                    }
                    ost.raw_execute()?;
                }
                vehicles += b.vehicles.len() as u64;
                owners += b.owners.len() as u64;
                progress(vehicles);
                in_tx += 1;
                if in_tx == BATCHES_PER_TX {
                    conn.execute_batch("COMMIT; BEGIN")?;
                    in_tx = 0;
                }
            }
        }
        conn.execute_batch("COMMIT")?;
        Ok((vehicles, owners))
    })();
    // Dropping the receiver (on error) makes the maker stop.
    let orgs = maker
        .join()
        .map_err(|_| RegisterError::Worker("panicked".into()))?;
    let (vehicles, ownerships) = write?;
    if vehicles != total {
        return Err(RegisterError::Worker(format!(
            "made {vehicles} of {total} vehicles"
        )));
    }
    let load_seconds = started.elapsed().as_secs_f64();

    let t = Instant::now();
    conn.execute_batch(schema::INDEXES)?;
    let index_seconds = t.elapsed().as_secs_f64();
    let generated_at = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let as_of = format!("{:04}{:02}{:02}", AS_OF.0, AS_OF.1, AS_OF.2);
    {
        let mut st =
            conn.prepare("INSERT OR REPLACE INTO register_meta (key, value) VALUES (?1, ?2)")?;
        for (k, v) in [
            ("source", "generated".to_string()),
            ("seed", opts.seed.to_string()),
            ("vehicles", vehicles.to_string()),
            ("ownerships", ownerships.to_string()),
            ("as_of", as_of),
            ("generated_at", generated_at),
        ] {
            st.execute([k, v.as_str()])?;
        }
    }
    conn.execute_batch("PRAGMA analysis_limit = 1000; ANALYZE;")?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(GenerateSummary {
        vehicles,
        ownerships,
        organisations: orgs,
        load_seconds,
        index_seconds,
        total_seconds: started.elapsed().as_secs_f64(),
    })
}

// ---------------------------------------------------------------------------------------
// Batches: all text of a batch lives in one String; fields are (start, end) ranges, empty
// range = NULL.

type Range = (u32, u32);

/// Ownership columns after `vehicle_id, role`, in insert order.
const OWNER_COLS: [&str; 15] = [
    "national_id",
    "first_name",
    "middle_name",
    "last_name",
    "birth_date",
    "org_number",
    "org_name",
    "address",
    "postal_code",
    "postal_place",
    "municipality",
    "country_code",
    "from_date",
    "to_date",
    "id",
];
// `id` is last so that every column can be bound by position; it is left NULL (automatic).
const O_NID: usize = 0;
const O_FIRST: usize = 1;
const O_MIDDLE: usize = 2;
const O_LAST: usize = 3;
const O_BIRTH: usize = 4;
const O_ORGNR: usize = 5;
const O_ORGNAME: usize = 6;
const O_ADDR: usize = 7;
const O_POSTNR: usize = 8;
const O_POSTSTED: usize = 9;
const O_KOMMUNE: usize = 10;
const O_LAND: usize = 11;
const O_FROM: usize = 12;
const O_TO: usize = 13;

struct OwnerRow {
    vehicle: u64,
    role: &'static str,
    fields: [Range; 15],
}

struct Batch {
    text: String,
    ids: Vec<u64>,
    vehicles: Vec<[Range; 85]>,
    owners: Vec<OwnerRow>,
}

impl Batch {
    fn with_capacity(n: usize) -> Batch {
        Batch {
            text: String::with_capacity(n * 700),
            ids: Vec::with_capacity(n),
            vehicles: Vec::with_capacity(n),
            owners: Vec::with_capacity(n * 3 / 2),
        }
    }
    /// Appends `s` and returns its range.
    fn put(&mut self, s: &str) -> Range {
        let a = self.text.len() as u32;
        self.text.push_str(s);
        (a, self.text.len() as u32)
    }
    fn put_fmt(&mut self, args: std::fmt::Arguments) -> Range {
        use std::fmt::Write;
        let a = self.text.len() as u32;
        let _ = self.text.write_fmt(args);
        (a, self.text.len() as u32)
    }
    fn put_date(&mut self, day: i32) -> Range {
        let (y, m, d) = civil(day);
        self.put_fmt(format_args!("{y:04}{m:02}{d:02}"))
    }
}

// ---------------------------------------------------------------------------------------
// Dates as day numbers since 1970-01-01 (proleptic Gregorian).

/// Days since 1970-01-01 of a civil date.
fn days(y: i32, m: u32, d: u32) -> i32 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i32;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i32 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day number.
fn civil(z: i32) -> (i32, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn year_of(day: i32) -> i32 {
    civil(day).0
}

fn as_of() -> i32 {
    days(AS_OF.0, AS_OF.1, AS_OF.2)
}

// ---------------------------------------------------------------------------------------
// Technical-field indexes (positions in catalog::TECHNICAL; checked by a test).

const KJM: usize = 0;
const KJM_PERSJ: usize = 1;
const KJM_FARGE: usize = 2;
const UNR: usize = 3;
const REG_F_G: usize = 4;
const REG_F_G_N: usize = 5;
const REG_EIERSKIFTE: usize = 6;
const REG_EIER: usize = 7;
const AVREG: usize = 8;
const VRAKET: usize = 9;
const UTFORT: usize = 10;
const REG_STATUS: usize = 11;
const BRUKTIMP: usize = 12;
const MERKE: usize = 13;
const MERKENAVN: usize = 14;
const MODELL: usize = 15;
const TKNAVN: usize = 16;
const TUK: usize = 17;
const KJTGRP: usize = 18;
const MOTORKODE: usize = 19;
const MOTORYTELSE: usize = 20;
const SLAGVOLUM: usize = 21;
const DRIVST: usize = 22;
const GIRKASSE: usize = 23;
const HYBRID: usize = 24;
const HYBRID_KAT: usize = 25;
const TOTVEKT: usize = 26;
const EGENVEKT: usize = 27;
const VOGNTOGVEKT: usize = 28;
const TAKLAST: usize = 29;
const THV_M: usize = 30;
const THV_U: usize = 31;
const BEL_H: usize = 32;
const LENGDE: usize = 33;
const BREDDE: usize = 34;
const DORER: usize = 35;
const FARGE: usize = 36;
const PABYGG: usize = 37;
const SETER_FORAN: usize = 38;
const SETER_TOT: usize = 39;
const AKSLER: usize = 40;
const AKSLER_DRIFT: usize = 41;
const DEKK_1: usize = 44;
const DEKK_2: usize = 45;
const FELG_1: usize = 48;
const FELG_2: usize = 49;
const MILI_1: usize = 51;
const MILI_2: usize = 52;
const HAST_1: usize = 54;
const HAST_2: usize = 55;
const INNP_1: usize = 57;
const INNP_2: usize = 58;
const SPOR_1: usize = 60;
const SPOR_2: usize = 61;
const LAST_1: usize = 63;
const LAST_2: usize = 64;
const NGN: usize = 69;
const EU_HOVED: usize = 70;
const EURONORM: usize = 71;
const EU_TYPE: usize = 72;
const EU_VARIANT: usize = 73;
const EU_VERSJON: usize = 74;
const SISTE_PKK: usize = 75;
const NESTE_PKK: usize = 76;
const STANDSTOY: usize = 77;
const PARTIKKELFILTER: usize = 78;
const NOX_MG: usize = 79;
const NOX_G: usize = 80;
const PARTIKKEL: usize = 81;
const MAALEMETODE: usize = 82;
const CO2: usize = 83;
const FORBRUK: usize = 84;

// ---------------------------------------------------------------------------------------
// Vehicle kinds, makes and models.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Car,
    Van,
    Camper,
    Truck,
    Bus,
    Trailer,
    Caravan,
    HeavyTrailer,
    Motorcycle,
    Moped,
    Tractor,
}

/// Share of each kind in the whole register (registered, deregistered and scrapped).
const KINDS: [(Kind, u32); 11] = [
    (Kind::Car, 560),
    (Kind::Van, 95),
    (Kind::Camper, 15),
    (Kind::Truck, 20),
    (Kind::Bus, 5),
    (Kind::Trailer, 150),
    (Kind::Caravan, 25),
    (Kind::HeavyTrailer, 10),
    (Kind::Motorcycle, 55),
    (Kind::Moped, 25),
    (Kind::Tractor, 40),
];

/// A make with its weight, VIN manufacturer prefix and models:
/// (code, name, weight, WMI, models, electric models).
type Make = (
    &'static str,
    &'static str,
    u32,
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
);

const CAR_MAKES: &[Make] = &[
    (
        "5480",
        "TOYOTA",
        140,
        "JTD",
        &[
            "COROLLA",
            "YARIS",
            "RAV4",
            "AVENSIS",
            "AURIS",
            "PRIUS",
            "LAND CRUISER",
            "C-HR",
            "CARINA II DX",
            "HIACE",
        ],
        &["BZ4X", "PROACE CITY VERSO EV"],
    ),
    (
        "5750",
        "VOLKSWAGEN",
        130,
        "WVW",
        &[
            "GOLF", "PASSAT", "POLO", "TIGUAN", "TOURAN", "SHARAN", "T-ROC", "UP!",
        ],
        &["ID.3", "ID.4", "E-GOLF", "ID.5", "ID.BUZZ", "E-UP!"],
    ),
    (
        "5800",
        "VOLVO",
        85,
        "YV1",
        &[
            "V70", "V60", "XC60", "XC90", "V90", "S60", "V40", "240", "740", "XC40",
        ],
        &["XC40 RECHARGE", "EX30", "C40 RECHARGE", "EX90"],
    ),
    (
        "4360",
        "TESLA",
        0,
        "5YJ",
        &[],
        &["MODEL 3", "MODEL Y", "MODEL S", "MODEL X"],
    ),
    (
        "1400",
        "BMW",
        35,
        "WBA",
        &["320D", "520D", "X5", "X3", "118I", "330E"],
        &["I3", "IX3", "IX", "I4", "IX1"],
    ),
    (
        "1230",
        "AUDI",
        35,
        "WAU",
        &["A4", "A6", "A3", "Q5", "Q7", "A4 AVANT"],
        &["E-TRON", "Q4 E-TRON", "Q8 E-TRON", "E-TRON GT"],
    ),
    (
        "3900",
        "MERCEDES-BENZ",
        40,
        "WDD",
        &[
            "E 220 D",
            "C 200",
            "A 180",
            "GLC 300 E",
            "E200T",
            "280 SE 4,5",
        ],
        &["EQC", "EQA", "EQB", "EQE", "EQS"],
    ),
    (
        "2000",
        "NISSAN",
        35,
        "SJN",
        &["QASHQAI", "X-TRAIL", "MICRA", "PRIMERA", "ALMERA", "NOTE"],
        &["LEAF", "ARIYA", "E-NV200 EVALIA"],
    ),
    (
        "2600",
        "FORD",
        45,
        "WF0",
        &[
            "FOCUS", "MONDEO", "FIESTA", "S-MAX", "KUGA", "ESCORT", "SIERRA",
        ],
        &["MUSTANG MACH-E", "EXPLORER"],
    ),
    (
        "5150",
        "SKODA",
        40,
        "TMB",
        &["OCTAVIA", "SUPERB", "FABIA", "KODIAQ", "KAROQ"],
        &["ENYAQ", "ENYAQ COUPE", "ELROQ"],
    ),
    (
        "4500",
        "PEUGEOT",
        30,
        "VF3",
        &["208", "308", "3008", "307", "206", "5008"],
        &["E-208", "E-2008", "E-308"],
    ),
    (
        "3390",
        "HYUNDAI",
        25,
        "KMH",
        &["I30", "TUCSON", "SANTA FE", "I20", "GALLOPER"],
        &["KONA ELECTRIC", "IONIQ 5", "IONIQ ELECTRIC", "IONIQ 6"],
    ),
    (
        "3450",
        "KIA",
        25,
        "KNA",
        &["CEED", "SPORTAGE", "SORENTO", "RIO", "PICANTO"],
        &["E-NIRO", "EV6", "E-SOUL", "EV9", "EV3"],
    ),
    (
        "3930",
        "MAZDA",
        25,
        "JMZ",
        &["6", "3", "CX-5", "323 LX", "626"],
        &["MX-30"],
    ),
    (
        "4010",
        "MITSUBISHI",
        25,
        "JMB",
        &["OUTLANDER", "SPACE STAR", "LANCER", "PAJERO", "ASX", "COLT"],
        &["I-MIEV"],
    ),
    (
        "5260",
        "SUBARU",
        15,
        "JF1",
        &["FORESTER", "OUTBACK", "LEGACY", "XV", "IMPREZA"],
        &["SOLTERRA"],
    ),
    (
        "4800",
        "RENAULT",
        20,
        "VF1",
        &["CLIO", "MEGANE", "SCENIC", "LAGUNA", "CAPTUR"],
        &["ZOE", "MEGANE E-TECH", "SCENIC E-TECH"],
    ),
    (
        "4350",
        "OPEL",
        30,
        "W0L",
        &[
            "ASTRA",
            "CORSA",
            "ZAFIRA",
            "VECTRA",
            "ASTRA-G-CARAVAN",
            "INSIGNIA",
        ],
        &["AMPERA-E", "CORSA-E", "MOKKA-E"],
    ),
    (
        "1750",
        "CITROEN",
        20,
        "VF7",
        &["C4", "C3", "C5", "XSARA PICASSO", "BERLINGO"],
        &["E-C4", "E-BERLINGO"],
    ),
    (
        "7740",
        "HONDA",
        12,
        "SHH",
        &["CIVIC", "ACCORD", "CR-V", "JAZZ"],
        &["E", "E:NY1"],
    ),
    (
        "8380",
        "SUZUKI",
        10,
        "TSM",
        &["SWIFT", "VITARA", "SX4", "IGNIS"],
        &[],
    ),
    (
        "0945",
        "POLESTAR",
        0,
        "LPS",
        &[],
        &["POLESTAR 2", "POLESTAR 3", "POLESTAR 4"],
    ),
    (
        "0628",
        "BYD",
        0,
        "LC0",
        &[],
        &["ATTO 3", "TANG", "HAN", "DOLPHIN", "SEAL"],
    ),
    (
        "4000",
        "MG",
        0,
        "LSJ",
        &[],
        &["ZS EV", "MG4", "MARVEL R", "MG5"],
    ),
    (
        "4700",
        "PORSCHE",
        4,
        "WP0",
        &["CAYENNE", "911", "MACAN", "PANAMERA"],
        &["TAYCAN", "MACAN ELECTRIC"],
    ),
    (
        "4953",
        "LAND ROVER",
        5,
        "SAL",
        &["RANGE ROVER", "DISCOVERY", "DEFENDER", "FREELANDER"],
        &[],
    ),
    (
        "3400",
        "JAGUAR",
        2,
        "SAJ",
        &["XF", "XE", "F-PACE"],
        &["I-PACE"],
    ),
    (
        "5090",
        "SEAT",
        8,
        "VSS",
        &["LEON", "IBIZA", "ALHAMBRA", "ATECA"],
        &["MII ELECTRIC"],
    ),
    (
        "2450",
        "FIAT",
        8,
        "ZFA",
        &["PUNTO", "500", "TIPO", "DOBLO"],
        &["500E"],
    ),
    (
        "3290",
        "DACIA",
        4,
        "UU1",
        &["DUSTER", "SANDERO", "LOGAN"],
        &["SPRING"],
    ),
    (
        "5481",
        "LEXUS",
        4,
        "JTH",
        &["RX 450H", "NX 300H", "IS 300H", "CT 200H"],
        &["UX 300E", "RZ 450E"],
    ),
    (
        "3690",
        "MINI",
        3,
        "WMW",
        &["COOPER", "COUNTRYMAN"],
        &["COOPER SE"],
    ),
    (
        "3510",
        "JEEP",
        3,
        "1J4",
        &["GRAND CHEROKEE", "WRANGLER", "CHEROKEE"],
        &["AVENGER"],
    ),
    (
        "5000",
        "SAAB",
        10,
        "YS3",
        &["9-3", "9-5", "900", "SAAB 99"],
        &[],
    ),
    ("3910", "SMART", 1, "WME", &["FORTWO"], &["FORTWO EQ", "#1"]),
    (
        "1650",
        "CHEVROLET",
        4,
        "1G1",
        &["CAMARO", "MATIZ", "LACETTI"],
        &["BOLT"],
    ),
    ("4070", "LADA", 2, "XTA", &["NIVA", "2107", "SAMARA"], &[]),
    ("5610", "VAZ", 1, "XTA", &["SAMARA 1300", "2101"], &[]),
    (
        "2002",
        "DATSUN",
        2,
        "JN1",
        &["120Y", "SUNNY", "CHERRY"],
        &[],
    ),
    (
        "1100",
        "ALFA ROMEO",
        2,
        "ZAR",
        &["156", "159", "GIULIETTA"],
        &[],
    ),
    (
        "0483",
        "GENESIS",
        0,
        "KMT",
        &[],
        &["GV60", "GV70 ELECTRIFIED"],
    ),
    ("0256", "DS", 0, "VR1", &[], &["DS 3 E-TENSE"]),
];
/// Electric-car make weights (code, weight); models come from `CAR_MAKES`.
const EV_MAKES: &[(&str, u32)] = &[
    ("4360", 300),
    ("5750", 150),
    ("5480", 40),
    ("2000", 60),
    ("3390", 45),
    ("3450", 45),
    ("1230", 45),
    ("1400", 40),
    ("0945", 35),
    ("5150", 40),
    ("5800", 40),
    ("4000", 25),
    ("0628", 15),
    ("2600", 20),
    ("3900", 20),
    ("4800", 15),
    ("4500", 10),
    ("4350", 5),
    ("4700", 6),
    ("4010", 3),
    ("3400", 3),
    ("7740", 1),
    ("5090", 2),
    ("1750", 3),
    ("3290", 2),
    ("5481", 2),
    ("3690", 2),
    ("3910", 1),
    ("1650", 1),
    ("0483", 2),
    ("0256", 1),
    ("2450", 2),
    ("5260", 1),
    ("3510", 1),
    ("3930", 1),
];
const VAN_MAKES: &[Make] = &[
    (
        "5750",
        "VOLKSWAGEN",
        40,
        "WV1",
        &["TRANSPORTER", "CADDY", "CRAFTER", "AMAROK"],
        &["ID.BUZZ CARGO", "E-CRAFTER"],
    ),
    (
        "5480",
        "TOYOTA",
        30,
        "JTF",
        &["HIACE", "PROACE", "HILUX", "LAND CRUISER"],
        &["PROACE ELECTRIC"],
    ),
    (
        "2600",
        "FORD",
        20,
        "WF0",
        &["TRANSIT", "TRANSIT CUSTOM", "RANGER", "TRANSIT CONNECT"],
        &["E-TRANSIT"],
    ),
    (
        "3900",
        "MERCEDES-BENZ",
        15,
        "WDB",
        &["SPRINTER", "VITO"],
        &["EVITO", "ESPRINTER"],
    ),
    (
        "4500",
        "PEUGEOT",
        10,
        "VF3",
        &["PARTNER", "EXPERT", "BOXER"],
        &["E-EXPERT", "E-PARTNER"],
    ),
    (
        "1750",
        "CITROEN",
        8,
        "VF7",
        &["BERLINGO", "JUMPY", "JUMPER"],
        &["E-BERLINGO VAN", "E-JUMPY"],
    ),
    (
        "4800",
        "RENAULT",
        8,
        "VF1",
        &["KANGOO", "TRAFIC", "MASTER"],
        &["KANGOO Z.E.", "MASTER Z.E."],
    ),
    (
        "2000",
        "NISSAN",
        6,
        "VSK",
        &["NAVARA", "NV200", "PRIMASTAR"],
        &["E-NV200"],
    ),
    (
        "4350",
        "OPEL",
        5,
        "W0L",
        &["VIVARO", "COMBO", "MOVANO"],
        &["VIVARO-E"],
    ),
    (
        "0747",
        "MAXUS",
        0,
        "LSF",
        &[],
        &["E DELIVER 3", "E DELIVER 9"],
    ),
    ("4010", "MITSUBISHI", 6, "MMB", &["L200"], &[]),
    ("3240", "ISUZU", 3, "MPA", &["D-MAX"], &[]),
    ("3310", "IVECO", 4, "ZCF", &["DAILY"], &["EDAILY"]),
    (
        "2450",
        "FIAT",
        4,
        "ZFA",
        &["DOBLO", "DUCATO", "SCUDO"],
        &["E-DUCATO"],
    ),
];
const TRUCK_MAKES: &[Make] = &[
    (
        "5800",
        "VOLVO",
        35,
        "YV2",
        &["FH", "FM", "FL", "FMX"],
        &["FH ELECTRIC", "FL ELECTRIC"],
    ),
    (
        "5040",
        "SCANIA",
        30,
        "YS2",
        &["R 450", "G 410", "P 280", "S 500"],
        &["25 P BEV"],
    ),
    (
        "3900",
        "MERCEDES-BENZ",
        12,
        "WDB",
        &["ACTROS", "AROCS", "ATEGO"],
        &["EACTROS"],
    ),
    ("3870", "MAN", 10, "WMA", &["TGX", "TGS", "TGL"], &["ETGM"]),
    ("1850", "DAF", 6, "XLR", &["XF", "CF", "LF"], &[]),
    ("3310", "IVECO", 4, "WJM", &["STRALIS", "EUROCARGO"], &[]),
];
const BUS_MAKES: &[Make] = &[
    (
        "5800",
        "VOLVO",
        40,
        "YV3",
        &["B8R", "B12B", "8900"],
        &["BZL ELECTRIC", "7900 ELECTRIC"],
    ),
    (
        "5040",
        "SCANIA",
        30,
        "YS4",
        &["K 360", "CITYWIDE", "TOURING"],
        &["CITYWIDE BEV"],
    ),
    (
        "3900",
        "MERCEDES-BENZ",
        20,
        "WEB",
        &["CITARO", "TOURISMO", "SPRINTER"],
        &["ECITARO"],
    ),
    (
        "3870",
        "MAN",
        10,
        "WMA",
        &["LIONS CITY", "LIONS COACH"],
        &["LIONS CITY E"],
    ),
];
const CAMPER_MAKES: &[Make] = &[
    (
        "3520",
        "HYMER",
        20,
        "ZFA",
        &["B-KLASSE", "EXSIS", "ML-T"],
        &[],
    ),
    (
        "0870",
        "DETHLEFFS",
        15,
        "ZFA",
        &["TREND", "GLOBEBUS", "PULSE"],
        &[],
    ),
    (
        "0460",
        "KNAUS",
        15,
        "ZFA",
        &["SUN TI", "VAN TI", "BOXSTAR"],
        &[],
    ),
    (
        "0320",
        "ADRIA",
        15,
        "ZFA",
        &["CORAL", "MATRIX", "TWIN"],
        &[],
    ),
    ("1970", "FRANKIA", 5, "ZFA", &["I 7400", "T 7400"], &[]),
    ("2450", "FIAT", 20, "ZFA", &["DUCATO"], &[]),
    (
        "1410",
        "KABE",
        10,
        "WDB",
        &["TRAVEL MASTER", "IMPERIAL"],
        &[],
    ),
];
const TRAILER_MAKES: &[Make] = &[
    (
        "0490",
        "BRENDERUP",
        30,
        "UH2",
        &["1205 S", "2260 S", "3205 S", "4310 S", "-"],
        &[],
    ),
    ("1140", "TYSSE", 15, "YT1", &["-"], &[]),
    ("1190", "GAUPEN", 15, "YXA", &["-"], &[]),
    (
        "1115",
        "ANSSEMS",
        12,
        "XLT",
        &["GT 750", "BSX 750", "PSX 1350", "-"],
        &[],
    ),
    ("1760", "VARIANT", 8, "YT5", &["-"], &[]),
    ("1204", "HAPERT", 6, "XLH", &["AZURE", "COBALT", "-"], &[]),
    (
        "3090",
        "HUMBAUR",
        6,
        "WHD",
        &["HA 752513", "STEELY", "-"],
        &[],
    ),
    (
        "2620",
        "IFOR WILLIAMS",
        4,
        "SCK",
        &["LM105", "TT3621", "-"],
        &[],
    ),
    ("3110", "RESPO", 4, "XMR", &["-"], &[]),
    ("0507", "STEMA", 4, "WST", &["OPT 750", "-"], &[]),
    ("2710", "NIEWIADOW", 3, "SWN", &["B750", "-"], &[]),
];
const CARAVAN_MAKES: &[Make] = &[
    (
        "1020",
        "HOBBY",
        25,
        "WHB",
        &["560 UL", "495 UL", "650 UMFE", "DE LUXE"],
        &[],
    ),
    (
        "5390",
        "TABBERT",
        15,
        "WTA",
        &["DA VINCI", "ROSSINI", "PUCCINI"],
        &[],
    ),
    ("0460", "KNAUS", 10, "WKN", &["SPORT 500", "SUDWIND"], &[]),
    (
        "0320",
        "ADRIA",
        15,
        "VLU",
        &["ALTEA", "ADORA", "ALPINA"],
        &[],
    ),
    (
        "1410",
        "KABE",
        15,
        "YV9",
        &["ROYAL 560", "SMARAGD", "BRILLIANT"],
        &[],
    ),
    (
        "5190",
        "SOLIFER",
        10,
        "YSF",
        &["5502 I", "ARTIC", "POLAR"],
        &[],
    ),
    (
        "0780",
        "POLAR",
        8,
        "YT5",
        &["520 CTH", "590 TR", "630"],
        &[],
    ),
    (
        "0870",
        "DETHLEFFS",
        10,
        "WDF",
        &["CAMPER", "NOMAD", "BEDUIN"],
        &[],
    ),
];
const HEAVY_TRAILER_MAKES: &[Make] = &[
    (
        "3140",
        "SCHMITZ CARGOBULL",
        30,
        "WSM",
        &["SKO 24", "S.KO", "SCS 24"],
        &[],
    ),
    ("1810", "KRONE", 20, "WKE", &["SD", "PROFI LINER"], &[]),
    ("1560", "NARKO", 20, "YN1", &["3TH", "4DT"], &[]),
    ("0140", "KILAFORS", 10, "YK1", &["SKAPHENGER", "-"], &[]),
    ("0480", "ISTRAIL", 10, "YI1", &["-"], &[]),
    ("0667", "FLIEGL", 10, "WF9", &["DTS", "ASW"], &[]),
];
const MC_MAKES: &[Make] = &[
    (
        "7660",
        "HARLEY-DAVIDSON",
        20,
        "1HD",
        &["SPORTSTER", "ELECTRA GLIDE", "FAT BOY", "ROAD KING"],
        &["LIVEWIRE"],
    ),
    (
        "8550",
        "YAMAHA",
        20,
        "JYA",
        &["MT-07", "XJ 900", "TENERE 700", "R1"],
        &[],
    ),
    (
        "7740",
        "HONDA",
        20,
        "JH2",
        &["CBR 600", "AFRICA TWIN", "GOLD WING", "CB 500"],
        &[],
    ),
    (
        "7970",
        "KAWASAKI",
        12,
        "JKA",
        &["Z900", "VERSYS 650", "NINJA"],
        &[],
    ),
    (
        "8380",
        "SUZUKI",
        10,
        "JS1",
        &["V-STROM 650", "GSX-R", "BANDIT"],
        &[],
    ),
    (
        "1400",
        "BMW",
        15,
        "WB1",
        &["R 1250 GS", "R 1200 RT", "F 800 GS"],
        &["CE 04"],
    ),
    (
        "6350",
        "KTM",
        8,
        "VBK",
        &["390 DUKE", "1290 SUPER ADVENTURE", "EXC 300"],
        &[],
    ),
    (
        "7440",
        "DUCATI",
        6,
        "ZDM",
        &["MONSTER", "MULTISTRADA", "PANIGALE"],
        &[],
    ),
    (
        "5500",
        "TRIUMPH",
        6,
        "SMT",
        &["BONNEVILLE", "TIGER 800", "STREET TRIPLE"],
        &[],
    ),
    (
        "7780",
        "HUSQVARNA",
        3,
        "VBK",
        &["701 ENDURO", "SVARTPILEN"],
        &[],
    ),
    ("6520", "APRILIA", 2, "ZD4", &["TUONO", "RS 660"], &[]),
    (
        "8320",
        "ROYAL ENFIELD",
        2,
        "ME3",
        &["BULLET 500", "HIMALAYAN"],
        &[],
    ),
    ("6980", "DAELIM", 1, "KMY", &["VJ125", "DAYSTAR"], &[]),
];
const MOPED_MAKES: &[Make] = &[
    (
        "8522",
        "PIAGGIO",
        20,
        "ZAP",
        &["ZIP", "TYPHOON", "LIBERTY"],
        &["1"],
    ),
    (
        "8523",
        "VESPA",
        15,
        "ZAP",
        &["PRIMAVERA", "SPRINT", "LX 50"],
        &["ELETTRICA"],
    ),
    (
        "8550",
        "YAMAHA",
        15,
        "VG5",
        &["AEROX", "NEOS", "BWS"],
        &["NEO'S"],
    ),
    (
        "4500",
        "PEUGEOT",
        10,
        "VGA",
        &["KISBEE", "SPEEDFIGHT", "VIVACITY"],
        &[],
    ),
    ("6730", "KYMCO", 10, "RFB", &["AGILITY", "SUPER 8"], &[]),
    ("6710", "SYM", 8, "RFG", &["ORBIT", "JET 4"], &[]),
    ("6930", "BETA", 5, "ZD3", &["RR 50"], &[]),
    ("6520", "APRILIA", 5, "ZD4", &["SR 50", "RS 50"], &[]),
];
const TRACTOR_MAKES: &[Make] = &[
    (
        "9240",
        "MASSEY-FERGUSON",
        25,
        "",
        &["35", "135", "240", "5713", "6713"],
        &[],
    ),
    (
        "9380",
        "JOHN DEERE",
        15,
        "",
        &["6120M", "6R 150", "2140"],
        &[],
    ),
    ("8670", "VALTRA", 15, "", &["N174", "T234", "A95"], &[]),
    ("1050", "FENDT", 8, "", &["516", "724 VARIO", "311"], &[]),
    (
        "8630",
        "NEW HOLLAND",
        8,
        "",
        &["T6.175", "T5.120", "TD5"],
        &[],
    ),
    ("9103", "CASE IH", 5, "", &["PUMA 165", "MAXXUM"], &[]),
    ("9161", "DEUTZ-FAHR", 5, "", &["AGROTRON 6190", "5110"], &[]),
    ("9150", "KUBOTA", 5, "", &["M7060", "L2501"], &[]),
    ("9720", "ZETOR", 4, "", &["7745", "PROXIMA"], &[]),
    ("9260", "FORD", 6, "", &["3000", "4000", "5000"], &[]),
    ("8690", "CLAAS", 3, "", &["ARION 430", "AXION"], &[]),
    ("5240", "STEYR", 1, "", &["PROFI 4130"], &[]),
];

/// Years a model was sold (first, last); models not listed fit any year.
const MODEL_YEARS: &[(&str, i32, i32)] = &[
    ("GOLF", 1974, 9999),
    ("PASSAT", 1973, 9999),
    ("POLO", 1975, 9999),
    ("TIGUAN", 2007, 9999),
    ("TOURAN", 2003, 9999),
    ("SHARAN", 1995, 2022),
    ("T-ROC", 2017, 9999),
    ("UP!", 2011, 2023),
    ("E-GOLF", 2014, 2020),
    ("ID.3", 2020, 9999),
    ("ID.4", 2021, 9999),
    ("ID.5", 2022, 9999),
    ("ID.BUZZ", 2022, 9999),
    ("E-UP!", 2013, 2023),
    ("COROLLA", 1966, 9999),
    ("YARIS", 1999, 9999),
    ("RAV4", 1994, 9999),
    ("AVENSIS", 1997, 2018),
    ("AURIS", 2006, 2018),
    ("PRIUS", 1997, 9999),
    ("C-HR", 2016, 9999),
    ("CARINA II DX", 1984, 1992),
    ("BZ4X", 2022, 9999),
    ("PROACE CITY VERSO EV", 2021, 9999),
    ("V70", 1996, 2016),
    ("V60", 2010, 9999),
    ("XC60", 2008, 9999),
    ("XC90", 2002, 9999),
    ("V90", 2016, 9999),
    ("S60", 2000, 9999),
    ("V40", 1995, 2019),
    ("240", 1974, 1993),
    ("740", 1984, 1992),
    ("XC40", 2017, 9999),
    ("XC40 RECHARGE", 2020, 9999),
    ("EX30", 2023, 9999),
    ("C40 RECHARGE", 2021, 9999),
    ("EX90", 2024, 9999),
    ("MODEL S", 2013, 9999),
    ("MODEL X", 2016, 9999),
    ("MODEL 3", 2019, 9999),
    ("MODEL Y", 2021, 9999),
    ("320D", 1985, 9999),
    ("520D", 1990, 9999),
    ("X5", 1999, 9999),
    ("X3", 2003, 9999),
    ("118I", 2004, 9999),
    ("330E", 2016, 9999),
    ("I3", 2013, 2022),
    ("IX3", 2021, 9999),
    ("IX", 2021, 9999),
    ("I4", 2021, 9999),
    ("IX1", 2022, 9999),
    ("A4", 1994, 9999),
    ("A6", 1994, 9999),
    ("A3", 1996, 9999),
    ("Q5", 2008, 9999),
    ("Q7", 2006, 9999),
    ("A4 AVANT", 1994, 9999),
    ("E-TRON", 2019, 9999),
    ("Q4 E-TRON", 2021, 9999),
    ("Q8 E-TRON", 2023, 9999),
    ("E-TRON GT", 2021, 9999),
    ("E 220 D", 1993, 9999),
    ("C 200", 1993, 9999),
    ("A 180", 1997, 9999),
    ("GLC 300 E", 2016, 9999),
    ("E200T", 1993, 2016),
    ("280 SE 4,5", 1968, 1973),
    ("EQC", 2019, 2023),
    ("EQA", 2021, 9999),
    ("EQB", 2022, 9999),
    ("EQE", 2022, 9999),
    ("EQS", 2021, 9999),
    ("QASHQAI", 2007, 9999),
    ("X-TRAIL", 2001, 9999),
    ("MICRA", 1982, 9999),
    ("PRIMERA", 1990, 2007),
    ("ALMERA", 1995, 2006),
    ("NOTE", 2006, 2017),
    ("LEAF", 2011, 9999),
    ("ARIYA", 2022, 9999),
    ("E-NV200 EVALIA", 2014, 2021),
    ("FOCUS", 1998, 9999),
    ("MONDEO", 1993, 2022),
    ("FIESTA", 1976, 2023),
    ("S-MAX", 2006, 2023),
    ("KUGA", 2008, 9999),
    ("ESCORT", 1968, 2000),
    ("SIERRA", 1982, 1993),
    ("MUSTANG MACH-E", 2021, 9999),
    ("EXPLORER", 2024, 9999),
    ("OCTAVIA", 1996, 9999),
    ("SUPERB", 2001, 9999),
    ("FABIA", 1999, 9999),
    ("KODIAQ", 2016, 9999),
    ("KAROQ", 2017, 9999),
    ("ENYAQ", 2021, 9999),
    ("ENYAQ COUPE", 2022, 9999),
    ("ELROQ", 2025, 9999),
    ("208", 2012, 9999),
    ("308", 2007, 9999),
    ("3008", 2009, 9999),
    ("307", 2001, 2008),
    ("206", 1998, 2012),
    ("5008", 2009, 9999),
    ("E-208", 2020, 9999),
    ("E-2008", 2020, 9999),
    ("E-308", 2023, 9999),
    ("I30", 2007, 9999),
    ("TUCSON", 2004, 9999),
    ("SANTA FE", 2000, 9999),
    ("I20", 2008, 9999),
    ("GALLOPER", 1991, 2003),
    ("KONA ELECTRIC", 2018, 9999),
    ("IONIQ 5", 2021, 9999),
    ("IONIQ ELECTRIC", 2016, 2022),
    ("IONIQ 6", 2022, 9999),
    ("CEED", 2006, 9999),
    ("SPORTAGE", 1993, 9999),
    ("SORENTO", 2002, 9999),
    ("RIO", 2000, 9999),
    ("PICANTO", 2004, 9999),
    ("E-NIRO", 2018, 9999),
    ("EV6", 2021, 9999),
    ("E-SOUL", 2014, 2022),
    ("EV9", 2023, 9999),
    ("EV3", 2024, 9999),
    ("6", 2002, 9999),
    ("3", 2003, 9999),
    ("CX-5", 2012, 9999),
    ("323 LX", 1977, 2003),
    ("626", 1979, 2002),
    ("MX-30", 2020, 9999),
    ("OUTLANDER", 2001, 9999),
    ("SPACE STAR", 1998, 9999),
    ("LANCER", 1973, 2017),
    ("PAJERO", 1982, 2021),
    ("ASX", 2010, 9999),
    ("COLT", 1962, 2012),
    ("I-MIEV", 2010, 2020),
    ("FORESTER", 1997, 9999),
    ("OUTBACK", 1994, 9999),
    ("LEGACY", 1989, 2020),
    ("XV", 2012, 9999),
    ("IMPREZA", 1992, 9999),
    ("SOLTERRA", 2022, 9999),
    ("CLIO", 1990, 9999),
    ("MEGANE", 1995, 2022),
    ("SCENIC", 1996, 2022),
    ("LAGUNA", 1994, 2015),
    ("CAPTUR", 2013, 9999),
    ("ZOE", 2013, 2024),
    ("MEGANE E-TECH", 2022, 9999),
    ("SCENIC E-TECH", 2024, 9999),
    ("ASTRA", 1991, 9999),
    ("CORSA", 1982, 9999),
    ("ZAFIRA", 1999, 2019),
    ("VECTRA", 1988, 2008),
    ("ASTRA-G-CARAVAN", 1998, 2004),
    ("INSIGNIA", 2008, 2022),
    ("AMPERA-E", 2017, 2020),
    ("CORSA-E", 2020, 9999),
    ("MOKKA-E", 2021, 9999),
    ("C4", 2004, 9999),
    ("C3", 2002, 9999),
    ("C5", 2001, 2017),
    ("XSARA PICASSO", 1999, 2010),
    ("BERLINGO", 1996, 9999),
    ("E-C4", 2021, 9999),
    ("E-BERLINGO", 2021, 9999),
    ("CIVIC", 1972, 9999),
    ("ACCORD", 1976, 2015),
    ("CR-V", 1995, 9999),
    ("JAZZ", 2001, 9999),
    ("E", 2020, 2024),
    ("E:NY1", 2023, 9999),
    ("SWIFT", 1983, 9999),
    ("VITARA", 1988, 9999),
    ("SX4", 2006, 2021),
    ("IGNIS", 2000, 9999),
    ("POLESTAR 2", 2020, 9999),
    ("POLESTAR 3", 2024, 9999),
    ("POLESTAR 4", 2024, 9999),
    ("ATTO 3", 2022, 9999),
    ("TANG", 2021, 9999),
    ("HAN", 2022, 9999),
    ("DOLPHIN", 2023, 9999),
    ("SEAL", 2023, 9999),
    ("ZS EV", 2019, 9999),
    ("MG4", 2022, 9999),
    ("MARVEL R", 2021, 2023),
    ("MG5", 2021, 9999),
    ("CAYENNE", 2002, 9999),
    ("MACAN", 2014, 9999),
    ("PANAMERA", 2009, 9999),
    ("TAYCAN", 2020, 9999),
    ("MACAN ELECTRIC", 2024, 9999),
    ("DEFENDER", 1983, 9999),
    ("DISCOVERY", 1989, 9999),
    ("FREELANDER", 1997, 2014),
    ("XF", 2008, 9999),
    ("XE", 2015, 9999),
    ("F-PACE", 2016, 9999),
    ("I-PACE", 2018, 9999),
    ("LEON", 1999, 9999),
    ("IBIZA", 1984, 9999),
    ("ALHAMBRA", 1996, 2020),
    ("ATECA", 2016, 9999),
    ("MII ELECTRIC", 2020, 2022),
    ("PUNTO", 1993, 2018),
    ("500", 2007, 9999),
    ("DOBLO", 2000, 9999),
    ("500E", 2021, 9999),
    ("DUSTER", 2010, 9999),
    ("SANDERO", 2008, 9999),
    ("LOGAN", 2004, 9999),
    ("SPRING", 2021, 9999),
    ("RX 450H", 2009, 9999),
    ("NX 300H", 2014, 2021),
    ("IS 300H", 2013, 9999),
    ("CT 200H", 2011, 2022),
    ("UX 300E", 2021, 9999),
    ("RZ 450E", 2023, 9999),
    ("COOPER", 2001, 9999),
    ("COUNTRYMAN", 2010, 9999),
    ("COOPER SE", 2020, 9999),
    ("GRAND CHEROKEE", 1992, 9999),
    ("WRANGLER", 1986, 9999),
    ("CHEROKEE", 1984, 9999),
    ("AVENGER", 2023, 9999),
    ("9-3", 1998, 2012),
    ("9-5", 1997, 2011),
    ("900", 1978, 1998),
    ("SAAB 99", 1968, 1984),
    ("FORTWO", 1998, 9999),
    ("FORTWO EQ", 2017, 2024),
    ("#1", 2023, 9999),
    ("MATIZ", 1998, 2010),
    ("LACETTI", 2003, 2009),
    ("BOLT", 2017, 2023),
    ("NIVA", 1977, 9999),
    ("2107", 1982, 2012),
    ("SAMARA", 1984, 2013),
    ("SAMARA 1300", 1984, 1997),
    ("2101", 1970, 1988),
    ("120Y", 1973, 1979),
    ("SUNNY", 1966, 1994),
    ("CHERRY", 1970, 1986),
    ("156", 1997, 2007),
    ("159", 2005, 2011),
    ("GIULIETTA", 2010, 2020),
    ("GV60", 2022, 9999),
    ("GV70 ELECTRIFIED", 2022, 9999),
    ("DS 3 E-TENSE", 2020, 9999),
];

/// Electric cars before the modern ones: (make code, make name, model).
const EARLY_EVS: [(&str, &str, &str); 2] =
    [("3560", "THINK", "CITY"), ("1184", "BUDDY", "CITY EL")];

/// Whether `model` was sold in `year` (unknown models always were).
fn model_sold(model: &str, year: i32) -> bool {
    MODEL_YEARS
        .iter()
        .find(|m| m.0 == model)
        .is_none_or(|&(_, from, to)| (from..=to).contains(&year))
}

/// Common colours: (code, weight).
const COLOURS: [(&str, u32); 13] = [
    ("01", 24),
    ("06", 19),
    ("05", 18),
    ("11", 10),
    ("03", 10),
    ("02", 7),
    ("04", 3),
    ("08", 2),
    ("07", 2),
    ("09", 1),
    ("10", 1),
    ("14", 1),
    ("99", 2),
];

/// Tyre sizes for cars: (tyre, rim, load index, speed index, press-in).
const CAR_TYRES: [(&str, &str, &str, &str, &str); 10] = [
    ("175/70 R 13", "5 J", "82", "T", "45"),
    ("185/65 R 15", "6 J", "88", "T", "39"),
    ("195/65R15", "6,5JX15", "91", "H", "50"),
    ("205/55R16", "6,5JX16", "91", "V", "50"),
    ("215/55R17", "7JX17", "94", "V", "45"),
    ("225/45R18", "8JX18", "95", "W", "45"),
    ("235/45R18", "8JX18", "98", "W", "40"),
    ("235/55R19", "8JX19", "105", "V", "40"),
    ("255/45R19", "8,5JX19", "104", "W", "45"),
    ("255/40R20", "9JX20", "101", "W", "37"),
];

const PLATE_LETTERS: &[u8] = b"ABCDEFGHJKLNPRSTUVXYZ";
const VIN_CHARS: &[u8] = b"ABCDEFGHJKLMNPRSTUVWXYZ0123456789";
const VIN_YEARS: &[u8] = b"ABCDEFGHJKLMNPRSTVWXY123456789";
const PERSONAL_PLATES: [&str; 16] = [
    "TESLA", "BESTE", "MAMMA", "PAPPA", "OLA", "KARI", "RASK", "LYN", "VIKING", "NORGE", "FJORD",
    "ELBIL", "BOSS", "TROLL", "OLDEFAR", "BLUES",
];

// ---------------------------------------------------------------------------------------
// The row maker.

#[derive(Clone, Copy, PartialEq, Eq)]
enum Fuel {
    Petrol,
    Diesel,
    Electric,
    /// Plug-in hybrid (off-vehicle charging).
    PluginHybrid,
    /// Full hybrid (not chargeable).
    Hybrid,
    None,
}

/// A pooled organisation (owners of fleets, leasing companies).
struct Org {
    number: String,
    name: String,
    address: String,
    place: (usize, usize),
}

/// The deterministic maker of rows.
struct Maker {
    rng: Pcg64,
    refd: &'static RefData,
    place_cum: Vec<u32>,
    orgs: Vec<Org>,
    lessors: Vec<Org>,
    all_makes: Vec<(String, String)>,
    used5: Bitset,
    used4: Bitset,
    used_old: Bitset,
    today: i32,
}

struct Bitset(Vec<u64>);
impl Bitset {
    fn new(bits: usize) -> Bitset {
        Bitset(vec![0; bits.div_ceil(64)])
    }
    /// Sets a bit; false if it was already set.
    fn insert(&mut self, i: usize) -> bool {
        let (w, b) = (i / 64, 1u64 << (i % 64));
        let was = self.0[w] & b != 0;
        self.0[w] |= b;
        !was
    }
}

fn pick_weighted<T: Copy>(rng: &mut Pcg64, items: &[(T, u32)]) -> T {
    let total: u32 = items.iter().map(|i| i.1).sum();
    let mut r = rng.gen_range(0..total);
    for &(t, w) in items {
        if r < w {
            return t;
        }
        r -= w;
    }
    items[items.len() - 1].0
}

fn pick_make<'a>(rng: &mut Pcg64, makes: &'a [Make]) -> &'a Make {
    let total: u32 = makes.iter().map(|m| m.2).sum();
    let mut r = rng.gen_range(0..total.max(1));
    for m in makes {
        if r < m.2 {
            return m;
        }
        r -= m.2;
    }
    &makes[0]
}

fn pick<'a, T>(rng: &mut Pcg64, items: &'a [T]) -> &'a T {
    &items[rng.gen_range(0..items.len())]
}

/// Share of electric cars among new registrations in a year (Norway, rounded).
fn ev_share(year: i32) -> f64 {
    match year {
        ..=2010 => 0.002,
        2011..=2012 => 0.03,
        2013 => 0.06,
        2014 => 0.12,
        2015 => 0.17,
        2016 => 0.16,
        2017 => 0.21,
        2018 => 0.31,
        2019 => 0.42,
        2020 => 0.54,
        2021 => 0.65,
        2022 => 0.79,
        2023 => 0.82,
        2024 => 0.89,
        _ => 0.95,
    }
}

impl Maker {
    fn new(seed: u64, vehicles: u64) -> Maker {
        let mut rng = Pcg64::seed_from_u64(seed);
        let refd = refdata();
        let mut acc = 0;
        let place_cum = refd
            .places
            .iter()
            .map(|m| {
                acc += m.weight;
                acc
            })
            .collect();
        let all_makes = schema::parse_code_csv(schema::CODE_TABLES[0].1)
            .into_iter()
            .filter(|(c, n)| c.len() == 4 && !n.is_empty() && !n.contains(['¤', '\r', '\n']))
            .collect();
        let mut m = Maker {
            rng: Pcg64::seed_from_u64(0),
            refd,
            place_cum,
            orgs: Vec::new(),
            lessors: Vec::new(),
            all_makes,
            used5: Bitset::new(26 * 26 * 100_000),
            used4: Bitset::new(26 * 26 * 10_000),
            used_old: Bitset::new(26 * 10_000 + 26 * 1_000 + 1_000_000),
            today: as_of(),
        };
        // Organisation pool first, from its own stream, so fleet owners are stable.
        m.rng = Pcg64::seed_from_u64(seed ^ 0x6f72_6773);
        let mut numbers = HashSet::new();
        let n_orgs = (vehicles / 40).clamp(50, 200_000) as usize;
        for i in 0..n_orgs + 40 {
            let lessor = i >= n_orgs;
            let org = m.org(&mut numbers, lessor);
            if lessor {
                m.lessors.push(org);
            } else {
                m.orgs.push(org);
            }
        }
        std::mem::swap(&mut m.rng, &mut rng);
        m
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.gen_bool(p.clamp(0.0, 1.0))
    }

    fn place(&mut self) -> (usize, usize) {
        let total = *self.place_cum.last().unwrap_or(&1);
        let r = self.rng.gen_range(0..total);
        let i = self.place_cum.partition_point(|&c| c <= r);
        let j = self.rng.gen_range(0..self.refd.places[i].postal.len());
        (i, j)
    }

    fn municipality(&self, p: (usize, usize)) -> &'static Municipality {
        &self.refd.places[p.0]
    }

    fn street_address(&mut self) -> String {
        let street = *pick(&mut self.rng, &self.refd.streets);
        let n = if self.chance(0.7) {
            self.rng.gen_range(1..60)
        } else {
            self.rng.gen_range(1..250)
        };
        if self.chance(0.15) {
            let l = *pick(&mut self.rng, b"ABCD") as char;
            format!("{street} {n}{l}")
        } else {
            format!("{street} {n}")
        }
    }

    fn org(&mut self, numbers: &mut HashSet<String>, lessor: bool) -> Org {
        let number = loop {
            let mut d = [0u8; 8];
            d[0] = if self.chance(0.9) { 9 } else { 8 };
            for x in d.iter_mut().skip(1) {
                *x = self.rng.gen_range(0..10);
            }
            if let Some(n) = ids::org_number_from(&d) {
                if numbers.insert(n.clone()) {
                    break n;
                }
            }
        };
        let place = self.place();
        let town = {
            let p = &self.municipality(place).postal[place.1].place;
            let mut c = p.chars();
            match c.next() {
                Some(f) => f.to_string() + &c.as_str().to_lowercase(),
                None => String::new(),
            }
        };
        let s1 = *pick(&mut self.rng, &self.refd.surnames);
        let s2 = *pick(&mut self.rng, &self.refd.surnames);
        let name = if lessor {
            match self.rng.gen_range(0..4) {
                0 => format!("{s1} Finans AS"),
                1 => format!("{town} Leasing AS"),
                2 => format!("{s1} Bilfinans AS"),
                _ => format!("{s1} & {s2} Leasing AS"),
            }
        } else {
            const TRADES: [&str; 16] = [
                "Transport",
                "Bygg",
                "Elektro",
                "Rør",
                "Eiendom",
                "Maskin",
                "Entreprenør",
                "Holding",
                "Regnskap",
                "Anlegg",
                "Tak",
                "Maler",
                "Service",
                "Handel",
                "Logistikk",
                "Snekkerverksted",
            ];
            let trade = *pick(&mut self.rng, &TRADES);
            match self.rng.gen_range(0..10) {
                0 => format!("{town} Taxi AS"),
                1 => format!("{town} Bilutleie AS"),
                2 => format!("{s1} & {s2} AS"),
                3 => format!("{s1} {trade}"),
                4 => format!("{town} {trade} AS"),
                _ => format!("{s1} {trade} AS"),
            }
        };
        let address = self.street_address();
        Org {
            number,
            name,
            address,
            place,
        }
    }

    /// A plate of a shape; unique within this register.
    fn plate(&mut self, five: bool, electric: bool, old: bool) -> String {
        let letters = PLATE_LETTERS;
        loop {
            if old {
                // Old shapes: A9999, A999 or 999999.
                let r = self.rng.gen_range(0..10);
                let l = letters[self.rng.gen_range(0..letters.len())];
                let (key, s) = if r < 6 {
                    let n = self.rng.gen_range(1000..10_000);
                    (
                        (l - b'A') as usize * 10_000 + n,
                        format!("{}{n}", l as char),
                    )
                } else if r < 8 {
                    let n = self.rng.gen_range(100..1000);
                    (
                        260_000 + (l - b'A') as usize * 1_000 + n,
                        format!("{}{n}", l as char),
                    )
                } else {
                    let n = self.rng.gen_range(100_000..1_000_000);
                    (286_000 + n, format!("{n}"))
                };
                if self.used_old.insert(key) {
                    return s;
                }
                continue;
            }
            let (a, b) = if electric {
                let s = ids::ELECTRIC_SERIES[self.rng.gen_range(0..ids::ELECTRIC_SERIES.len())];
                (s.as_bytes()[0], s.as_bytes()[1])
            } else {
                let a = letters[self.rng.gen_range(0..letters.len())];
                let b = letters[self.rng.gen_range(0..letters.len())];
                if five && a == b'E' && ids::ELECTRIC_SERIES.iter().any(|s| s.as_bytes()[1] == b) {
                    continue; // electric series are for electric cars
                }
                (a, b)
            };
            let pair = (a - b'A') as usize * 26 + (b - b'A') as usize;
            if five {
                let n = self.rng.gen_range(10_000..100_000);
                if self.used5.insert(pair * 100_000 + n) {
                    return format!("{}{}{n}", a as char, b as char);
                }
            } else {
                let n = self.rng.gen_range(1000..10_000);
                if self.used4.insert(pair * 10_000 + n) {
                    return format!("{}{}{n}", a as char, b as char);
                }
            }
        }
    }

    fn vin(&mut self, wmi: &str, year: i32) -> String {
        let mut v = [b'0'; 17];
        let w = wmi.as_bytes();
        for (i, slot) in v.iter_mut().take(3).enumerate() {
            *slot = match w.get(i) {
                Some(&c) if ids::is_vin_char(c) => c,
                _ => VIN_CHARS[self.rng.gen_range(0..VIN_CHARS.len())],
            };
        }
        for slot in v.iter_mut().take(8).skip(3) {
            *slot = VIN_CHARS[self.rng.gen_range(0..VIN_CHARS.len())];
        }
        v[9] = VIN_YEARS[(year - 1980).rem_euclid(30) as usize];
        v[10] = VIN_CHARS[self.rng.gen_range(0..VIN_CHARS.len())];
        for slot in v.iter_mut().skip(11) {
            *slot = b'0' + self.rng.gen_range(0..10);
        }
        v[8] = ids::vin_check_digit(&v).unwrap_or(b'0');
        String::from_utf8_lossy(&v).into_owned()
    }

    /// An old chassis number: 5-11 characters, mostly digits.
    fn legacy_chassis(&mut self) -> String {
        let len = self.rng.gen_range(5..=11);
        let mut s = String::with_capacity(len);
        let letters = if self.chance(0.3) {
            self.rng.gen_range(1..4)
        } else {
            0
        };
        for i in 0..len {
            if i < letters {
                s.push(PLATE_LETTERS[self.rng.gen_range(0..PLATE_LETTERS.len())] as char);
            } else {
                s.push((b'0' + self.rng.gen_range(0..10)) as char);
            }
        }
        s
    }

    fn date_between(&mut self, a: i32, b: i32) -> i32 {
        if b <= a {
            a
        } else {
            self.rng.gen_range(a..=b)
        }
    }

    /// One vehicle with its ownerships, appended to `b`.
    fn vehicle(&mut self, id: u64, b: &mut Batch) {
        let mut f: [Range; 85] = [(0, 0); 85];
        let today = self.today;
        let kind = pick_weighted(&mut self.rng, &KINDS);

        // Status and first registration.
        let status_roll = self.rng.gen_range(0..1000);
        let status = match status_roll {
            0..=659 => "REGISTRERT",
            660..=779 => "AVREGISTRERT",
            780..=991 => "VRAKET",
            _ => "UTFORT",
        };
        let age_days = |rng: &mut Pcg64, status: &str| -> i32 {
            let u: f64 = rng.gen();
            let years = match status {
                "REGISTRERT" if rng.gen_bool(0.92) => 28.0 * u.powf(1.4),
                "REGISTRERT" => 28.0 + 50.0 * u * u,
                "AVREGISTRERT" => 3.0 + 37.0 * u,
                _ => {
                    // Scrapped/exported: first registered 1955-2018, peak around 1990.
                    let v: f64 = (u + rng.gen::<f64>() + rng.gen::<f64>()) / 3.0;
                    (2025.5 - (1955.0 + 63.0 * v)).max(7.0)
                }
            };
            (years * 365.25) as i32 + rng.gen_range(0..30)
        };
        let first_no = today - age_days(&mut self.rng, status).max(1);
        let year = year_of(first_no);
        let used_import = kind != Kind::Trailer
            && year >= 1960
            && self.chance(if kind == Kind::Car { 0.14 } else { 0.06 });
        let first = if used_import {
            first_no - self.rng.gen_range(200..4000)
        } else {
            first_no
        };
        let model_year = year_of(first);

        // Fuel.
        let motorised = !matches!(kind, Kind::Trailer | Kind::Caravan | Kind::HeavyTrailer);
        let fuel = match kind {
            Kind::Car => {
                let ev = ev_share(model_year);
                let r: f64 = self.rng.gen();
                if r < ev {
                    Fuel::Electric
                } else if model_year >= 2013 && r < ev + 0.18 {
                    Fuel::PluginHybrid
                } else if model_year >= 2005 && r < ev + 0.28 {
                    Fuel::Hybrid
                } else if ((2000..=2018).contains(&model_year) && self.chance(0.55))
                    || (model_year < 2000 && self.chance(0.12))
                {
                    Fuel::Diesel
                } else {
                    Fuel::Petrol
                }
            }
            Kind::Van | Kind::Bus | Kind::Truck => {
                let ev = match model_year {
                    ..=2015 => 0.0,
                    2016..=2019 => 0.04,
                    2020..=2022 => 0.2,
                    _ => 0.4,
                } * if kind == Kind::Van { 1.0 } else { 0.4 };
                if self.chance(ev) {
                    Fuel::Electric
                } else if model_year >= 1985 || self.chance(0.5) {
                    Fuel::Diesel
                } else {
                    Fuel::Petrol
                }
            }
            Kind::Camper | Kind::Tractor => Fuel::Diesel,
            Kind::Motorcycle | Kind::Moped => {
                if model_year >= 2018 && self.chance(if kind == Kind::Moped { 0.25 } else { 0.03 })
                {
                    Fuel::Electric
                } else {
                    Fuel::Petrol
                }
            }
            _ => Fuel::None,
        };
        let electric = fuel == Fuel::Electric;

        // Make and model.
        let (make_code, make_name, model, wmi): (String, String, String, &str) = {
            let table = match kind {
                Kind::Car => CAR_MAKES,
                Kind::Van => VAN_MAKES,
                Kind::Camper => CAMPER_MAKES,
                Kind::Truck => TRUCK_MAKES,
                Kind::Bus => BUS_MAKES,
                Kind::Trailer => TRAILER_MAKES,
                Kind::Caravan => CARAVAN_MAKES,
                Kind::HeavyTrailer => HEAVY_TRAILER_MAKES,
                Kind::Motorcycle => MC_MAKES,
                Kind::Moped => MOPED_MAKES,
                Kind::Tractor => TRACTOR_MAKES,
            };
            if kind == Kind::Car && !electric && self.chance(0.015) {
                // The long tail: any make of the authority's table.
                let (c, n) = self.all_makes[self.rng.gen_range(0..self.all_makes.len())].clone();
                let model = format!(
                    "{}{}",
                    PLATE_LETTERS[self.rng.gen_range(0..PLATE_LETTERS.len())] as char,
                    self.rng.gen_range(1..999)
                );
                (c, n, model, "")
            } else {
                let m = if kind == Kind::Car && electric {
                    let code = pick_weighted(&mut self.rng, EV_MAKES);
                    CAR_MAKES
                        .iter()
                        .find(|m| m.0 == code)
                        .unwrap_or(&CAR_MAKES[0])
                } else if electric {
                    let evs: Vec<Make> =
                        table.iter().filter(|m| !m.5.is_empty()).copied().collect();
                    if evs.is_empty() {
                        pick_make(&mut self.rng, table)
                    } else {
                        let i = self.rng.gen_range(0..evs.len());
                        table.iter().find(|m| m.0 == evs[i].0).unwrap_or(&table[0])
                    }
                } else {
                    pick_make(&mut self.rng, table)
                };
                let models = if electric && !m.5.is_empty() {
                    m.5
                } else if !m.4.is_empty() {
                    m.4
                } else {
                    m.5
                };
                // A few tries for a model sold in that year; early electric cars that no
                // listed model fits become the Norwegian THINK or BUDDY.
                let mut model = models[self.rng.gen_range(0..models.len())];
                for _ in 0..5 {
                    if model_sold(model, model_year) {
                        break;
                    }
                    model = models[self.rng.gen_range(0..models.len())];
                }
                if electric && kind == Kind::Car && !model_sold(model, model_year) {
                    let (c, n, mo) = if model_year >= 1999 {
                        EARLY_EVS[0]
                    } else {
                        EARLY_EVS[1]
                    };
                    (c.to_string(), n.to_string(), mo.to_string(), "")
                } else {
                    (m.0.to_string(), m.1.to_string(), model.to_string(), m.3)
                }
            }
        };

        // Identity: plate, personal plate, chassis number.
        let five = matches!(
            kind,
            Kind::Car | Kind::Van | Kind::Camper | Kind::Truck | Kind::Bus
        );
        let old_plate = model_year < 1972 && self.chance(0.5);
        let e_series = electric && kind == Kind::Car && self.chance(0.93);
        let plate = self.plate(five, e_series, old_plate);
        f[KJM] = b.put(&plate);
        if status == "REGISTRERT" && kind == Kind::Car && year >= 2017 && self.chance(0.004) {
            let w = *pick(&mut self.rng, &PERSONAL_PLATES);
            let s = if w.len() < 6 && self.chance(0.5) {
                format!("{w}{}", self.rng.gen_range(1..10))
            } else {
                w.to_string()
            };
            f[KJM_PERSJ] = b.put(&s);
        }
        let veteran = status == "REGISTRERT" && today - first > 30 * 365 && self.chance(0.4);
        let plate_type = if veteran {
            "VETERAN"
        } else if kind == Kind::Van && self.chance(0.2) {
            "VAREBIL_KLASSE_2"
        } else if kind == Kind::Tractor && self.chance(0.1) {
            "UTENFOR_OFFENTLIG_VEG"
        } else {
            match self.rng.gen_range(0..10_000) {
                0..=4 => "SVALBARD",
                5..=6 => "AMBASSADE",
                7 => "RALLY_TRIAL_ENDURO",
                _ => "ORDINART",
            }
        };
        f[KJM_FARGE] = b.put(plate_type);
        // VINs became the rule in the 1980s; trailers and tractors often keep short numbers.
        // Tuned so that about 63 % of the register has a 17-character VIN.
        let vin_p = match model_year {
            ..=1980 => 0.0,
            1981..=1989 => 0.3,
            1990..=1999 => 0.55,
            2000..=2009 => 0.8,
            _ => 0.93,
        } * if matches!(kind, Kind::Trailer | Kind::Tractor | Kind::Caravan) {
            0.5
        } else {
            1.0
        };
        let unr = if self.chance(vin_p) {
            self.vin(wmi, model_year)
        } else {
            self.legacy_chassis()
        };
        f[UNR] = b.put(&unr);

        // Registration dates and status.
        f[REG_F_G] = b.put_date(first);
        f[REG_F_G_N] = b.put_date(first_no);
        let end = match status {
            "REGISTRERT" => today,
            _ => {
                let lo = first_no + 365.min((today - first_no) / 2);
                let hi = if status == "VRAKET" {
                    (first_no + 28 * 365).min(today)
                } else {
                    today
                };
                let min_life = if status == "VRAKET" { 8 * 365 } else { 0 };
                self.date_between((first_no + min_life).min(hi).max(lo), hi)
            }
        };
        match status {
            "AVREGISTRERT" => f[AVREG] = b.put_date(end),
            "VRAKET" => f[VRAKET] = b.put_date(end),
            "UTFORT" => f[UTFORT] = b.put_date(end),
            _ => {}
        }
        f[REG_STATUS] = b.put(status);
        f[BRUKTIMP] = b.put(if used_import { "1" } else { "0" });
        f[MERKE] = b.put(&make_code);
        f[MERKENAVN] = b.put(&make_name);
        f[MODELL] = b.put(&model);

        let (tk, grp) = match kind {
            Kind::Car if self.chance(0.0005) => ("M1", "106"),
            Kind::Car if self.chance(0.05) => ("M1G", "101"),
            Kind::Car => ("M1", "101"),
            Kind::Van => {
                if plate_type == "VAREBIL_KLASSE_2" {
                    ("N1", "311")
                } else if self.chance(0.35) {
                    ("N1", "301")
                } else {
                    ("N1", "310")
                }
            }
            Kind::Camper => ("M1", "313"),
            Kind::Truck => (if self.chance(0.4) { "N2" } else { "N3" }, "320"),
            Kind::Bus => (if self.chance(0.2) { "M2" } else { "M3" }, "201"),
            Kind::Trailer => (if self.chance(0.6) { "O1" } else { "O2" }, "709"),
            Kind::Caravan => ("O2", "709"),
            Kind::HeavyTrailer => (if self.chance(0.3) { "O3" } else { "O4" }, "709"),
            Kind::Motorcycle => ("L3e", "601"),
            Kind::Moped => ("L1e", "601"),
            Kind::Tractor => ("T1", "401"),
        };
        f[TKNAVN] = b.put(tk);
        f[TUK] = b.put("INGENKODE");
        f[KJTGRP] = b.put(grp);

        // Engine and fuel.
        let detailed = model_year >= 1995 || self.chance(0.4);
        if motorised {
            let heavy = matches!(kind, Kind::Truck | Kind::Bus);
            let kw: f64 = match (kind, fuel) {
                (Kind::Car, Fuel::Electric) => self.rng.gen_range(60.0..390.0),
                (Kind::Car, _) => {
                    self.rng.gen_range(45.0..140.0) + (model_year - 1970).max(0) as f64 * 0.8
                }
                (Kind::Van | Kind::Camper, _) => self.rng.gen_range(60.0..150.0),
                (Kind::Truck | Kind::Bus, _) => self.rng.gen_range(150.0..480.0),
                (Kind::Motorcycle, _) => self.rng.gen_range(10.0..150.0),
                (Kind::Moped, _) => self.rng.gen_range(1.0..4.0),
                _ => self.rng.gen_range(40.0..220.0),
            };
            if detailed {
                let code: String = (0..self.rng.gen_range(3..7))
                    .map(|_| VIN_CHARS[self.rng.gen_range(0..VIN_CHARS.len())] as char)
                    .collect();
                f[MOTORKODE] = b.put(&code);
                if kind == Kind::Moped || kw.fract() > 0.7 {
                    f[MOTORYTELSE] = b.put_fmt(format_args!("{:.1}", kw));
                } else {
                    f[MOTORYTELSE] = b.put_fmt(format_args!("{}", kw as u32));
                }
            }
            if !electric {
                const CC: [u32; 14] = [
                    998, 1197, 1390, 1498, 1560, 1598, 1798, 1968, 1984, 1995, 1998, 2198, 2487,
                    2993,
                ];
                let cc = match kind {
                    Kind::Moped => 49,
                    Kind::Motorcycle => *pick(
                        &mut self.rng,
                        &[124, 249, 599, 689, 898, 1170, 1254, 1584, 1868],
                    ),
                    _ if heavy => *pick(&mut self.rng, &[7698, 10_837, 12_777, 12_742, 16_120]),
                    _ => *pick(&mut self.rng, &CC),
                };
                f[SLAGVOLUM] = b.put_fmt(format_args!("{cc}"));
            }
            let drivst = match fuel {
                Fuel::Petrol => "1",
                Fuel::Diesel => "2",
                Fuel::Electric => {
                    if kind == Kind::Car && self.chance(0.35) {
                        "5,5"
                    } else {
                        "5"
                    }
                }
                Fuel::PluginHybrid => {
                    if self.chance(0.25) {
                        "1,5,5"
                    } else if self.chance(0.1) {
                        "2,5"
                    } else {
                        "1,5"
                    }
                }
                Fuel::Hybrid => "1,5",
                Fuel::None => "",
            };
            f[DRIVST] = b.put(drivst);
            let gear = if electric || matches!(fuel, Fuel::Hybrid | Fuel::PluginHybrid) {
                "Automat"
            } else if model_year < 1990 && self.chance(0.5) {
                ""
            } else if self.chance(if model_year >= 2015 { 0.65 } else { 0.2 }) {
                "Automat"
            } else {
                "Manuell"
            };
            f[GIRKASSE] = b.put(gear);
        }
        match fuel {
            Fuel::PluginHybrid => {
                f[HYBRID] = b.put("1");
                f[HYBRID_KAT] = b.put("OVC");
            }
            Fuel::Hybrid => {
                f[HYBRID] = b.put("1");
                f[HYBRID_KAT] = b.put("NOVC");
            }
            _ => {
                f[HYBRID] = b.put("9");
                f[HYBRID_KAT] = b.put(if model_year < 1990 { "Z" } else { "X" });
            }
        }

        // Weights and dimensions.
        let (tot, own, len, width): (u32, u32, u32, u32) = match kind {
            Kind::Car => {
                let own = if electric {
                    self.rng.gen_range(1500..2500)
                } else {
                    self.rng.gen_range(850..1900)
                };
                (
                    own + self.rng.gen_range(400..600),
                    own,
                    self.rng.gen_range(3600..5100),
                    self.rng.gen_range(1600..2000),
                )
            }
            Kind::Van => {
                let own = self.rng.gen_range(1300..2500);
                (
                    if self.chance(0.7) { 3500 } else { own + 800 },
                    own,
                    self.rng.gen_range(4300..6900),
                    self.rng.gen_range(1750..2100),
                )
            }
            Kind::Camper => (
                self.rng.gen_range(3300..4500),
                self.rng.gen_range(2800..3400),
                self.rng.gen_range(5900..7600),
                self.rng.gen_range(2200..2350),
            ),
            Kind::Truck => {
                let tot = self.rng.gen_range(7500..32_000);
                (
                    tot,
                    tot / 2 - self.rng.gen_range(0..2000),
                    self.rng.gen_range(6500..12_000),
                    2550,
                )
            }
            Kind::Bus => (
                self.rng.gen_range(5000..19_500),
                self.rng.gen_range(4000..12_500),
                self.rng.gen_range(7000..13_800),
                2550,
            ),
            Kind::Trailer => {
                if tk == "O1" {
                    (
                        self.rng.gen_range(500..751),
                        self.rng.gen_range(90..260),
                        self.rng.gen_range(3000..4500),
                        self.rng.gen_range(1300..1800),
                    )
                } else {
                    let tot = self.rng.gen_range(1000..3501);
                    (
                        tot,
                        self.rng.gen_range(280..800),
                        self.rng.gen_range(3500..6800),
                        self.rng.gen_range(1500..2300),
                    )
                }
            }
            Kind::Caravan => (
                self.rng.gen_range(1200..2500),
                self.rng.gen_range(900..1800),
                self.rng.gen_range(5500..8500),
                self.rng.gen_range(2100..2550),
            ),
            Kind::HeavyTrailer => (
                self.rng.gen_range(10_000..39_000),
                self.rng.gen_range(4000..9000),
                self.rng.gen_range(7000..13_600),
                2550,
            ),
            Kind::Motorcycle => (
                self.rng.gen_range(300..560),
                self.rng.gen_range(130..380),
                self.rng.gen_range(1900..2600),
                self.rng.gen_range(700..1000),
            ),
            Kind::Moped => (
                self.rng.gen_range(180..280),
                self.rng.gen_range(70..120),
                self.rng.gen_range(1600..2000),
                self.rng.gen_range(600..750),
            ),
            Kind::Tractor => (
                self.rng.gen_range(3000..14_000),
                self.rng.gen_range(1500..8000),
                self.rng.gen_range(3000..5500),
                self.rng.gen_range(1600..2600),
            ),
        };
        let own = own.min(tot.saturating_sub(50)).max(50);
        if detailed || kind == Kind::Trailer {
            f[TOTVEKT] = b.put_fmt(format_args!("{tot}"));
            f[EGENVEKT] = b.put_fmt(format_args!("{own}"));
        }
        let towing = matches!(kind, Kind::Car | Kind::Van | Kind::Camper) && detailed;
        if towing && self.chance(0.8) {
            let with_brake = *pick(
                &mut self.rng,
                &[750u32, 1200, 1300, 1500, 1600, 1800, 2000, 2100, 2500],
            );
            f[THV_M] = b.put_fmt(format_args!("{with_brake}"));
            f[THV_U] = b.put_fmt(format_args!(
                "{}",
                *pick(&mut self.rng, &[400u32, 500, 600, 650, 750])
            ));
            f[VOGNTOGVEKT] = b.put_fmt(format_args!("{}", tot + with_brake));
            f[BEL_H] = b.put_fmt(format_args!(
                "{}",
                *pick(&mut self.rng, &[50u32, 75, 80, 90, 100])
            ));
            if kind == Kind::Car {
                f[TAKLAST] = b.put_fmt(format_args!("{}", *pick(&mut self.rng, &[75u32, 80, 100])));
            }
        }
        if detailed || !motorised {
            f[LENGDE] = b.put_fmt(format_args!("{len}"));
            f[BREDDE] = b.put_fmt(format_args!("{width}"));
        }
        if matches!(kind, Kind::Car | Kind::Van) && model_year >= 2000 && self.chance(0.5) {
            let doors = if kind == Kind::Van {
                4
            } else {
                *pick(&mut self.rng, &[3u32, 4, 5, 5, 5])
            };
            f[DORER] = b.put_fmt(format_args!("{doors}"));
        }
        if motorised && (model_year >= 1990 || self.chance(0.4)) {
            let c = pick_weighted(&mut self.rng, &COLOURS);
            if self.chance(0.01) {
                f[FARGE] = b.put_fmt(format_args!("{c},99"));
            } else {
                f[FARGE] = b.put(c);
            }
        } else if !motorised && self.chance(0.3) {
            f[FARGE] = b.put(pick::<&str>(&mut self.rng, &["05", "11", "01"]));
        }
        if matches!(kind, Kind::Truck | Kind::Van) && self.chance(0.2) {
            f[PABYGG] = b.put(pick::<&str>(
                &mut self.rng,
                &["SKAP", "LASTEPLAN", "TIPP", "KRANBIL"],
            ));
        }
        let (front, total): (u32, u32) = match kind {
            Kind::Car => (
                2,
                if self.chance(0.08) {
                    7
                } else if self.chance(0.03) {
                    4
                } else {
                    5
                },
            ),
            Kind::Van => (
                if self.chance(0.6) { 2 } else { 3 },
                if self.chance(0.2) { 5 } else { 2 },
            ),
            Kind::Camper => (2, 4),
            Kind::Truck => (2, 2),
            Kind::Bus => (2, self.rng.gen_range(17..70)),
            Kind::Motorcycle => (1, 2),
            Kind::Moped => (1, if self.chance(0.5) { 2 } else { 1 }),
            Kind::Tractor => (1, 1),
            _ => (0, 0),
        };
        if total > 0 && (detailed || kind == Kind::Car) {
            f[SETER_FORAN] = b.put_fmt(format_args!("{front}"));
            f[SETER_TOT] = b.put_fmt(format_args!("{total}"));
        }
        let axles = match kind {
            Kind::Truck | Kind::HeavyTrailer => self.rng.gen_range(2..5),
            Kind::Bus => self.rng.gen_range(2..4),
            Kind::Trailer | Kind::Caravan => {
                if tot > 1500 && self.chance(0.5) {
                    2
                } else {
                    1
                }
            }
            _ => 2,
        };
        f[AKSLER] = b.put_fmt(format_args!("{axles}"));
        if motorised && detailed {
            let driven = if kind == Kind::Car
                && (tk == "M1G" || drivst_is_dual(&b.text, f[DRIVST]) || self.chance(0.15))
            {
                2
            } else {
                1
            };
            f[AKSLER_DRIFT] = b.put_fmt(format_args!("{driven}"));
        }

        // Tyres (cars, vans, campers with detailed data).
        if matches!(kind, Kind::Car | Kind::Van | Kind::Camper) && detailed {
            let bias = ((model_year - 1985).clamp(0, 40) as usize * CAR_TYRES.len()) / 45;
            let i = (bias + self.rng.gen_range(0..3)).min(CAR_TYRES.len() - 1);
            let (tyre, rim, load, speed, innp) = CAR_TYRES[i];
            f[DEKK_1] = b.put(tyre);
            f[DEKK_2] = f[DEKK_1];
            f[FELG_1] = b.put(rim);
            f[FELG_2] = f[FELG_1];
            f[MILI_1] = b.put(load);
            f[MILI_2] = f[MILI_1];
            f[HAST_1] = b.put(speed);
            f[HAST_2] = f[HAST_1];
            f[INNP_1] = b.put(innp);
            f[INNP_2] = f[INNP_1];
            let track = self.rng.gen_range(1400..1650);
            f[SPOR_1] = b.put_fmt(format_args!("{track}"));
            f[SPOR_2] = b.put_fmt(format_args!("{}", track - self.rng.gen_range(0..30)));
            f[LAST_1] = b.put_fmt(format_args!("{}", tot / 2 + self.rng.gen_range(0..100)));
            f[LAST_2] = b.put_fmt(format_args!("{}", tot / 2 + self.rng.gen_range(0..150)));
        } else if !motorised {
            f[DEKK_1] = b.put(pick::<&str>(
                &mut self.rng,
                &[
                    "155R13",
                    "165/70 R 13",
                    "185 R 14 C",
                    "195/50R13C",
                    "4.00 X 8\"",
                ],
            ));
        }

        // Approval numbers.
        if detailed || !motorised {
            f[NGN] = b.put_fmt(format_args!(
                "{:04}.{:03}/{}",
                self.rng.gen_range(1..9999),
                self.rng.gen_range(1..120),
                model_year.min(year)
            ));
            if model_year >= 1996 {
                let directive = match model_year {
                    ..=2000 => "98/14",
                    2001..=2008 => "2001/116",
                    2009..=2019 => "2007/46",
                    _ => "2018/858",
                };
                f[EU_HOVED] = b.put_fmt(format_args!(
                    "e{}*{directive}*{:04}*{:02}",
                    self.rng.gen_range(1..14),
                    self.rng.gen_range(1..2000),
                    self.rng.gen_range(0..60)
                ));
            } else {
                f[EU_HOVED] = b.put_fmt(format_args!(
                    "e16*NOR{model_year}*{:04}*00",
                    self.rng.gen_range(1..1000)
                ));
            }
            let t: String = unr.chars().skip(3).take(6).collect();
            f[EU_TYPE] = b.put(&t);
            f[EU_VARIANT] = b.put_fmt(format_args!("{}", self.rng.gen_range(1..40)));
        }
        if motorised && model_year >= 2005 && detailed && self.chance(0.7) {
            let v: String = (0..12)
                .map(|_| VIN_CHARS[self.rng.gen_range(0..VIN_CHARS.len())] as char)
                .collect();
            f[EU_VERSJON] = b.put(&v);
        }

        // Emissions.
        if motorised {
            let heavy = matches!(kind, Kind::Truck | Kind::Bus);
            let euro = if electric {
                "0"
            } else if heavy {
                match model_year {
                    ..=2005 => "",
                    2006..=2008 => "4T",
                    2009..=2013 => "5T",
                    _ => "6T",
                }
            } else if matches!(kind, Kind::Motorcycle | Kind::Moped | Kind::Tractor) {
                ""
            } else {
                match model_year {
                    ..=1992 => "",
                    1993..=1996 => "1L",
                    1997..=2000 => "2L",
                    2001..=2005 => "3L",
                    2006..=2009 => "4L",
                    2010..=2014 => "5L",
                    _ => "6L",
                }
            };
            f[EURONORM] = b.put(euro);
            if detailed && (model_year >= 1980 || self.chance(0.3)) && !electric {
                f[STANDSTOY] = b.put_fmt(format_args!("{}", self.rng.gen_range(68..95)));
            }
            let filter = fuel == Fuel::Diesel && model_year >= 2010;
            f[PARTIKKELFILTER] = b.put(if filter { "1" } else { "0" });
            if !electric && model_year >= 2010 && !heavy && matches!(kind, Kind::Car | Kind::Van) {
                f[NOX_MG] = b.put_fmt(format_args!("{:.1}", self.rng.gen_range(5.0..80.0)));
                if fuel == Fuel::Diesel {
                    f[PARTIKKEL] = b.put_fmt(format_args!("{:.2}", self.rng.gen_range(0.1..4.5)));
                }
            }
            if heavy && model_year >= 2009 && !electric {
                f[NOX_G] = b.put_fmt(format_args!("{:.2}", self.rng.gen_range(0.05..2.0)));
            }
            if matches!(kind, Kind::Car | Kind::Van | Kind::Camper) && model_year >= 2000 {
                let method = match model_year {
                    ..=2017 => "NEDC",
                    2018..=2020 => "NEDC,WLTP",
                    _ => "WLTP",
                };
                f[MAALEMETODE] = b.put(method);
                let co2: u32 = match fuel {
                    Fuel::Electric => 0,
                    Fuel::PluginHybrid => self.rng.gen_range(18..60),
                    Fuel::Hybrid => self.rng.gen_range(85..125),
                    _ => {
                        (self.rng.gen_range(110..230) - (model_year - 2000) * 3).max(90) as u32
                            + if kind == Kind::Car { 0 } else { 40 }
                    }
                };
                f[CO2] = b.put_fmt(format_args!("{co2}"));
                if co2 > 0 {
                    let per_l = if fuel == Fuel::Diesel { 26.5 } else { 23.8 };
                    f[FORBRUK] = b.put_fmt(format_args!("{:.1}", co2 as f64 / per_l));
                } else {
                    f[FORBRUK] = b.put("0");
                }
            } else if model_year < 2000 && detailed && self.chance(0.3) {
                f[MAALEMETODE] = b.put("ANNEN");
            }
        } else {
            f[PARTIKKELFILTER] = b.put("0");
        }

        // Ownerships: history, current owner, co-owner, lessee.
        let lessee_p = match (status, today - first_no) {
            ("REGISTRERT", a) if a < 4 * 365 && matches!(kind, Kind::Car | Kind::Van) => 0.55,
            ("REGISTRERT", a) if a < 8 * 365 => 0.18,
            _ => 0.0,
        };
        let leased = self.chance(lessee_p);
        let org_p = match kind {
            Kind::Truck | Kind::Bus | Kind::HeavyTrailer => 0.95,
            Kind::Van => 0.55,
            Kind::Tractor => 0.25,
            _ => 0.12,
        };
        let span_end = if status == "REGISTRERT" { today } else { end };
        let mut previous = 0;
        if span_end - first_no > 2 * 365 && self.chance(0.45) {
            previous = self
                .rng
                .gen_range(1..=((span_end - first_no) / (3 * 365)).clamp(1, 4));
        }
        // Change dates: strictly increasing between first registration and span end.
        let mut starts = vec![first_no];
        for k in 0..previous {
            let lo = *starts.last().unwrap_or(&first_no) + 30;
            let hi = first_no
                + ((span_end - first_no) as i64 * (k as i64 + 1) / (previous as i64 + 1)) as i32;
            let d = self.date_between(lo.min(span_end - 1), hi.max(lo).min(span_end - 1));
            starts.push(d.max(lo.min(span_end)));
        }
        let current_change = *starts.last().unwrap_or(&first_no);
        let current_from = (current_change + self.rng.gen_range(0..8)).min(span_end);
        if previous > 0 || self.chance(0.7) {
            f[REG_EIERSKIFTE] = b.put_date(current_change);
        }
        if !(status == "AVREGISTRERT" && self.chance(0.3)) {
            f[REG_EIER] = b.put_date(current_from);
        }
        // PKK (periodic inspection): cars and light vans after 4 years, then every 2.
        if status == "REGISTRERT"
            && matches!(
                kind,
                Kind::Car | Kind::Van | Kind::Camper | Kind::Motorcycle
            )
        {
            let first_pkk = first + 4 * 365;
            if first_pkk > today {
                f[NESTE_PKK] = b.put_date(first_pkk);
            } else {
                let last = self.date_between((today - 730).max(first_pkk - 60), today - 1);
                f[SISTE_PKK] = b.put_date(last);
                f[NESTE_PKK] = b.put_date(last + 730 + self.rng.gen_range(0..30));
            }
        } else if status != "REGISTRERT"
            && motorised
            && kind == Kind::Car
            && today - first > 5 * 365
            && self.chance(0.5)
        {
            let last = self.date_between(first + 4 * 365, end.max(first + 4 * 365));
            f[SISTE_PKK] = b.put_date(last.min(end));
        }

        for (k, &start) in starts.iter().enumerate() {
            let from = if k + 1 == starts.len() {
                current_from
            } else {
                start + self.rng.gen_range(0..5)
            };
            let to = if k + 1 < starts.len() {
                Some(starts[k + 1])
            } else if status == "REGISTRERT" || status == "AVREGISTRERT" {
                None
            } else {
                Some(end)
            };
            let current = to.is_none();
            let owner_is_org = (current && leased) || self.chance(org_p);
            let addr = if owner_is_org {
                let pool_lessor = current && leased;
                self.owner_org(b, id, "eier", from, to, pool_lessor)
            } else {
                self.owner_person(b, id, "eier", from, to, None)
            };
            let co_owner_p = if current { 0.17 } else { 0.08 };
            if !owner_is_org && self.chance(co_owner_p) {
                self.owner_person(b, id, "medeier", from, to, Some(addr));
            }
            if current && leased {
                if self.chance(0.7) {
                    self.owner_person(b, id, "leasingtaker", from, to, None);
                } else {
                    self.owner_org(b, id, "leasingtaker", from, to, false);
                }
            }
        }

        b.ids.push(id);
        b.vehicles.push(f);
    }

    /// Appends an organisation ownership row; returns the index of the address place.
    fn owner_org(
        &mut self,
        b: &mut Batch,
        vehicle: u64,
        role: &'static str,
        from: i32,
        to: Option<i32>,
        lessor: bool,
    ) -> (usize, usize) {
        // Fleet owners are skewed: a few organisations own many vehicles.
        let pool = if lessor { &self.lessors } else { &self.orgs };
        let u: f64 = self.rng.gen();
        let i = ((u * u * u) * pool.len() as f64) as usize;
        let org = &pool[i.min(pool.len() - 1)];
        let m = &self.refd.places[org.place.0];
        let p = &m.postal[org.place.1];
        let mut fields: [Range; 15] = [(0, 0); 15];
        fields[O_ORGNR] = b.put(&org.number);
        fields[O_ORGNAME] = b.put(&org.name);
        fields[O_ADDR] = b.put(&org.address);
        fields[O_POSTNR] = b.put(p.code);
        fields[O_POSTSTED] = b.put(p.place);
        fields[O_KOMMUNE] = b.put(m.number);
        fields[O_LAND] = b.put("NO");
        fields[O_FROM] = b.put_date(from);
        if let Some(t) = to {
            fields[O_TO] = b.put_date(t);
        }
        b.owners.push(OwnerRow {
            vehicle,
            role,
            fields,
        });
        org.place
    }

    /// Appends a person ownership row (living at `at`, or somewhere else); returns the
    /// address's place.
    fn owner_person(
        &mut self,
        b: &mut Batch,
        vehicle: u64,
        role: &'static str,
        from: i32,
        to: Option<i32>,
        at: Option<(usize, usize)>,
    ) -> (usize, usize) {
        // Born 18-88 years before the ownership starts, most often 30-60.
        let age_years = 18.0
            + 70.0 * {
                let a: f64 = self.rng.gen();
                let c: f64 = self.rng.gen();
                (a + c) / 2.0
            };
        let mut birth = from - (age_years * 365.25) as i32;
        let min_birth = days(1855, 1, 1);
        if birth < min_birth {
            birth = min_birth + self.rng.gen_range(0..3650);
        }
        let (y, mo, d) = civil(birth);
        let d_number = self.chance(0.02);
        let (lo, hi) = ids::individual_range(y as u32).unwrap_or((0, 499));
        let (nid, male) = loop {
            let ind = self.rng.gen_range(lo..=hi);
            if let Some(n) = ids::make_fnr(y as u32, mo, d, ind, d_number) {
                break (n, ind % 2 == 1);
            }
        };
        let first = if male {
            *pick(&mut self.rng, &self.refd.male_names)
        } else {
            *pick(&mut self.rng, &self.refd.female_names)
        };
        let last = *pick(&mut self.rng, &self.refd.surnames);
        let middle = if self.chance(0.15) {
            Some(*pick(&mut self.rng, &self.refd.surnames))
        } else {
            None
        };
        let place = match at {
            Some(p) => p,
            None => self.place(),
        };
        let address = self.street_address();
        let m = &self.refd.places[place.0];
        let p = &m.postal[place.1];
        let mut fields: [Range; 15] = [(0, 0); 15];
        fields[O_NID] = b.put(&nid);
        fields[O_FIRST] = b.put(first);
        if let Some(mid) = middle {
            fields[O_MIDDLE] = b.put(mid);
        }
        fields[O_LAST] = b.put(last);
        fields[O_BIRTH] = b.put_fmt(format_args!("{y:04}{mo:02}{d:02}"));
        fields[O_ADDR] = b.put(&address);
        fields[O_POSTNR] = b.put(p.code);
        fields[O_POSTSTED] = b.put(p.place);
        fields[O_KOMMUNE] = b.put(m.number);
        fields[O_LAND] = b.put("NO");
        fields[O_FROM] = b.put_date(from);
        if let Some(t) = to {
            fields[O_TO] = b.put_date(t);
        }
        b.owners.push(OwnerRow {
            vehicle,
            role,
            fields,
        });
        place
    }
}

fn drivst_is_dual(text: &str, r: Range) -> bool {
    &text[r.0 as usize..r.1 as usize] == "5,5"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_indexes_match_the_catalog() {
        let pairs: [(usize, &str); 34] = [
            (KJM, "TEKN_KJM"),
            (KJM_PERSJ, "TEKN_KJM_PERSJ"),
            (UNR, "TEKN_UNR"),
            (REG_EIERSKIFTE, "TEKN_REG_EIERSKIFTE_DATO"),
            (REG_EIER, "TEKN_REG_EIER_DATO"),
            (UTFORT, "TEKN_UTFORT_DATO"),
            (REG_STATUS, "TEKN_REG_STATUS"),
            (TUK, "TEKN_TUK_VERDI"),
            (KJTGRP, "TEKN_KJTGRP"),
            (DRIVST, "TEKN_DRIVST"),
            (HYBRID_KAT, "TEKN_HYBRID_KATEGORI"),
            (TAKLAST, "TEKN_MAKS_TAKLAST"),
            (BEL_H, "TEKN_BEL_H_FESTE"),
            (DORER, "TEKN_ANTALL_DORER"),
            (FARGE, "TEKN_FARGE"),
            (AKSLER_DRIFT, "TEKN_AKSLER_DRIFT"),
            (DEKK_1, "TEKN_DEKK_1"),
            (DEKK_2, "TEKN_DEKK_2"),
            (FELG_2, "TEKN_FELG_2"),
            (MILI_1, "TEKN_MILI_1"),
            (HAST_2, "TEKN_HAST_2"),
            (INNP_1, "TEKN_INNP_1"),
            (SPOR_2, "TEKN_SPOR_2"),
            (LAST_1, "TEKN_LAST_1"),
            (LAST_2, "TEKN_LAST_2"),
            (NGN, "TEKN_NGN"),
            (EU_VERSJON, "TEKN_EU_VERSJON"),
            (SISTE_PKK, "TEKN_SISTE_PKK"),
            (NESTE_PKK, "TEKN_NESTE_PKK"),
            (STANDSTOY, "TEKN_STANDSTOY"),
            (NOX_G, "TEKN_NOX_UTSLIPP_GPRKWH"),
            (MAALEMETODE, "TEKN_MAALEMETODE"),
            (CO2, "TEKN_CO2_UTSLIPP"),
            (FORBRUK, "TEKN_DRIVSTOFF_FORBRUK"),
        ];
        for (i, name) in pairs {
            assert_eq!(TECHNICAL[i].0, name);
        }
        for (i, name) in [
            (KJM_FARGE, "TEKN_KJM_FARGE"),
            (REG_F_G, "TEKN_REG_F_G"),
            (REG_F_G_N, "TEKN_REG_F_G_N"),
            (AVREG, "TEKN_AVREG_DATO"),
            (VRAKET, "TEKN_VRAKET_DATO"),
            (BRUKTIMP, "TEKN_BRUKTIMP"),
            (MERKE, "TEKN_MERKE"),
            (MERKENAVN, "TEKN_MERKENAVN"),
            (MODELL, "TEKN_MODELL"),
            (TKNAVN, "TEKN_TKNAVN"),
            (MOTORKODE, "TEKN_MOTORKODE"),
            (MOTORYTELSE, "TEKN_MOTORYTELSE"),
            (SLAGVOLUM, "TEKN_SLAGVOLUM"),
            (GIRKASSE, "TEKN_GIRKASSE"),
            (HYBRID, "TEKN_HYBRID"),
            (TOTVEKT, "TEKN_TOTVEKT"),
            (EGENVEKT, "TEKN_EGENVEKT"),
            (VOGNTOGVEKT, "TEKN_VOGNTOGVEKT"),
            (THV_M, "TEKN_THV_M_BREMS"),
            (THV_U, "TEKN_THV_U_BREMS"),
            (LENGDE, "TEKN_LENGDE"),
            (BREDDE, "TEKN_BREDDE"),
            (PABYGG, "TEKN_PABYGG"),
            (SETER_FORAN, "TEKN_SITTEPLASSERFORAN"),
            (SETER_TOT, "TEKN_SITTEPLASSER_TOTALT"),
            (AKSLER, "TEKN_AKSLER"),
            (FELG_1, "TEKN_FELG_1"),
            (MILI_2, "TEKN_MILI_2"),
            (HAST_1, "TEKN_HAST_1"),
            (INNP_2, "TEKN_INNP_2"),
            (SPOR_1, "TEKN_SPOR_1"),
            (EU_HOVED, "TEKN_EU_HOVED"),
            (EURONORM, "TEKN_EURONORM_NY"),
            (EU_TYPE, "TEKN_EU_TYPE"),
            (EU_VARIANT, "TEKN_EU_VARIANT"),
            (PARTIKKELFILTER, "TEKN_PARTIKKELFILTER"),
            (NOX_MG, "TEKN_NOX_UTSLIPP_MGPRKM"),
            (PARTIKKEL, "TEKN_PARTIKKELUTSLIPP"),
        ] {
            assert_eq!(TECHNICAL[i].0, name);
        }
        assert_eq!(OWNER_COLS[O_TO], "to_date");
        assert_eq!(OWNER_COLS[O_KOMMUNE], "municipality");
    }

    #[test]
    fn civil_dates_round_trip() {
        assert_eq!(days(1970, 1, 1), 0);
        assert_eq!(civil(days(2024, 2, 29)), (2024, 2, 29));
        assert_eq!(civil(days(1855, 1, 1)), (1855, 1, 1));
        for z in (-50_000..30_000).step_by(37) {
            let (y, m, d) = civil(z);
            assert_eq!(days(y, m, d), z);
        }
    }

    #[test]
    fn makes_exist_in_the_code_table() {
        let codes: HashSet<(String, String)> = schema::parse_code_csv(schema::CODE_TABLES[0].1)
            .into_iter()
            .collect();
        for table in [
            CAR_MAKES,
            VAN_MAKES,
            TRUCK_MAKES,
            BUS_MAKES,
            CAMPER_MAKES,
            TRAILER_MAKES,
            CARAVAN_MAKES,
            HEAVY_TRAILER_MAKES,
            MC_MAKES,
            MOPED_MAKES,
            TRACTOR_MAKES,
        ] {
            for m in table {
                assert!(
                    codes.contains(&(m.0.to_string(), m.1.to_string())),
                    "{} {}",
                    m.0,
                    m.1
                );
                assert!(!m.4.is_empty() || !m.5.is_empty(), "{}", m.1);
            }
        }
        for (c, n, _) in EARLY_EVS {
            assert!(codes.contains(&(c.to_string(), n.to_string())), "{c} {n}");
        }
        assert!(model_sold("GOLF", 1990) && !model_sold("ID.3", 2015) && model_sold("NOPE", 1900));
        for (code, _) in EV_MAKES {
            let m = CAR_MAKES.iter().find(|m| m.0 == *code).expect(code);
            assert!(!m.5.is_empty(), "{code} has no electric models");
        }
    }
}
