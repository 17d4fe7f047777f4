//! The register source: schema, import of the authority's DSV dump, the synthetic generator.
pub mod ids;
pub mod schema;
