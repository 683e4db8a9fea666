//! The checksum each chunk of a shuffle file, spill file or serialized cached block carries when
//! `ember.shuffle.checksum.enabled` is on (the layout is in [`super`]), with Spark's algorithm
//! names (`ember.shuffle.checksum.algorithm`).
//!
//! Both algorithms detect every change of a single byte: Adler-32 because its first sum moves by
//! the byte's difference (at most 255, never a multiple of the modulus 65521), CRC-32 because it
//! detects every burst of up to 32 bits.

/// A chunk checksum algorithm (Spark's `spark.shuffle.checksum.algorithm` values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChecksumAlgorithm {
    /// `ADLER32`, Spark's default.
    Adler32,
    /// `CRC32` (the IEEE polynomial, as `java.util.zip.CRC32`).
    Crc32,
}

impl ChecksumAlgorithm {
    /// The names `ember.shuffle.checksum.algorithm` accepts, as a message lists them.
    pub const NAMES: &'static str = "ADLER32, CRC32";

    /// The algorithm of a configuration value (case-insensitive, as Spark upper-cases it).
    pub fn parse(name: &str) -> Option<Self> {
        match name.trim().to_ascii_uppercase().as_str() {
            "ADLER32" => Some(ChecksumAlgorithm::Adler32),
            "CRC32" => Some(ChecksumAlgorithm::Crc32),
            _ => None,
        }
    }

    /// Spark's name of the algorithm.
    pub fn name(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Adler32 => "ADLER32",
            ChecksumAlgorithm::Crc32 => "CRC32",
        }
    }

    /// The checksum of `parts` read one after the other.
    #[inline]
    pub fn checksum(self, parts: &[&[u8]]) -> u32 {
        match self {
            ChecksumAlgorithm::Adler32 => {
                let mut a = adler2::Adler32::new();
                for p in parts {
                    a.write_slice(p);
                }
                a.checksum()
            }
            ChecksumAlgorithm::Crc32 => {
                let mut h = crc32fast::Hasher::new();
                for p in parts {
                    h.update(p);
                }
                h.finalize()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values_and_names() {
        // The values java.util.zip.Adler32 and CRC32 give for "Wikipedia" and "123456789".
        assert_eq!(
            ChecksumAlgorithm::Adler32.checksum(&[b"Wiki", b"pedia"]),
            0x11E6_0398
        );
        assert_eq!(
            ChecksumAlgorithm::Crc32.checksum(&[b"123456789"]),
            0xCBF4_3926
        );
        for a in [ChecksumAlgorithm::Adler32, ChecksumAlgorithm::Crc32] {
            assert_eq!(ChecksumAlgorithm::parse(a.name()), Some(a));
            assert_eq!(ChecksumAlgorithm::parse(&a.name().to_lowercase()), Some(a));
        }
        assert_eq!(ChecksumAlgorithm::parse("CRC32C"), None);
        assert_eq!(ChecksumAlgorithm::parse(""), None);
    }
}
