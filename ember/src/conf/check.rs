//! The range or choice each key's value must fall in (Spark's `ConfigBuilder.checkValue` and
//! `checkValues`), declared next to the key in [`super::ENTRIES`] and applied to every set key by
//! [`super::EmberConf::validate`] when a context starts.
//!
//! Numbers are compared in the key's own unit, as Spark's `checkValue` sees them: a size in the
//! unit of a bare number (`ember.shuffle.file.buffer` in KiB), a duration likewise
//! (`ember.barrier.sync.timeout` in seconds).

use super::{parse_size, parse_time_us, ConfigEntry, ValueKind};

/// Largest value of a Spark `intConf` (a Java `int`): Ember's counts that Spark keeps in an
/// `int` stop there too, so that no count wraps when it is narrowed.
pub const INT_MAX: u64 = i32::MAX as u64;

/// Largest Java array Spark allocates (`ByteArrayMethods.MAX_ROUNDED_ARRAY_LENGTH`): Spark's bound
/// of the buffers a single key sizes.
const MAX_ROUNDED_ARRAY_LENGTH: u64 = i32::MAX as u64 - 15;

/// A bound on a key's value. A message is Spark's where Spark has one (shown after the key and
/// value, as Spark shows `'value' in key is invalid. message`); `{key}` and `{value}` in it are
/// replaced. An empty message stands for Ember's own, generated from the bound.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Check {
    /// A whole number, size or duration (in the key's unit) in `min..=max`; `below` is the
    /// message when it is smaller, `above` when it is larger.
    Range {
        /// Smallest value allowed.
        min: u64,
        /// Largest value allowed.
        max: u64,
        /// Message for a value under `min`.
        below: &'static str,
        /// Message for a value over `max`.
        above: &'static str,
    },
    /// A number between `min` and `max`, each end included or not.
    Number {
        /// Lower end.
        min: f64,
        /// Whether `min` itself is allowed.
        min_included: bool,
        /// Upper end.
        max: f64,
        /// Whether `max` itself is allowed.
        max_included: bool,
        /// Message for a value outside.
        message: &'static str,
    },
    /// One of a set of words, in any case.
    OneOf {
        /// The words allowed.
        values: &'static [&'static str],
        /// Message for any other value.
        message: &'static str,
    },
}

/// A count Spark keeps in an `int`, at least `min`.
pub const fn count(min: u64) -> Check {
    count_msg(min, "")
}

/// A count Spark keeps in an `int`, at least `min`, with Spark's message below it.
pub const fn count_msg(min: u64, below: &'static str) -> Check {
    Check::Range {
        min,
        max: INT_MAX,
        below,
        above: "",
    }
}

/// A positive size or duration (in the key's unit) with no upper bound but `u64`'s.
pub const fn positive(below: &'static str) -> Check {
    Check::Range {
        min: 1,
        max: u64::MAX,
        below,
        above: "",
    }
}

/// A size (in the key's unit) that sizes one buffer: positive and at most what Spark allocates
/// in one array, so a typo such as `1t` is refused instead of allocating it.
pub const fn buffer_size(unit_bytes: u64, message: &'static str) -> Check {
    Check::Range {
        min: 1,
        max: MAX_ROUNDED_ARRAY_LENGTH / unit_bytes,
        below: message,
        above: message,
    }
}

/// A TCP port: 0 (any free port) to 65535.
pub const PORT: Check = Check::Range {
    min: 0,
    max: u16::MAX as u64,
    below: "",
    above: "",
};

/// A fraction in `[0, 1]`.
pub const FRACTION: Check = Check::Number {
    min: 0.0,
    min_included: true,
    max: 1.0,
    max_included: true,
    message: "",
};

impl Check {
    /// Checks `value` (already known to parse as `entry.kind`) and returns why it is refused.
    pub fn refuse(&self, entry: &ConfigEntry, value: &str) -> Option<String> {
        let shown = value.trim();
        let fill = |m: &str| m.replace("{key}", entry.key).replace("{value}", shown);
        match *self {
            Check::Range {
                min,
                max,
                below,
                above,
            } => {
                let n = in_unit(entry.kind, value)?;
                // Ember's own words name the bound that matters on the side the value is on.
                let between = || format!("must be between {min} and {max}");
                let (m, generic) = if n < min {
                    let g = if max >= INT_MAX {
                        format!("must be at least {min}")
                    } else {
                        between()
                    };
                    (below, g)
                } else if n > max {
                    let g = if min == 0 || max >= INT_MAX {
                        format!("must be at most {max}")
                    } else {
                        between()
                    };
                    (above, g)
                } else {
                    return None;
                };
                Some(if m.is_empty() { generic } else { fill(m) })
            }
            Check::Number {
                min,
                min_included,
                max,
                max_included,
                message,
            } => {
                let f: f64 = shown.parse().ok()?;
                let low_ok = if min_included { f >= min } else { f > min };
                let high_ok = if max_included { f <= max } else { f < max };
                if low_ok && high_ok {
                    return None;
                }
                if !message.is_empty() {
                    return Some(fill(message));
                }
                let open = if min_included { '[' } else { '(' };
                let close = if max_included { ']' } else { ')' };
                Some(if max == f64::INFINITY {
                    format!(
                        "must be {} {min}",
                        if min_included { "at least" } else { "over" }
                    )
                } else {
                    format!("must be in {open}{min}, {max}{close}")
                })
            }
            Check::OneOf { values, message } => {
                if values.iter().any(|v| v.eq_ignore_ascii_case(shown)) {
                    return None;
                }
                Some(if message.is_empty() {
                    format!("must be one of {}", values.join(", "))
                } else {
                    fill(message)
                })
            }
        }
    }
}

