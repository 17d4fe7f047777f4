//! Batches handed from the maker thread to the writer: all text of a batch lives in one
//! `String` and fields are (start, end) ranges into it (an empty range is NULL); the
//! ownership columns; [`Record`], the technical fields of the vehicle being made.

use super::dates::civil;

/// A field: a range of [`Batch::text`]; empty = NULL.
pub(super) type Range = (u32, u32);

/// Technical fields of a vehicle (as many as `catalog::TECHNICAL`).
pub(super) const FIELDS: usize = 85;

/// Ownership columns after `vehicle_id, role`, in insert order.
pub(super) const OWNER_COLS: [&str; 15] = [
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
pub(super) const O_NID: usize = 0;
pub(super) const O_FIRST: usize = 1;
pub(super) const O_MIDDLE: usize = 2;
pub(super) const O_LAST: usize = 3;
pub(super) const O_BIRTH: usize = 4;
pub(super) const O_ORGNR: usize = 5;
pub(super) const O_ORGNAME: usize = 6;
pub(super) const O_ADDR: usize = 7;
pub(super) const O_POSTNR: usize = 8;
pub(super) const O_POSTSTED: usize = 9;
pub(super) const O_KOMMUNE: usize = 10;
pub(super) const O_LAND: usize = 11;
pub(super) const O_FROM: usize = 12;
pub(super) const O_TO: usize = 13;

/// The role of an ownership row (the `role` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    Owner,
    CoOwner,
    Lessee,
}

impl Role {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "eier",
            Role::CoOwner => "medeier",
            Role::Lessee => "leasingtaker",
        }
    }
}

/// One ownership row.
pub(super) struct OwnerRow {
    pub(super) vehicle: u64,
    pub(super) role: Role,
    pub(super) fields: [Range; 15],
}

/// Vehicles and ownership rows of a batch.
pub(super) struct Batch {
    pub(super) text: String,
    pub(super) ids: Vec<u64>,
    pub(super) vehicles: Vec<[Range; FIELDS]>,
    pub(super) owners: Vec<OwnerRow>,
}

impl Batch {
    pub(super) fn with_capacity(n: usize) -> Batch {
        Batch {
            text: String::with_capacity(n * 700),
            ids: Vec::with_capacity(n),
            vehicles: Vec::with_capacity(n),
            owners: Vec::with_capacity(n * 3 / 2),
        }
    }

    /// Appends `s` and returns its range.
    pub(super) fn put(&mut self, s: &str) -> Range {
        let a = self.text.len() as u32;
        self.text.push_str(s);
        (a, self.text.len() as u32)
    }

    pub(super) fn put_fmt(&mut self, args: std::fmt::Arguments<'_>) -> Range {
        use std::fmt::Write;
        let a = self.text.len() as u32;
        let _ = self.text.write_fmt(args);
        (a, self.text.len() as u32)
    }

    /// Appends a day number as `YYYYMMDD`.
    pub(super) fn put_date(&mut self, day: i32) -> Range {
        let (y, m, d) = civil(day);
        self.put_fmt(format_args!("{y:04}{m:02}{d:02}"))
    }

    /// The text of a field.
    pub(super) fn get(&self, r: Range) -> &str {
        &self.text[r.0 as usize..r.1 as usize]
    }
}

/// The technical fields of the vehicle being made, with the batch they are written into.
/// Fields are indexed by the constants of `fields.rs`; unset fields are NULL.
pub(super) struct Record<'a> {
    pub(super) b: &'a mut Batch,
    f: [Range; FIELDS],
}

impl<'a> Record<'a> {
    pub(super) fn new(b: &'a mut Batch) -> Record<'a> {
        Record {
            b,
            f: [(0, 0); FIELDS],
        }
    }

    pub(super) fn set(&mut self, field: usize, s: &str) {
        self.f[field] = self.b.put(s);
    }

    pub(super) fn set_fmt(&mut self, field: usize, args: std::fmt::Arguments<'_>) {
        self.f[field] = self.b.put_fmt(args);
    }

    pub(super) fn set_date(&mut self, field: usize, day: i32) {
        self.f[field] = self.b.put_date(day);
    }

    /// Gives field `to` the value of field `from`.
    pub(super) fn copy(&mut self, to: usize, from: usize) {
        self.f[to] = self.f[from];
    }

    /// The text of a field (empty if unset).
    pub(super) fn get(&self, field: usize) -> &str {
        self.b.get(self.f[field])
    }

    /// Appends the vehicle to the batch (after its ownership rows).
    pub(super) fn finish(self, id: u64) {
        self.b.ids.push(id);
        self.b.vehicles.push(self.f);
    }
}
