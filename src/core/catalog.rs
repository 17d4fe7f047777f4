//! The register's fields: name, header text, type, and whether a field is personal data
//! or identifies one vehicle. Pure data; every report, writer and validation rule reads it.

/// How a field's values look; decides filters and how spreadsheets type a cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// Free text, written as-is.
    Text,
    /// `YYYYMMDD`, empty when missing.
    Date,
    /// A whole number (may be empty).
    Integer,
    /// A decimal with `.` (may be empty).
    Decimal,
    /// Several codes joined by `,` (fuel per motor, colours, measuring methods).
    MultiCode,
}

/// Which source a field is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A column of the `vehicle` table (`v.<column>`).
    Vehicle,
    /// A derived value from a code table (vehicle-group name).
    Code,
    /// A column of one current ownership role (`eier`, `medeier`, `leasingtaker`).
    Owner(Role),
}

/// An ownership role as the authority names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Eier,
    Medeier,
    Leasingtaker,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Eier, Role::Medeier, Role::Leasingtaker];

    /// The value stored in `ownership.role`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Eier => "eier",
            Role::Medeier => "medeier",
            Role::Leasingtaker => "leasingtaker",
        }
    }

    /// Column-name prefix in owner reports (`EIER_NAVN`, ...).
    pub fn prefix(self) -> &'static str {
        match self {
            Role::Eier => "EIER",
            Role::Medeier => "MEDEIER",
            Role::Leasingtaker => "LEASINGTAKER",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// One field of the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// Column name in reports (`TEKN_KJM`, `EIER_NAVN`, ...).
    pub name: String,
    /// What the field means, in the authority's words (Norwegian).
    pub title: &'static str,
    pub kind: FieldKind,
    pub source: Source,
    /// Personal data (GDPR): only with a legal basis and always encrypted.
    pub personal: bool,
    /// Identifies one vehicle (plate, chassis number): never in open data.
    pub identifying: bool,
    /// SQL expression reading the field (aliases: `v` vehicle, `kg` vehicle-group codes,
    /// `o_<role>` ownership rows).
    pub sql: String,
}

