//! Byte counts for messages.

/// A byte count the way Spark prints it (`Utils.bytesToString`): `1024.0 MiB`, `3.5 KiB`, `12.0 B`.
pub fn bytes_to_string(n: u64) -> String {
    const UNITS: [(&str, u64); 5] = [
        ("PiB", 1 << 50),
        ("TiB", 1 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ];
    for (name, size) in UNITS {
        if n >= 2 * size {
            return format!("{:.1} {name}", n as f64 / size as f64);
        }
    }
    if n >= 1 << 10 {
        return format!("{:.1} KiB", n as f64 / 1024.0);
    }
    format!("{n:.1} B", n = n as f64)
}
