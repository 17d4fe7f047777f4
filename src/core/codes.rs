//! The code tables a subscription can receive as files of their own (seed 000: Data
//! Norge's "hjelpetabeller for kodeverk"): make codes, vehicle groups, fuel codes, colour
//! codes, Euro norm, the tyre load-index and speed-index tables, plus the technical-code
//! and registration-status tables. Pure data: the tables are the project's `data/*.csv`,
//! embedded at build time, so a delivery reads them from the binary (the register's own
//! code tables are filled from the same files).
//!
//! Every table is `kode;navn` rows. Lines starting with `#` in a data file are notes (for
//! instance which load indexes the project could not verify) and are never delivered.

/// One deliverable code table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodeTable {
    Make,
    VehicleGroup,
    Fuel,
    Colour,
    Euronorm,
    LoadIndex,
    SpeedIndex,
    TechnicalCode,
    Status,
}

impl CodeTable {
    pub const ALL: [CodeTable; 9] = [
        CodeTable::Make,
        CodeTable::VehicleGroup,
        CodeTable::Fuel,
        CodeTable::Colour,
        CodeTable::Euronorm,
        CodeTable::LoadIndex,
        CodeTable::SpeedIndex,
        CodeTable::TechnicalCode,
        CodeTable::Status,
    ];

    /// The name a subscription uses (`extract.code_tables = ["make", ...]`).
    pub fn as_str(self) -> &'static str {
        match self {
            CodeTable::Make => "make",
            CodeTable::VehicleGroup => "vehicle_group",
            CodeTable::Fuel => "fuel",
            CodeTable::Colour => "colour",
            CodeTable::Euronorm => "euronorm",
            CodeTable::LoadIndex => "load_index",
            CodeTable::SpeedIndex => "speed_index",
            CodeTable::TechnicalCode => "technical_code",
            CodeTable::Status => "status",
        }
    }

    pub fn parse(s: &str) -> Option<CodeTable> {
        CodeTable::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// The Norwegian name, used in delivered file names and as the `data/` file stem.
    pub fn file_stem(self) -> &'static str {
        match self {
            CodeTable::Make => "merkekode",
            CodeTable::VehicleGroup => "kjoretoygruppe",
            CodeTable::Fuel => "drivstoff",
            CodeTable::Colour => "farge",
            CodeTable::Euronorm => "euronorm",
            CodeTable::LoadIndex => "belastningsindeks",
            CodeTable::SpeedIndex => "hastighetsindeks",
            CodeTable::TechnicalCode => "tekniskkode",
            CodeTable::Status => "registreringsstatus",
        }
    }

    /// What the table holds, in the authority's words.
    pub fn title(self) -> &'static str {
        match self {
            CodeTable::Make => "merkekoder, 4-sifret kode for fabrikant",
            CodeTable::VehicleGroup => "kjøretøygrupper, avgiftskoder (101 = personbil)",
            CodeTable::Fuel => "drivstoffkoder",
            CodeTable::Colour => "fargekoder, 2-sifret kode",
            CodeTable::Euronorm => "Euronorm, utslippsklassifisering for lette og tunge kjøretøy",
            CodeTable::LoadIndex => {
                "belastningstabell: belastningsindeks for dekk -> største last per dekk"
            }
            CodeTable::SpeedIndex => {
                "hastighetstabell: hastighetsindeks for dekk -> største hastighet"
            }
            CodeTable::TechnicalCode => "teknisk kode (EU-klasse)",
            CodeTable::Status => "registreringsstatus",
        }
    }

    /// The embedded data file (`data/<file_stem>.csv`).
    pub fn csv(self) -> &'static str {
        match self {
            CodeTable::Make => include_str!("../../data/merkekode.csv"),
            CodeTable::VehicleGroup => include_str!("../../data/kjoretoygruppe.csv"),
            CodeTable::Fuel => include_str!("../../data/drivstoff.csv"),
            CodeTable::Colour => include_str!("../../data/farge.csv"),
            CodeTable::Euronorm => include_str!("../../data/euronorm.csv"),
            CodeTable::LoadIndex => include_str!("../../data/belastningsindeks.csv"),
            CodeTable::SpeedIndex => include_str!("../../data/hastighetsindeks.csv"),
            CodeTable::TechnicalCode => include_str!("../../data/tekniskkode.csv"),
            CodeTable::Status => include_str!("../../data/registreringsstatus.csv"),
        }
    }

    /// The `(kode, navn)` rows in file order.
    pub fn rows(self) -> Vec<(String, String)> {
        parse_table(self.csv())
    }
}

/// Parses a `kode;navn` data file: optional BOM, `#` note lines, one header line.
pub fn parse_table(text: &str) -> Vec<(String, String)> {
    let body: Vec<&str> = text
        .trim_start_matches('\u{feff}')
        .lines()
        .filter(|l| !l.starts_with('#'))
        .collect();
    parse_code_csv(&body.join("\n"))
}

/// Parses a `kode;navn` table (UTF-8, optional BOM, header line) into pairs.
pub fn parse_code_csv(text: &str) -> Vec<(String, String)> {
    text.trim_start_matches('\u{feff}')
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_once(';'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_parses_with_unique_codes() {
        for t in CodeTable::ALL {
            let rows = t.rows();
            assert!(!rows.is_empty(), "{}", t.as_str());
            let mut codes: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
            codes.sort();
            codes.dedup();
            assert_eq!(
                codes.len(),
                rows.len(),
                "{} has duplicate codes",
                t.as_str()
            );
            assert!(rows
                .iter()
                .all(|(k, n)| !k.is_empty() && !n.is_empty() && !k.starts_with('#')));
            assert_eq!(CodeTable::parse(t.as_str()), Some(t));
        }
    }

    #[test]
    fn tyre_tables_hold_the_standard_values() {
        let li = CodeTable::LoadIndex.rows();
        let get = |rows: &[(String, String)], k: &str| {
            rows.iter().find(|r| r.0 == k).map(|r| r.1.clone())
        };
        assert_eq!(li.len(), 200);
        assert_eq!(get(&li, "0").unwrap(), "45 kg");
        assert_eq!(get(&li, "91").unwrap(), "615 kg");
        assert_eq!(get(&li, "100").unwrap(), "800 kg");
        assert_eq!(get(&li, "150").unwrap(), "3350 kg");
        let si = CodeTable::SpeedIndex.rows();
        assert_eq!(get(&si, "A8").unwrap(), "40 km/t");
        assert_eq!(get(&si, "H").unwrap(), "210 km/t");
        assert_eq!(get(&si, "V").unwrap(), "240 km/t");
        assert_eq!(get(&si, "Y").unwrap(), "300 km/t");
    }
}