/// The authority's 85 technical fields, in the order of the standard technical report
/// (`MVR_TECH_DATA`), with their meaning and kind.
pub const TECHNICAL: [(&str, &str, FieldKind); 85] = {
    use FieldKind::*;
    [
        ("TEKN_KJM", "Kjennemerke", Text),
        ("TEKN_KJM_PERSJ", "Personlig kjennemerke", Text),
        ("TEKN_KJM_FARGE", "Kjennemerketype", Text),
        ("TEKN_UNR", "Understellsnummer", Text),
        ("TEKN_REG_F_G", "Første gang registrert", Date),
        ("TEKN_REG_F_G_N", "Første gang registrert i Norge", Date),
        ("TEKN_REG_EIERSKIFTE_DATO", "Siste eierskifte", Date),
        ("TEKN_REG_EIER_DATO", "Registrert på eier", Date),
        ("TEKN_AVREG_DATO", "Avregistrert dato", Date),
        ("TEKN_VRAKET_DATO", "Vraket dato", Date),
        ("TEKN_UTFORT_DATO", "Utført dato", Date),
        ("TEKN_REG_STATUS", "Registreringsstatus", Text),
        ("TEKN_BRUKTIMP", "Bruktimportert (0/1)", Integer),
        ("TEKN_MERKE", "Merkekode", Text),
        ("TEKN_MERKENAVN", "Merkenavn", Text),
        ("TEKN_MODELL", "Modell/handelsbetegnelse", Text),
        ("TEKN_TKNAVN", "Teknisk kode (EU-klasse)", Text),
        ("TEKN_TUK_VERDI", "Tilleggskode", Text),
        ("TEKN_KJTGRP", "Kjøretøygruppe (avgiftskode)", Text),
        ("TEKN_MOTORKODE", "Motorkode", Text),
        ("TEKN_MOTORYTELSE", "Motorytelse kW", Decimal),
        ("TEKN_SLAGVOLUM", "Slagvolum cm3", Integer),
        ("TEKN_DRIVST", "Drivstoffkoder per motor", MultiCode),
        ("TEKN_GIRKASSE", "Girkasse", Text),
        ("TEKN_HYBRID", "Hybrid", Text),
        ("TEKN_HYBRID_KATEGORI", "Hybridkategori", Text),
        ("TEKN_TOTVEKT", "Tillatt totalvekt kg", Integer),
        ("TEKN_EGENVEKT", "Egenvekt kg", Integer),
        ("TEKN_VOGNTOGVEKT", "Tillatt vogntogvekt kg", Integer),
        ("TEKN_MAKS_TAKLAST", "Maks taklast kg", Integer),
        ("TEKN_THV_M_BREMS", "Tilhengervekt med brems kg", Integer),
        ("TEKN_THV_U_BREMS", "Tilhengervekt uten brems kg", Integer),
        ("TEKN_BEL_H_FESTE", "Belastning hengerfeste kg", Integer),
        ("TEKN_LENGDE", "Lengde mm", Integer),
        ("TEKN_BREDDE", "Bredde mm", Integer),
        ("TEKN_ANTALL_DORER", "Antall dører", Integer),
        ("TEKN_FARGE", "Fargekoder", MultiCode),
        ("TEKN_PABYGG", "Påbygg", Text),
        ("TEKN_SITTEPLASSERFORAN", "Sitteplasser foran", Integer),
        ("TEKN_SITTEPLASSER_TOTALT", "Sitteplasser totalt", Integer),
        ("TEKN_AKSLER", "Antall aksler", Integer),
        ("TEKN_AKSLER_DRIFT", "Aksler med drift", Integer),
        ("TEKN_MINAVST_MS1", "Minste akselavstand 1", Text),
        ("TEKN_MINAVST_MS2", "Minste akselavstand 2", Text),
        ("TEKN_DEKK_1", "Dekk aksel 1", Text),
        ("TEKN_DEKK_2", "Dekk aksel 2", Text),
        ("TEKN_DEKK_3", "Dekk aksel 3", Text),
        ("TEKN_DEKK_F", "Dekk felles", Text),
        ("TEKN_FELG_1", "Felg aksel 1", Text),
        ("TEKN_FELG_2", "Felg aksel 2", Text),
        ("TEKN_FELG_3", "Felg aksel 3", Text),
        ("TEKN_MILI_1", "Belastningsindeks aksel 1", Text),
        ("TEKN_MILI_2", "Belastningsindeks aksel 2", Text),
        ("TEKN_MILI_3", "Belastningsindeks aksel 3", Text),
        ("TEKN_HAST_1", "Hastighetsindeks aksel 1", Text),
        ("TEKN_HAST_2", "Hastighetsindeks aksel 2", Text),
        ("TEKN_HAST_3", "Hastighetsindeks aksel 3", Text),
        ("TEKN_INNP_1", "Innpress aksel 1", Text),
        ("TEKN_INNP_2", "Innpress aksel 2", Text),
        ("TEKN_INNP_3", "Innpress aksel 3", Text),
        ("TEKN_SPOR_1", "Sporvidde aksel 1", Text),
        ("TEKN_SPOR_2", "Sporvidde aksel 2", Text),
        ("TEKN_SPOR_3", "Sporvidde aksel 3", Text),
        ("TEKN_LAST_1", "Akseltrykk aksel 1 kg", Text),
        ("TEKN_LAST_2", "Akseltrykk aksel 2 kg", Text),
        ("TEKN_LAST_3", "Akseltrykk aksel 3 kg", Text),
        ("TEKN_LUFT_1", "Luftfjæring aksel 1", Text),
        ("TEKN_LUFT_2", "Luftfjæring aksel 2", Text),
        ("TEKN_LUFT_3", "Luftfjæring aksel 3", Text),
        ("TEKN_NGN", "Nasjonalt godkjenningsnummer", Text),
        ("TEKN_EU_HOVED", "EU-typegodkjenningsnummer", Text),
        ("TEKN_EURONORM_NY", "Euronorm", Text),
        ("TEKN_EU_TYPE", "EU-type", Text),
        ("TEKN_EU_VARIANT", "EU-variant", Text),
        ("TEKN_EU_VERSJON", "EU-versjon", Text),
        ("TEKN_SISTE_PKK", "PKK/EU-kontroll sist godkjent", Date),
        ("TEKN_NESTE_PKK", "PKK/EU-kontrollfrist", Date),
        ("TEKN_STANDSTOY", "Standstøy dB", Text),
        ("TEKN_PARTIKKELFILTER", "Partikkelfilter (0/1)", Integer),
        ("TEKN_NOX_UTSLIPP_MGPRKM", "NOx mg/km", Decimal),
        ("TEKN_NOX_UTSLIPP_GPRKWH", "NOx g/kWh", Decimal),
        ("TEKN_PARTIKKELUTSLIPP", "Partikkelutslipp", Decimal),
        ("TEKN_MAALEMETODE", "Målemetode", MultiCode),
        ("TEKN_CO2_UTSLIPP", "CO2 g/km", Decimal),
        ("TEKN_DRIVSTOFF_FORBRUK", "Drivstofforbruk l/100km", Decimal),
    ]
};

