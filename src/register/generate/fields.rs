//! Positions of the technical fields in `catalog::TECHNICAL` that the generator fills
//! (checked against the catalog by a test); a [`Record`](super::batch::Record) is indexed by
//! them.

pub(super) const KJM: usize = 0;
pub(super) const KJM_PERSJ: usize = 1;
pub(super) const KJM_FARGE: usize = 2;
pub(super) const UNR: usize = 3;
pub(super) const REG_F_G: usize = 4;
pub(super) const REG_F_G_N: usize = 5;
pub(super) const REG_EIERSKIFTE: usize = 6;
pub(super) const REG_EIER: usize = 7;
pub(super) const AVREG: usize = 8;
pub(super) const VRAKET: usize = 9;
pub(super) const UTFORT: usize = 10;
pub(super) const REG_STATUS: usize = 11;
pub(super) const BRUKTIMP: usize = 12;
pub(super) const MERKE: usize = 13;
pub(super) const MERKENAVN: usize = 14;
pub(super) const MODELL: usize = 15;
pub(super) const TKNAVN: usize = 16;
pub(super) const TUK: usize = 17;
pub(super) const KJTGRP: usize = 18;
pub(super) const MOTORKODE: usize = 19;
pub(super) const MOTORYTELSE: usize = 20;
pub(super) const SLAGVOLUM: usize = 21;
pub(super) const DRIVST: usize = 22;
pub(super) const GIRKASSE: usize = 23;
pub(super) const HYBRID: usize = 24;
pub(super) const HYBRID_KAT: usize = 25;
pub(super) const TOTVEKT: usize = 26;
pub(super) const EGENVEKT: usize = 27;
pub(super) const VOGNTOGVEKT: usize = 28;
pub(super) const TAKLAST: usize = 29;
pub(super) const THV_M: usize = 30;
pub(super) const THV_U: usize = 31;
pub(super) const BEL_H: usize = 32;
pub(super) const LENGDE: usize = 33;
pub(super) const BREDDE: usize = 34;
pub(super) const DORER: usize = 35;
pub(super) const FARGE: usize = 36;
pub(super) const PABYGG: usize = 37;
pub(super) const SETER_FORAN: usize = 38;
pub(super) const SETER_TOT: usize = 39;
pub(super) const AKSLER: usize = 40;
pub(super) const AKSLER_DRIFT: usize = 41;
pub(super) const DEKK_1: usize = 44;
pub(super) const DEKK_2: usize = 45;
pub(super) const FELG_1: usize = 48;
pub(super) const FELG_2: usize = 49;
pub(super) const MILI_1: usize = 51;
pub(super) const MILI_2: usize = 52;
pub(super) const HAST_1: usize = 54;
pub(super) const HAST_2: usize = 55;
pub(super) const INNP_1: usize = 57;
pub(super) const INNP_2: usize = 58;
pub(super) const SPOR_1: usize = 60;
pub(super) const SPOR_2: usize = 61;
pub(super) const LAST_1: usize = 63;
pub(super) const LAST_2: usize = 64;
pub(super) const NGN: usize = 69;
pub(super) const EU_HOVED: usize = 70;
pub(super) const EURONORM: usize = 71;
pub(super) const EU_TYPE: usize = 72;
pub(super) const EU_VARIANT: usize = 73;
pub(super) const EU_VERSJON: usize = 74;
pub(super) const SISTE_PKK: usize = 75;
pub(super) const NESTE_PKK: usize = 76;
pub(super) const STANDSTOY: usize = 77;
pub(super) const PARTIKKELFILTER: usize = 78;
pub(super) const NOX_MG: usize = 79;
pub(super) const NOX_G: usize = 80;
pub(super) const PARTIKKEL: usize = 81;
pub(super) const MAALEMETODE: usize = 82;
pub(super) const CO2: usize = 83;
pub(super) const FORBRUK: usize = 84;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::catalog::TECHNICAL;
    use crate::register::generate::batch::{FIELDS, OWNER_COLS, O_KOMMUNE, O_TO};

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
        assert_eq!(TECHNICAL.len(), FIELDS);
        assert_eq!(OWNER_COLS[O_TO], "to_date");
        assert_eq!(OWNER_COLS[O_KOMMUNE], "municipality");
    }
}
