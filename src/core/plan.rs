//! A run resolved once ([`RunPlan`]): from a subscription, the run's fire time and the end
//! of the last delivered period to everything the pipeline needs — the period, the remote
//! file names for each format the extract may come out in, the code tables beside it, how
//! it is sealed, uploaded and verified. Pure; made before any I/O and handed down the
//! pipeline (artifact -> upload -> receipt), so no stage goes back to re-derive a part.

use crate::core::catalog::ReportKind;
use crate::core::codes::CodeTable;
use crate::core::config::template::{self, NameContext};
use crate::core::config::validate::{DeliverySpec, EncryptionSpec};
use crate::core::config::{ExtractSpec, Format, Subscription, Transport};
use crate::core::identity::SubscriptionId;
use crate::core::period::{self, Period};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

/// Why a run cannot be planned. Permanent: the same subscription and fire time give the
/// same error until the subscription file changes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The file-name template does not give a safe name for this run.
    #[error("file name: {0}")]
    Name(String),
    /// Report `code_tables` lists no table.
    #[error("report code_tables lists no code table; add `code_tables = [...]` to [extract]")]
    NoCodeTable,
    /// The `[email] subject` template does not give a subject for this run.
    #[error("e-mail subject: {0}")]
    Subject(String),
}

/// One run, decided.
#[derive(Debug, Clone)]
pub struct RunPlan {
    pub subscription: SubscriptionId,
    pub scheduled_at: DateTime<Utc>,
    /// The fire time on the subscription's wall clock.
    pub local_time: NaiveDateTime,
    /// The period the extract covers (none for reports without one).
    pub period: Option<Period>,
    pub extract: ExtractSpec,
    pub encryption: EncryptionSpec,
    pub delivery: DeliverySpec,
    /// Where the files go: the SFTP target or the e-mail recipients.
    pub transport: Transport,
    /// The e-mail subject of the run (e-mail subscriptions).
    pub subject: Option<String>,
    /// The files of the run for each format the extract may come out in: the configured
    /// one first, then `dsv` when an xlsx extract may fall back (too many rows).
    files: Vec<(Format, FileSet)>,
}

/// The remote files of a run in one format: the main file and the code tables beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSet {
    /// The main file's remote name.
    pub main: String,
    /// The main file's table when the report is `code_tables` (the first table listed).
    pub main_table: Option<CodeTable>,
    /// Code tables delivered beside the main file, uploaded before it.
    pub extras: Vec<PlannedTable>,
}

/// A code table delivered beside the main file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedTable {
    pub table: CodeTable,
    pub file_name: String,
}

impl RunPlan {
    /// Plans the run of `sub` fired at `scheduled_at`; `last_delivered_to` is the end of
    /// the last delivered period (for periods "since the last delivery").
    pub fn new(
        sub: &Subscription,
        scheduled_at: DateTime<Utc>,
        last_delivered_to: Option<NaiveDate>,
    ) -> Result<RunPlan, PlanError> {
        let period = run_period(sub, scheduled_at, last_delivered_to);
        let local_time = sub.schedule.local(scheduled_at).naive_local();
        let mut formats = vec![sub.extract.format];
        if sub.extract.format == Format::Xlsx {
            formats.push(Format::Dsv);
        }
        let files = formats
            .into_iter()
            .map(|f| Ok((f, file_set(sub, local_time, period.as_ref(), f)?)))
            .collect::<Result<_, PlanError>>()?;
        let subject = match &sub.transport {
            Transport::Email(e) => Some(
                crate::core::config::validate::render_subject(
                    &e.subject,
                    &name_context(sub, local_time, period.as_ref(), ""),
                )
                .map_err(PlanError::Subject)?,
            ),
            Transport::Sftp(_) => None,
        };
        Ok(RunPlan {
            subscription: sub.id.clone(),
            scheduled_at,
            local_time,
            period,
            extract: sub.extract.clone(),
            encryption: sub.encryption.clone(),
            delivery: sub.delivery.clone(),
            transport: sub.transport.clone(),
            subject,
            files,
        })
    }

    /// The run's files when the extract comes out as `format`.
    ///
    /// # Panics
    /// For a format the plan did not foresee (only the configured one and the xlsx -> dsv
    /// fallback exist), which is a bug in the extract.
    pub fn files(&self, format: Format) -> &FileSet {
        self.files
            .iter()
            .find(|(f, _)| *f == format)
            .map(|(_, s)| s)
            .unwrap_or_else(|| panic!("run plan has no files for format {format:?}"))
    }

