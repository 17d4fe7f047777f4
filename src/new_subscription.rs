//! `regdrop new-subscription` (see below).