/// Fields that identify one vehicle; never part of open data.
pub const IDENTIFYING: [&str; 3] = ["TEKN_KJM", "TEKN_KJM_PERSJ", "TEKN_UNR"];

/// The SQL column name of a technical field (`TEKN_KJM` -> `tekn_kjm`).
pub fn column_of(name: &str) -> String {
    name.to_ascii_lowercase()
}

/// Owner columns per role: (suffix, title, kind, personal, SQL expression on `o_<role>`).
/// Persons have a name and a birth date; organisations a name and an organisation number.
const OWNER_COLUMNS: [(&str, &str, FieldKind, bool, &str); 10] = {
    use FieldKind::*;
    [
        ("NAVN", "navn (fornavn og mellomnavn, eller organisasjonsnavn)", Text, true,
         "CASE WHEN {o}.org_number IS NOT NULL THEN {o}.org_name ELSE trim({o}.first_name || ' ' || coalesce({o}.middle_name, '')) END"),
        ("ETTERNAVN", "etternavn", Text, true, "{o}.last_name"),
        ("ADRESSE", "adresse", Text, true, "{o}.address"),
        ("POSTNR", "postnummer", Text, true, "{o}.postal_code"),
        ("POSTSTED", "poststed", Text, true, "{o}.postal_place"),
        ("KOMMUNENR", "kommunenummer", Text, true, "{o}.municipality"),
        ("FYLKENR", "fylkesnummer", Text, true, "substr({o}.municipality, 1, 2)"),
        ("FODSELSDATO", "fødselsdato", Date, true, "{o}.birth_date"),
        ("ORGNR", "organisasjonsnummer", Text, false, "{o}.org_number"),
        ("FRA_DATO", "eierskap fra dato", Date, false, "{o}.from_date"),
    ]
};

/// Every field the catalog knows: the 85 technical fields, derived code names, and the
/// owner columns of each role.
pub fn all_fields() -> Vec<Field> {
    let mut out: Vec<Field> = TECHNICAL
        .iter()
        .map(|&(name, title, kind)| Field {
            name: name.to_string(),
            title,
            kind,
            source: Source::Vehicle,
            personal: false,
            identifying: IDENTIFYING.contains(&name),
            sql: format!("v.{}", column_of(name)),
        })
        .collect();
    out.push(Field {
        name: "KJTGRP_NAVN".into(),
        title: "Kjøretøygruppe navn",
        kind: FieldKind::Text,
        source: Source::Code,
        personal: false,
        identifying: false,
        sql: "kg.name".into(),
    });
    for role in Role::ALL {
        for &(suffix, title, kind, personal, expr) in OWNER_COLUMNS.iter() {
            out.push(Field {
                name: format!("{}_{}", role.prefix(), suffix),
                title,
                kind,
                source: Source::Owner(role),
                personal,
                identifying: personal,
                sql: expr.replace("{o}", &format!("o_{}", role.as_str())),
            });
        }
    }
    out
}

/// Looks a field up by its report name.
pub fn field(name: &str) -> Option<Field> {
    all_fields().into_iter().find(|f| f.name == name)
}

