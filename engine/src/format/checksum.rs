//! CRC-32C (Castagnoli) of buffers (SPEC [K1]), hardware-accelerated by `crc32c`; of files:
//! `crate::fs::read`.

/// CRC-32C of `bytes`.
pub fn crc32c(bytes: &[u8]) -> u32 {
    crc32c::crc32c(bytes)
}

/// Buffers from this size on are checksummed by several threads ([`crc32c_parallel`]), or by a
/// thread beside the write that copies them: below it a thread costs more than it saves.
pub(crate) const PARALLEL_MIN: usize = 16 << 20;

/// CRC-32C of `bytes`, computed by up to 4 threads over consecutive parts and combined, for
/// buffers of at least [`PARALLEL_MIN`] bytes (the same value as [`crc32c`]). A thread that
/// cannot be started leaves its part to the caller's thread.
pub(crate) fn crc32c_parallel(bytes: &[u8]) -> u32 {
    if bytes.len() < PARALLEL_MIN {
        // Before asking for the CPU count: that reads cgroup files (about 15 system calls),
        // which a small publish would pay every time.
        return crc32c::crc32c(bytes);
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    if threads < 2 {
        return crc32c::crc32c(bytes);
    }
    crc32c_parts(bytes, threads)
}

/// CRC-32C of `bytes` from `threads` parts computed on as many threads and combined.
fn crc32c_parts(bytes: &[u8], threads: usize) -> u32 {
    let part = bytes.len().div_ceil(threads.max(1)).max(1);
    std::thread::scope(|s| {
        let parts: Vec<_> = bytes
            .chunks(part)
            .map(|c| {
                let worker = std::thread::Builder::new()
                    .spawn_scoped(s, move || crc32c::crc32c(c))
                    .ok();
                (c, worker)
            })
            .collect();
        parts.into_iter().fold(0u32, |acc, (c, worker)| {
            let crc = worker
                .and_then(|w| w.join().ok())
                .unwrap_or_else(|| crc32c::crc32c(c));
            crc32c::crc32c_combine(acc, crc, c.len())
        })
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn check_value_from_the_spec() {
        assert_eq!(super::crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn the_parallel_checksum_equals_the_serial_one_at_every_split() {
        let n = super::PARALLEL_MIN + 12_345;
        let bytes: Vec<u8> = (0..n)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for len in [
            0,
            1,
            super::PARALLEL_MIN - 1,
            super::PARALLEL_MIN,
            super::PARALLEL_MIN + 3,
            n,
        ] {
            assert_eq!(
                super::crc32c_parallel(&bytes[..len]),
                super::crc32c(&bytes[..len]),
                "{len} bytes"
            );
            // Whatever this machine's CPU count: the split and combine themselves.
            for threads in [1, 2, 3, 4, 7] {
                assert_eq!(
                    super::crc32c_parts(&bytes[..len], threads),
                    super::crc32c(&bytes[..len]),
                    "{len} bytes in {threads} parts"
                );
            }
        }
    }
}
