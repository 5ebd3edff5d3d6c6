//! `dnsq limits` (hidden): the ceilings the ingest is measured against
//! (benches/limits.sh), each stage alone on one core.
//!
//! - `writer DATASET`: the dataset's transactions read into memory as Arrow
//!   batches, then written to one Parquet file by the ingest's writer
//!   (`write::FileWriter`: its settings, its columns encoded on rayon's
//!   threads, one when benches/limits.sh pins it to a core). Reading is not
//!   timed; the write, the file's close and its flush to the page cache are.
//! - `decode CAPTURE`: every frame of a mapped capture to its DNS header and
//!   question (`link::decode_frame`, `dns::decode` without rendering the
//!   records), no reassembly, no pairing: what a bare packet counter does.
//!
//! Each prints one JSON line per round: `{"round":1,"items":…,"seconds":…}`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use arrow::array::RecordBatch;
use clap::{Args, Subcommand};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::ingest::capture::{Capture, CHUNK_BYTES};
use crate::ingest::link::{self, Packet};
use crate::ingest::{dns, write};

#[derive(Debug, Args)]
pub struct LimitsArgs {
    #[command(subcommand)]
    pub what: Limit,
    /// Times to repeat the measured stage
    #[arg(long, default_value_t = 3, global = true)]
    pub rounds: usize,
}

#[derive(Debug, Subcommand)]
pub enum Limit {
    /// Write a dataset's transactions, held in memory, as one Parquet file
    Writer {
        /// Dataset directory
        dataset: PathBuf,
        /// Rows per batch handed to the writer (the ingest's spool writes batches of this order)
        #[arg(long, default_value_t = 65_536)]
        batch_rows: usize,
    },
    /// Decode every frame of a capture to its DNS header and question
    Decode {
        /// A pcap or pcapng file (not compressed)
        capture: PathBuf,
    },
}

pub fn run(a: LimitsArgs) -> anyhow::Result<ExitCode> {
    match a.what {
        Limit::Writer {
            dataset,
            batch_rows,
        } => writer(&dataset, batch_rows, a.rounds),
        Limit::Decode { capture } => decode(&capture, a.rounds),
    }
}

/// Every Parquet file under `dir`, but the Delta log's.
fn parquet_files(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let p = entry?.path();
        if p.is_dir() {
            if !p.ends_with("_delta_log") {
                parquet_files(&p, out)?;
            }
        } else if p.extension().is_some_and(|e| e == "parquet") {
            out.push(p);
        }
    }
    Ok(())
}

fn writer(dataset: &Path, batch_rows: usize, rounds: usize) -> anyhow::Result<ExitCode> {
    let mut files = Vec::new();
    parquet_files(&dataset.join(write::TRANSACTIONS_DIR), &mut files)?;
    files.sort();
    anyhow::ensure!(!files.is_empty(), "{}: no transactions", dataset.display());
    let mut batches: Vec<RecordBatch> = Vec::new();
    for f in &files {
        let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(f)?)?
            .with_batch_size(batch_rows)
            .build()?;
        for b in reader {
            batches.push(b?);
        }
    }
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    // beside the dataset, on the disk the ingest writes to; removed after each round
    let scratch = dataset.join(format!(".limits-{}.parquet", std::process::id()));
    for round in 1..=rounds {
        let path = &scratch;
        let start = Instant::now();
        let mut w = write::FileWriter::new(std::fs::File::create(path)?)?;
        for b in &batches {
            w.write(b)?;
        }
        w.finish()?;
        let seconds = start.elapsed().as_secs_f64();
        let bytes = std::fs::metadata(path)?.len();
        std::fs::remove_file(path)?;
        println!(
            "{{\"round\":{round},\"items\":{rows},\"seconds\":{seconds:.4},\"bytes\":{bytes}}}"
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn decode(path: &Path, rounds: usize) -> anyhow::Result<ExitCode> {
    let cap = Capture::open(path)?;
    let walk = cap.walk(CHUNK_BYTES);
    for round in 1..=rounds {
        let start = Instant::now();
        let (mut frames, mut messages) = (0u64, 0u64);
        for chunk in &walk.chunks {
            cap.frames(chunk, |frame| {
                frames += 1;
                if let Ok(Packet::Whole(seg)) = link::decode_frame(&frame, &[53]) {
                    // a TCP segment that starts a message: past its length
                    let body = match seg.tcp {
                        None => seg.payload,
                        Some(_) => seg.payload.get(2..).unwrap_or_default(),
                    };
                    if dns::decode(body, false).is_some_and(|m| m.question.is_some()) {
                        messages += 1;
                    }
                }
            });
        }
        let seconds = start.elapsed().as_secs_f64();
        println!(
            "{{\"round\":{round},\"items\":{frames},\"messages\":{messages},\"seconds\":{seconds:.4}}}"
        );
    }
    Ok(ExitCode::SUCCESS)
}