/// The standard reports (seed 000: the authority's standing products).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReportKind {
    /// The standard technical report: the 85 `TEKN_*` columns in the authority's order.
    Technical,
    /// The technical report plus name, current address and birth date or organisation
    /// number of owner, co-owner and lessee.
    TechnicalOwners,
    /// Vehicles first registered in a period: plate, date, vehicle group, make, model,
    /// chassis number.
    FirstRegistrations,
    /// Owners of vehicles (e.g. of a make in an area), one row per vehicle's current owner.
    Owners,
    /// A column list chosen by the subscription.
    Custom,
    /// The open-data technical extract (data.norge.no): the technical report without
    /// anything that identifies one vehicle ([`IDENTIFYING`]: plate, personal plate,
    /// chassis number). Never personal data, so it may go out unencrypted.
    TechnicalOpen,
    /// Only code tables (`extract.code_tables`), no register rows.
    CodeTables,
}

impl ReportKind {
    pub const ALL: [ReportKind; 7] = [
        ReportKind::Technical,
        ReportKind::TechnicalOwners,
        ReportKind::FirstRegistrations,
        ReportKind::Owners,
        ReportKind::Custom,
        ReportKind::TechnicalOpen,
        ReportKind::CodeTables,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReportKind::Technical => "technical",
            ReportKind::TechnicalOwners => "technical_owners",
            ReportKind::FirstRegistrations => "first_registrations",
            ReportKind::Owners => "owners",
            ReportKind::Custom => "custom",
            ReportKind::TechnicalOpen => "technical_open",
            ReportKind::CodeTables => "code_tables",
        }
    }

    pub fn parse(s: &str) -> Option<ReportKind> {
        ReportKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The date a `period` applies to when the subscription does not say.
    pub fn default_period_field(self) -> PeriodField {
        match self {
            ReportKind::Owners => PeriodField::Ownership,
            _ => PeriodField::FirstRegistrationNorway,
        }
    }

    /// The fixed columns of the report (`None` for `custom`; empty for `code_tables`, whose
    /// files have their own `kode`/`navn` columns).
    pub fn columns(self) -> Option<Vec<Field>> {
        let names: Vec<String> = match self {
            ReportKind::Technical => TECHNICAL.iter().map(|f| f.0.to_string()).collect(),
            ReportKind::TechnicalOpen => TECHNICAL
                .iter()
                .map(|f| f.0)
                .filter(|n| !IDENTIFYING.contains(n))
                .map(String::from)
                .collect(),
            ReportKind::CodeTables => vec![],
            ReportKind::TechnicalOwners => {
                let mut v: Vec<String> = TECHNICAL.iter().map(|f| f.0.to_string()).collect();
                for role in Role::ALL {
                    for suffix in [
                        "NAVN",
                        "ETTERNAVN",
                        "ADRESSE",
                        "POSTNR",
                        "POSTSTED",
                        "KOMMUNENR",
                        "FODSELSDATO",
                        "ORGNR",
                    ] {
                        v.push(format!("{}_{suffix}", role.prefix()));
                    }
                }
                v
            }
            ReportKind::FirstRegistrations => [
                "TEKN_KJM",
                "TEKN_REG_F_G_N",
                "KJTGRP_NAVN",
                "TEKN_KJTGRP",
                "TEKN_MERKENAVN",
                "TEKN_MERKE",
                "TEKN_MODELL",
                "TEKN_UNR",
            ]
            .map(String::from)
            .to_vec(),
            ReportKind::Owners => [
                "TEKN_KJM",
                "EIER_NAVN",
                "EIER_ETTERNAVN",
                "EIER_POSTNR",
                "EIER_ADRESSE",
                "EIER_POSTSTED",
                "EIER_FODSELSDATO",
                "EIER_ORGNR",
                "TEKN_KJTGRP",
                "TEKN_MERKENAVN",
                "TEKN_REG_F_G",
                "TEKN_REG_F_G_N",
                "EIER_FRA_DATO",
                "TEKN_REG_STATUS",
                "TEKN_AVREG_DATO",
                "TEKN_VRAKET_DATO",
                "TEKN_NESTE_PKK",
                "TEKN_SISTE_PKK",
            ]
            .map(String::from)
            .to_vec(),
            ReportKind::Custom => return None,
        };
        let all = all_fields();
        Some(
            names
                .iter()
                .map(|n| {
                    all.iter()
                        .find(|f| &f.name == n)
                        .expect("report column in catalog")
                        .clone()
                })
                .collect(),
        )
    }
}

