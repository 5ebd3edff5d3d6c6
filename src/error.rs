//! Library errors: every message names the file (and, where it helps, the byte offset).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: not a pcap or pcapng file ({hint})")]
    UnknownCapture { path: PathBuf, hint: String },
    #[error("{path}: empty file, not a capture")]
    EmptyCapture { path: PathBuf },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("interrupted by {0}; nothing of this ingest was committed")]
    Interrupted(&'static str),
    #[error("every capture of this ingest was committed by another dnsq meanwhile")]
    AlreadyThere,
    /// A statement that `dnsq sql` does not run (see `query::policy`).
    #[error("{0}")]
    Refused(String),
    /// A parameter or option the user gave that cannot be used as given.
    #[error("{0}")]
    Usage(String),
    #[cfg(feature = "engine")]
    #[error("writing parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[cfg(feature = "engine")]
    #[error("building arrow data: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[cfg(feature = "engine")]
    #[error("{0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// An error of a Parquet writer, naming the file it was writing: a full
    /// disk says which file it stopped, in the system's own words (`No space
    /// left on device`), not Parquet's wrapping of them.
    #[cfg(feature = "engine")]
    pub fn parquet_at(path: impl Into<PathBuf>, e: parquet::errors::ParquetError) -> Self {
        use parquet::errors::ParquetError;
        let source = match e {
            ParquetError::External(inner) => match inner.downcast::<std::io::Error>() {
                Ok(io) => *io,
                Err(other) => std::io::Error::other(other),
            },
            e => std::io::Error::other(e),
        };
        Error::io(path, source)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