/// The value as Spark's `checkValue` sees it: a whole number, or a size or duration in the key's
/// unit (rounded down). `None` when it does not read, which parsing reports instead.
fn in_unit(kind: ValueKind, value: &str) -> Option<u64> {
    match kind {
        ValueKind::Int => value.trim().parse().ok(),
        ValueKind::Size(unit) => parse_size(value, unit).ok().map(|b| b / unit as u64),
        ValueKind::Time(unit) => parse_time_us(value, unit).ok().map(|us| us / unit as u64),
        ValueKind::Bool | ValueKind::Float | ValueKind::Str => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::{SizeUnit, TimeUnit};
    use super::*;

    fn entry(kind: ValueKind) -> ConfigEntry {
        ConfigEntry {
            key: "ember.test.key",
            default: "",
            kind,
            check: None,
            doc: "",
        }
    }

    #[test]
    fn at_least_refuses_smaller_with_the_given_message() {
        let e = entry(ValueKind::Int);
        let c = count_msg(1, "{key} was {value}, but must be > 0.");
        assert_eq!(c.refuse(&e, "1"), None);
        assert_eq!(
            c.refuse(&e, " 0 ").as_deref(),
            Some("ember.test.key was 0, but must be > 0.")
        );
        assert_eq!(
            count(2).refuse(&e, "1").as_deref(),
            Some("must be at least 2")
        );
    }

    #[test]
    fn at_most_refuses_larger_and_counts_stop_at_a_java_int() {
        let e = entry(ValueKind::Int);
        assert_eq!(PORT.refuse(&e, "65535"), None);
        assert_eq!(PORT.refuse(&e, "0"), None);
        assert_eq!(
            PORT.refuse(&e, "65536").as_deref(),
            Some("must be at most 65535")
        );
        assert_eq!(count(0).refuse(&e, "2147483647"), None);
        assert_eq!(
            count(0).refuse(&e, "2147483648").as_deref(),
            Some("must be at most 2147483647")
        );
    }

    #[test]
    fn in_range_compares_sizes_and_durations_in_the_keys_unit() {
        let kib = entry(ValueKind::Size(SizeUnit::KiB));
        let c = buffer_size(1024, "too big or empty");
        assert_eq!(c.refuse(&kib, "32k"), None);
        assert_eq!(c.refuse(&kib, "2097151"), None);
        assert_eq!(c.refuse(&kib, "2g").as_deref(), Some("too big or empty"));
        // 512 bytes is 0 KiB, as Spark's bytesConf(KiB) reads it.
        assert_eq!(c.refuse(&kib, "512b").as_deref(), Some("too big or empty"));
        let secs = entry(ValueKind::Time(TimeUnit::Seconds));
        let p = positive("The value should be a positive time value.");
        assert_eq!(p.refuse(&secs, "1s"), None);
        assert_eq!(
            p.refuse(&secs, "999ms").as_deref(),
            Some("The value should be a positive time value.")
        );
        let between = Check::Range {
            min: 1,
            max: 3,
            below: "",
            above: "",
        };
        assert_eq!(
            between.refuse(&entry(ValueKind::Int), "4").as_deref(),
            Some("must be between 1 and 3")
        );
    }

    #[test]
    fn fractions_respect_open_and_closed_ends() {
        let e = entry(ValueKind::Float);
        assert_eq!(FRACTION.refuse(&e, "0"), None);
        assert_eq!(FRACTION.refuse(&e, "1.0"), None);
        assert_eq!(
            FRACTION.refuse(&e, "1.01").as_deref(),
            Some("must be in [0, 1]")
        );
        let storage = Check::Number {
            min: 0.0,
            min_included: true,
            max: 1.0,
            max_included: false,
            message: "Storage fraction must be in [0,1)",
        };
        assert_eq!(storage.refuse(&e, "0.99"), None);
        assert_eq!(
            storage.refuse(&e, "1").as_deref(),
            Some("Storage fraction must be in [0,1)")
        );
        let open = Check::Number {
            min: 0.0,
            min_included: false,
            max: 1.0,
            max_included: true,
            message: "",
        };
        assert_eq!(open.refuse(&e, "0").as_deref(), Some("must be in (0, 1]"));
        let non_negative = Check::Number {
            min: 0.0,
            min_included: true,
            max: f64::INFINITY,
            max_included: true,
            message: "",
        };
        assert_eq!(non_negative.refuse(&e, "1e300"), None);
        assert_eq!(
            non_negative.refuse(&e, "-0.5").as_deref(),
            Some("must be at least 0")
        );
    }

    #[test]
    fn one_of_ignores_case_and_names_the_choices() {
        let e = entry(ValueKind::Str);
        let c = Check::OneOf {
            values: &["FIFO", "FAIR"],
            message: "",
        };
        assert_eq!(c.refuse(&e, "fair"), None);
        assert_eq!(
            c.refuse(&e, "LIFO").as_deref(),
            Some("must be one of FIFO, FAIR")
        );
        let spark = Check::OneOf {
            values: &["FIFO", "FAIR"],
            message: "Unrecognized {key}: {value}",
        };
        assert_eq!(
            spark.refuse(&e, "LIFO").as_deref(),
            Some("Unrecognized ember.test.key: LIFO")
        );
    }

    #[test]
    fn a_value_that_does_not_parse_is_left_to_parsing() {
        assert_eq!(PORT.refuse(&entry(ValueKind::Int), "lots"), None);
        assert_eq!(FRACTION.refuse(&entry(ValueKind::Float), "half"), None);
    }
}