    /// The files in the configured format.
    pub fn planned_files(&self) -> &FileSet {
        &self.files[0].1
    }

    /// Whether the report reads the register (every report but `code_tables`).
    pub fn reads_register(&self) -> bool {
        self.extract.report != ReportKind::CodeTables
    }
}

/// The period a run covers: the subscription's period evaluated on the run's scheduled
/// date in its time zone.
pub fn run_period(
    sub: &Subscription,
    scheduled_at: DateTime<Utc>,
    last_delivered_to: Option<NaiveDate>,
) -> Option<Period> {
    let local = sub.schedule.local(scheduled_at).date_naive();
    sub.extract
        .period
        .map(|p| period::resolve(p, local, last_delivered_to))
}

/// The extension of a delivered file: the format's, plus `.age` when encrypted.
fn extension_of(encryption: &EncryptionSpec, format: Format) -> String {
    if encryption.encrypt {
        format!("{}.age", format.as_str())
    } else {
        format.as_str().to_string()
    }
}

/// The remote name of a code table delivered beside `main_name` (whose extension is
/// `main_ext`): `MVR_20261125.dsv.age` -> `MVR_20261125_merkekode.dsv.age`.
fn code_table_file_name(main_name: &str, main_ext: &str, table: CodeTable, ext: &str) -> String {
    let stem = main_name
        .strip_suffix(&format!(".{main_ext}"))
        .unwrap_or(main_name);
    format!("{stem}_{}.{ext}", table.file_stem())
}

/// The remote file name the template gives for a run in `format`.
fn template_name(
    sub: &Subscription,
    local_time: NaiveDateTime,
    period: Option<&Period>,
    ext: &str,
) -> Result<String, PlanError> {
    let ctx = name_context(sub, local_time, period, ext);
    template::render(&sub.delivery.file_name, &ctx).map_err(PlanError::Name)
}

/// The values a file-name or subject template of this run can use.
fn name_context<'a>(
    sub: &'a Subscription,
    local_time: NaiveDateTime,
    period: Option<&Period>,
    ext: &'a str,
) -> NameContext<'a> {
    NameContext {
        id: &sub.id,
        report: sub.extract.report.as_str(),
        ext,
        run: local_time,
        period_start: period
            .and_then(|p| p.from)
            .map(|d| d.and_hms_opt(0, 0, 0).expect("midnight")),
        period_end: period.map(|p| p.to.and_hms_opt(0, 0, 0).expect("midnight")),
    }
}

fn file_set(
    sub: &Subscription,
    local_time: NaiveDateTime,
    period: Option<&Period>,
    format: Format,
) -> Result<FileSet, PlanError> {
    let ext = extension_of(&sub.encryption, format);
    let base = template_name(sub, local_time, period, &ext)?;
    let beside = |tables: &[CodeTable], main: &str| -> Vec<PlannedTable> {
        tables
            .iter()
            .map(|&table| PlannedTable {
                table,
                file_name: code_table_file_name(main, &ext, table, &ext),
            })
            .collect()
    };
    if sub.extract.report == ReportKind::CodeTables {
        // No register read: the first table is the main file, named like any code table.
        let (first, rest) = sub
            .extract
            .code_tables
            .split_first()
            .ok_or(PlanError::NoCodeTable)?;
        Ok(FileSet {
            main: code_table_file_name(&base, &ext, *first, &ext),
            main_table: Some(*first),
            extras: beside(rest, &base),
        })
    } else {
        Ok(FileSet {
            extras: beside(&sub.extract.code_tables, &base),
            main: base,
            main_table: None,
        })
    }
}

