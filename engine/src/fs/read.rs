//! Reading files the format describes: a metadata file (bounded, SPEC [Y4]) and the checksum of a
//! data file (SPEC [K1]).

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::error::MetaError;
use crate::format::meta::{parse_yaml, YamlDoc, MAX_YAML_BYTES};

/// CRC-32C of everything `f` yields, read in 1 MiB chunks.
pub(crate) fn crc32c_read(mut f: impl Read) -> io::Result<u32> {
    let mut buf = vec![0u8; 1 << 20];
    let mut crc = 0u32;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(crc);
        }
        crc = crc32c::crc32c_append(crc, &buf[..n]);
    }
}

/// Reads and parses the metadata file `file`, already opened (as a regular file) from `path`.
pub(crate) fn read_yaml_open(file: std::fs::File, path: &Path) -> Result<YamlDoc, ReadYamlError> {
    let mut bytes = Vec::new();
    file.take(MAX_YAML_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ReadYamlError::Io(path.to_path_buf(), e))?;
    parse_yaml(&bytes, path).map_err(ReadYamlError::Meta)
}

/// Reading a metadata file failed: I/O or content.
#[derive(Debug, thiserror::Error)]
pub enum ReadYamlError {
    /// The file could not be read.
    #[error("{0}: cannot read: {1}")]
    Io(PathBuf, #[source] std::io::Error),
    /// The content is invalid.
    #[error(transparent)]
    Meta(#[from] MetaError),
}
