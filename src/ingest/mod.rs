//! The write side: capture → link → dns → correlate → batch → write.
//!
//! The decoding stages (capture, link, ip, tcp_stream, dns, rdata, correlate)
//! build without the `engine` feature, so the fuzz targets link only them;
//! `pipeline` wires every stage and writes Parquet.

#[cfg(feature = "engine")]
pub mod batch;
pub mod capture;
pub mod correlate;
pub mod dns;
pub mod dnstap;
pub mod ip;
pub mod link;
#[cfg(feature = "engine")]
mod pipeline;
pub mod rdata;
pub mod tcp_stream;
pub mod tunnel;
#[cfg(feature = "engine")]
pub mod write;

#[cfg(feature = "engine")]
pub use pipeline::{
    dataset_dir, describe_problem, run, CaptureReport, IngestConfig, IngestReport,
    MAX_MATCH_TIMEOUT, SPOOL_ROWS,
};