/// Which date a report period applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeriodField {
    FirstRegistration,
    FirstRegistrationNorway,
    Ownership,
    Deregistered,
    Scrapped,
}

impl PeriodField {
    pub const ALL: [PeriodField; 5] = [
        PeriodField::FirstRegistration,
        PeriodField::FirstRegistrationNorway,
        PeriodField::Ownership,
        PeriodField::Deregistered,
        PeriodField::Scrapped,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            PeriodField::FirstRegistration => "first_registration",
            PeriodField::FirstRegistrationNorway => "first_registration_norway",
            PeriodField::Ownership => "ownership",
            PeriodField::Deregistered => "deregistered",
            PeriodField::Scrapped => "scrapped",
        }
    }
    pub fn parse(s: &str) -> Option<PeriodField> {
        PeriodField::ALL.into_iter().find(|k| k.as_str() == s)
    }
    /// The `vehicle` column holding the date (`YYYYMMDD`).
    pub fn column(self) -> &'static str {
        match self {
            PeriodField::FirstRegistration => "tekn_reg_f_g",
            PeriodField::FirstRegistrationNorway => "tekn_reg_f_g_n",
            PeriodField::Ownership => "tekn_reg_eier_dato",
            PeriodField::Deregistered => "tekn_avreg_dato",
            PeriodField::Scrapped => "tekn_vraket_dato",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 5: the open-data report is the technical report minus plate, personal plate
    /// and chassis number, in the authority's order, and holds no personal field.
    #[test]
    fn technical_open_has_no_plate_chassis_or_personal_field() {
        let open = ReportKind::TechnicalOpen.columns().unwrap();
        assert_eq!(open.len(), 85 - IDENTIFYING.len());
        for f in &open {
            assert!(!f.identifying && !f.personal, "{} in open data", f.name);
            assert!(!["TEKN_KJM", "TEKN_KJM_PERSJ", "TEKN_UNR"].contains(&f.name.as_str()));
        }
        let technical: Vec<String> = ReportKind::Technical
            .columns()
            .unwrap()
            .into_iter()
            .filter(|f| !f.identifying)
            .map(|f| f.name)
            .collect();
        let names: Vec<String> = open.into_iter().map(|f| f.name).collect();
        assert_eq!(names, technical);
        assert_eq!(
            ReportKind::parse("technical_open"),
            Some(ReportKind::TechnicalOpen)
        );
    }

    #[test]
    fn technical_matches_the_authority_header() {
        let header = include_str!("../../tests/data/MVR_TECH_DATA.sample.txt")
            .lines()
            .next()
            .unwrap();
        let names: Vec<&str> = header.split('¤').collect();
        let ours: Vec<&str> = TECHNICAL.iter().map(|f| f.0).collect();
        assert_eq!(names, ours);
    }

    #[test]
    fn names_are_unique_and_owner_fields_are_personal() {
        let all = all_fields();
        let mut names: Vec<&str> = all.iter().map(|f| f.name.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), all.len());
        assert!(field("EIER_NAVN").unwrap().personal);
        assert!(field("LEASINGTAKER_FODSELSDATO").unwrap().personal);
        assert!(!field("EIER_ORGNR").unwrap().personal);
        assert!(!field("TEKN_KJM").unwrap().personal);
        assert!(field("TEKN_KJM").unwrap().identifying);
        assert!(field("NOPE").is_none());
    }

    #[test]
    fn report_columns() {
        assert_eq!(ReportKind::Technical.columns().unwrap().len(), 85);
        assert_eq!(
            ReportKind::TechnicalOwners.columns().unwrap().len(),
            85 + 24
        );
        let first = ReportKind::FirstRegistrations.columns().unwrap();
        assert!(first.iter().all(|f| !f.personal));
        assert!(ReportKind::Owners
            .columns()
            .unwrap()
            .iter()
            .any(|f| f.personal));
        assert!(ReportKind::Custom.columns().is_none());
        assert!(ReportKind::CodeTables.columns().unwrap().is_empty());
        for k in ReportKind::ALL {
            assert_eq!(ReportKind::parse(k.as_str()), Some(k));
        }
    }
}
