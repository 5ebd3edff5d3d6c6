//! dnsq: DNS packet captures to paired transactions in Parquet, answered with SQL.
//!
//! Write side (`ingest`): capture → link → dns → correlate → batch → write.
//! Read side (`query`): dataset directory → DataFusion session → SQL results.
#![deny(unsafe_code)]

#[cfg(feature = "engine")]
pub mod anonymize;
#[cfg(feature = "engine")]
pub mod cli;
pub mod codes;
#[cfg(feature = "engine")]
pub mod dashboard;
#[cfg(feature = "engine")]
pub mod dataset;
#[cfg(feature = "engine")]
pub mod enrich;
pub mod error;
#[cfg(feature = "engine")]
pub mod heap;
pub mod ingest;
#[cfg(feature = "engine")]
pub mod query;
pub mod synth;
