//! What goes wrong: one fault per test, and the fault campaign (many random faults).

mod campaign;
mod single_faults;
