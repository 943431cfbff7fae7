//! CRC-32C (Castagnoli) of files and buffers (SPEC [K1]), hardware-accelerated by `crc32c`.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// CRC-32C of `bytes`.
pub fn crc32c(bytes: &[u8]) -> u32 {
    crc32c::crc32c(bytes)
}

/// CRC-32C of a whole file, read in 1 MiB chunks.
pub fn crc32c_file(path: &Path) -> io::Result<u32> {
    crc32c_read(File::open(path)?)
}

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

#[cfg(test)]
mod tests {
    #[test]
    fn check_value_from_the_spec() {
        assert_eq!(super::crc32c(b"123456789"), 0xE306_9283);
    }
}