/// A valid subscription `id` with this `[extract]` and `[delivery]` body, for the unit tests
/// of the pure core (plan, scan).
#[cfg(test)]
pub(crate) fn test_subscription(id: &str, extract: &str, delivery: &str) -> Subscription {
    use crate::core::config::raw::RawSubscription;
    use crate::core::config::validate::{validate_subscription, Inherited};
    const AGE: &str = "age13k7zew9msc69sqmx4wt7jlxxdz9y25wdpsce3yqrwn5cm2880y6szzkp7r";
    const HOSTKEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIL8KQRoLcAyA3HjT2XTLV/KiImqim5ZNP9y7enr60/qj";
    let text = format!(
        "id = \"{id}\"\ncustomer = \"Test\"\nlegal_basis = \"test\"\n[schedule]\ncron = \"0 6 * * *\"\n\
         [target]\nhost = \"127.0.0.1\"\nusername = \"u\"\nhost_keys = [\"{HOSTKEY}\"]\n\
         auth = {{ key_file = \"k\" }}\nremote_dir = \"/in\"\n[extract]\n{extract}\n\
         [encryption]\nrecipients = [\"{AGE}\"]\n[delivery]\n{delivery}\n"
    );
    let raw: RawSubscription = toml::from_str(&text).unwrap();
    let inh = Inherited {
        timezone: "Europe/Oslo".into(),
        retry: Default::default(),
        secrets_dir: ".".into(),
        offers: crate::core::config::validate::Offers::ASSUMED,
    };
    validate_subscription(&raw, &inh, std::path::Path::new("t.toml"))
        .unwrap_or_else(|p| panic!("{p:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(extract: &str, delivery: &str) -> Subscription {
        test_subscription("t", extract, delivery)
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn names_come_from_the_local_fire_time_and_the_format() {
        let s = sub(
            "report = \"technical_owners\"\nformat = \"xlsx\"",
            "file_name = \"{id}_{run:%Y%m%dT%H%M}.{ext}\"",
        );
        // 05:00 UTC is 06:00 in Oslo in November.
        let p = RunPlan::new(&s, at("2026-11-25T05:00:00Z"), None).unwrap();
        assert_eq!(p.local_time.to_string(), "2026-11-25 06:00:00");
        assert_eq!(p.planned_files().main, "t_20261125T0600.xlsx.age");
        // The xlsx -> dsv fallback is planned too, under its own extension.
        assert_eq!(p.files(Format::Dsv).main, "t_20261125T0600.dsv.age");
        assert!(p.reads_register());
    }

    #[test]
    fn code_tables_are_named_after_the_main_file() {
        let s = sub(
            "report = \"technical_owners\"\ncode_tables = [\"make\", \"fuel\"]",
            "file_name = \"MVR_{run:%Y%m%d}.{ext}\"",
        );
        let p = RunPlan::new(&s, at("2026-11-25T05:00:00Z"), None).unwrap();
        let f = p.planned_files();
        assert_eq!(f.main, "MVR_20261125.dsv.age");
        assert_eq!(f.main_table, None);
        let names: Vec<&str> = f.extras.iter().map(|t| t.file_name.as_str()).collect();
        assert_eq!(
            names,
            [
                format!("MVR_20261125_{}.dsv.age", CodeTable::Make.file_stem()),
                format!("MVR_20261125_{}.dsv.age", CodeTable::Fuel.file_stem())
            ]
        );
    }

    #[test]
    fn report_code_tables_delivers_the_first_table_as_the_main_file() {
        let s = sub(
            "report = \"code_tables\"\ncode_tables = [\"make\", \"fuel\"]",
            "file_name = \"kodeverk_{run:%Y%m%d}.{ext}\"",
        );
        let p = RunPlan::new(&s, at("2026-11-25T05:00:00Z"), None).unwrap();
        let f = p.planned_files();
        assert!(!p.reads_register());
        assert_eq!(f.main_table, Some(CodeTable::Make));
        assert_eq!(
            f.main,
            format!("kodeverk_20261125_{}.dsv.age", CodeTable::Make.file_stem())
        );
        assert_eq!(f.extras.len(), 1);
        assert_eq!(f.extras[0].table, CodeTable::Fuel);
    }

    #[test]
    fn the_same_inputs_give_the_same_plan() {
        let s = sub(
            "report = \"technical_owners\"",
            "file_name = \"{id}_{run:%Y%m%d%H%M%S}.{ext}\"",
        );
        let a = RunPlan::new(&s, at("2026-03-29T01:30:00Z"), None).unwrap();
        let b = RunPlan::new(&s, at("2026-03-29T01:30:00Z"), None).unwrap();
        assert_eq!(a.planned_files(), b.planned_files());
        assert_eq!(a.period, b.period);
    }
}
