//! CRC-32C (Castagnoli) of buffers (SPEC [K1]), hardware-accelerated by `crc32c`; of files:
//! `crate::fs::read`.

/// CRC-32C of `bytes`.
pub fn crc32c(bytes: &[u8]) -> u32 {
    crc32c::crc32c(bytes)
}

#[cfg(test)]
mod tests {
    #[test]
    fn check_value_from_the_spec() {
        assert_eq!(super::crc32c(b"123456789"), 0xE306_9283);
    }
}
