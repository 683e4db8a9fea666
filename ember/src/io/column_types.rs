//! Values of the column types Rust's own types do not name: dates, timestamps (an instant, or a
//! wall-clock time without a zone) and fixed-point decimals, Spark SQL's `DateType`,
//! `TimestampType`, `TimestampNTZType` and `DecimalType(p, s)`.
//!
//! In a row type they read from and write to Parquet columns of their own type (`date32`,
//! `timestamp[unit, tz=UTC]`, `timestamp[unit]`, `decimal128(p, s)`), so a dataset read and
//! written again keeps its schema. Everywhere else (CSV, JSON lines, any serde format) they are
//! text, the text Spark writes for them: ISO 8601 (`2024-03-01`, `2024-03-01T12:00:00.250Z`) and
//! plain decimal notation with the scale's digits (`-12.50`).
//!
//! How the Parquet writer learns a column's type: serde lets a value say what it is only in
//! terms of serde's own data model, which has no date or decimal. While Ember traces a row
//! type's schema ([`while_tracing`]), these types present themselves as a struct whose field
//! names spell their column type (`__ember_column_type`, `timestamp`, `ms`, `UTC`), and
//! [`resolve_markers`] turns every such struct in the traced schema into the Arrow type it
//! names. Outside a trace they serialize and deserialize as their text, which serde_arrow
//! converts to and from the typed columns.

use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeStruct, Serializer};
use serde::{Deserialize, Serialize};

use crate::util::civil_from_days;

/// A value of one of these types that its text or its range does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a valid {ty}: {reason}")]
pub struct ColumnValueError {
    text: String,
    ty: String,
    reason: &'static str,
}

fn invalid(text: &str, ty: impl fmt::Display, reason: &'static str) -> ColumnValueError {
    ColumnValueError {
        text: text.to_owned(),
        ty: ty.to_string(),
        reason,
    }
}

// ---------------------------------------------------------------------------------------------
// The schema trace.

thread_local! {
    static TRACING: Cell<bool> = const { Cell::new(false) };
}

/// The first field name of a marker struct; the others name the column type.
const MARKER: &str = "__ember_column_type";

/// Runs `f`, a schema trace of a row type (serde_arrow's `from_type` or `from_samples`), with
/// these types presenting themselves as marker structs; the trace runs on this thread only.
pub(crate) fn while_tracing<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            TRACING.with(|t| t.set(self.0));
        }
    }
    let _restore = Restore(TRACING.with(|t| t.replace(true)));
    f()
}

fn tracing() -> bool {
    TRACING.with(Cell::get)
}

/// The traced schema with every marker struct replaced by the column type it names.
#[cfg(feature = "parquet")]
pub(crate) fn resolve_markers(fields: Vec<arrow_schema::FieldRef>) -> Vec<arrow_schema::FieldRef> {
    fields.iter().map(resolve_field).collect()
}

#[cfg(feature = "parquet")]
fn resolve_field(f: &arrow_schema::FieldRef) -> arrow_schema::FieldRef {
    use std::sync::Arc;
    let ty = resolve_type(f.data_type());
    if &ty == f.data_type() {
        return f.clone();
    }
    Arc::new(f.as_ref().clone().with_data_type(ty))
}

#[cfg(feature = "parquet")]
fn resolve_type(ty: &arrow_schema::DataType) -> arrow_schema::DataType {
    use arrow_schema::{DataType, Fields, TimeUnit};
    use std::sync::Arc;
    match ty {
        DataType::Struct(children) if children.first().is_some_and(|c| c.name() == MARKER) => {
            let names: Vec<&str> = children.iter().skip(1).map(|c| c.name().as_str()).collect();
            let unit = |n: &str| match n {
                "s" => TimeUnit::Second,
                "ms" => TimeUnit::Millisecond,
                "ns" => TimeUnit::Nanosecond,
                _ => TimeUnit::Microsecond,
            };
            match names.as_slice() {
                ["date32"] => DataType::Date32,
                ["timestamp", u] => DataType::Timestamp(unit(u), None),
                ["timestamp", u, tz] => DataType::Timestamp(unit(u), Some(Arc::from(*tz))),
                ["decimal128", p, s] => {
                    DataType::Decimal128(p.parse().unwrap_or(38), s.parse().unwrap_or(0))
                }
                // Only this module writes markers; an unknown one would be a bug here, and
                // leaving the struct makes it visible in the written schema.
                _ => ty.clone(),
            }
        }
        DataType::Struct(children) => {
            DataType::Struct(children.iter().map(resolve_field).collect::<Fields>())
        }
        DataType::List(f) => DataType::List(resolve_field(f)),
        DataType::LargeList(f) => DataType::LargeList(resolve_field(f)),
        DataType::FixedSizeList(f, n) => DataType::FixedSizeList(resolve_field(f), *n),
        DataType::Map(f, sorted) => DataType::Map(resolve_field(f), *sorted),
        other => other.clone(),
    }
}

/// Deserializes the marker struct `fields` while tracing, `text` otherwise.
fn deserialize_column_value<'de, D, T>(d: D, fields: &'static [&'static str]) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr<Err = ColumnValueError> + Default,
{
    struct Marker<T>(PhantomData<T>);
    impl<'de, T: Default> Visitor<'de> for Marker<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a column type marker")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
            while map.next_key::<String>()?.is_some() {
                map.next_value::<bool>()?;
            }
            Ok(T::default())
        }
    }
    struct Text<T>(PhantomData<T>);
    impl<T: FromStr<Err = ColumnValueError>> Visitor<'_> for Text<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a date, timestamp or decimal as text")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            v.parse().map_err(E::custom)
        }
    }
    if tracing() {
        d.deserialize_struct("EmberColumnType", fields, Marker(PhantomData))
    } else {
        d.deserialize_str(Text(PhantomData))
    }
}

/// Serializes the marker struct `fields` while tracing, `value`'s text otherwise.
fn serialize_column_value<S: Serializer>(
    s: S,
    fields: &'static [&'static str],
    value: &impl fmt::Display,
) -> Result<S::Ok, S::Error> {
    if tracing() {
        let mut st = s.serialize_struct("EmberColumnType", fields.len())?;
        for f in fields {
            st.serialize_field(f, &true)?;
        }
        st.end()
    } else {
        s.collect_str(value)
    }
}

// ---------------------------------------------------------------------------------------------
// Dates.

/// (year, month, day) as days since 1970-01-01; `None` for a day the month does not have.
fn days_from_civil(y: i64, m: u32, d: u32) -> Option<i64> {
    let leap = y.rem_euclid(4) == 0 && (y.rem_euclid(100) != 0 || y.rem_euclid(400) == 0);
    let month_days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if d == 0 || d > month_days {
        return None;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from(if m > 2 { m - 3 } else { m + 9 });
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

fn write_date(f: &mut fmt::Formatter, days: i64) -> fmt::Result {
    let (y, m, d) = civil_from_days(days);
    if (0..=9999).contains(&y) {
        write!(f, "{y:04}-{m:02}-{d:02}")
    } else {
        // ISO 8601's expanded years, as pyarrow and chrono print them.
        write!(f, "{}{:06}-{m:02}-{d:02}", if y < 0 { '-' } else { '+' }, y.abs())
    }
}

/// A calendar date: Spark's `DateType`, a Parquet `date32` column, `2024-03-01` as text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date(i32);

impl Date {
    const FIELDS: &'static [&'static str] = &[MARKER, "date32"];

    /// The date `days` days after 1970-01-01 (before it when negative).
    pub fn from_days(days: i32) -> Date {
        Date(days)
    }

    /// Days since 1970-01-01.
    pub fn days(self) -> i32 {
        self.0
    }

    /// The date of a (proleptic Gregorian) year, month (1–12) and day; `None` if there is no
    /// such day or it is out of `date32`'s range.
    pub fn from_ymd(year: i32, month: u32, day: u32) -> Option<Date> {
        days_from_civil(i64::from(year), month, day)
            .and_then(|d| i32::try_from(d).ok())
            .map(Date)
    }

    /// Year, month (1–12) and day of the month.
    pub fn ymd(self) -> (i32, u32, u32) {
        let (y, m, d) = civil_from_days(i64::from(self.0));
        // Every i32 day count lies within ±5.9 million years.
        (y as i32, m, d)
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write_date(f, i64::from(self.0))
    }
}

/// Reads `[+-]YYYY-MM-DD` at the start of `s`; returns the days and the rest.
fn parse_date_prefix(s: &str) -> Option<(i64, &str)> {
    let b = s.as_bytes();
    let (sign, start) = match b.first() {
        Some(b'-') => (-1, 1),
        Some(b'+') => (1, 1),
        _ => (1, 0),
    };
    let year_len = b[start..].iter().take_while(|c| c.is_ascii_digit()).count();
    if !(4..=9).contains(&year_len) {
        return None;
    }
    let year: i64 = s[start..start + year_len].parse().ok()?;
    let rest = &s[start + year_len..];
    let two = |r: &str| -> Option<u32> {
        let d = r.get(..2)?;
        d.bytes().all(|c| c.is_ascii_digit()).then(|| d.parse().ok())?
    };
    let rest = rest.strip_prefix('-')?;
    let month = two(rest)?;
    let rest = rest[2..].strip_prefix('-')?;
    let day = two(rest)?;
    Some((days_from_civil(sign * year, month, day)?, &rest[2..]))
}

impl FromStr for Date {
    type Err = ColumnValueError;

    /// `YYYY-MM-DD`, optionally followed by a time (`T` or a space, then anything), which is
    /// dropped, as Spark's cast of a string to a date does.
    fn from_str(s: &str) -> Result<Date, ColumnValueError> {
        let t = s.trim();
        let (days, rest) =
            parse_date_prefix(t).ok_or_else(|| invalid(s, "date", "expected YYYY-MM-DD"))?;
        if !(rest.is_empty() || rest.starts_with('T') || rest.starts_with(' ')) {
            return Err(invalid(s, "date", "unexpected text after the date"));
        }
        i32::try_from(days)
            .map(Date)
            .map_err(|_| invalid(s, "date", "out of range"))
    }
}

impl Serialize for Date {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize_column_value(s, Self::FIELDS, self)
    }
}

impl<'de> Deserialize<'de> for Date {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Date, D::Error> {
        deserialize_column_value(d, Self::FIELDS)
    }
}

// ---------------------------------------------------------------------------------------------
// Timestamps.

mod sealed {
    pub trait Sealed {}
}

/// The unit of a timestamp: [`Seconds`], [`Millis`], [`Micros`] (Spark's, the default) or
/// [`Nanos`].
pub trait TimeUnit:
    sealed::Sealed
    + Copy
    + Default
    + fmt::Debug
    + Eq
    + Ord
    + std::hash::Hash
    + Send
    + Sync
    + 'static
{
    /// Arrow's short name of the unit (`s`, `ms`, `us`, `ns`).
    const NAME: &'static str;
    /// Units per second.
    const PER_SECOND: i64;
    /// Fraction digits a value of the unit prints.
    const DIGITS: usize;
}

macro_rules! time_unit {
    ($name:ident, $short:literal, $per:literal, $digits:literal, $doc:literal) => {
        #[doc = $doc]
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name;
        impl sealed::Sealed for $name {}
        impl TimeUnit for $name {
            const NAME: &'static str = $short;
            const PER_SECOND: i64 = $per;
            const DIGITS: usize = $digits;
        }
    };
}
time_unit!(Seconds, "s", 1, 0, "Whole seconds.");
time_unit!(Millis, "ms", 1_000, 3, "Milliseconds.");
time_unit!(Micros, "us", 1_000_000, 6, "Microseconds (Spark's timestamps).");
time_unit!(Nanos, "ns", 1_000_000_000, 9, "Nanoseconds.");

fn write_timestamp<U: TimeUnit>(f: &mut fmt::Formatter, count: i64, utc: bool) -> fmt::Result {
    let secs = count.div_euclid(U::PER_SECOND);
    let frac = count.rem_euclid(U::PER_SECOND);
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    write_date(f, days)?;
    write!(f, "T{:02}:{:02}:{:02}", sod / 3600, sod / 60 % 60, sod % 60)?;
    if U::DIGITS > 0 {
        write!(f, ".{frac:0width$}", width = U::DIGITS)?;
    }
    if utc {
        f.write_str("Z")?;
    }
    Ok(())
}

/// Parses `date[(T| )HH:MM[:SS[.fraction]]][Z|±HH[:]MM]` into a count of `U` since the epoch
/// of the wall-clock time (a fraction finer than `U` is truncated) and the offset in seconds, if
/// one was given; the count is wide, so that an offset can still bring it into range.
fn parse_timestamp<U: TimeUnit>(
    s: &str,
    ty: &str,
) -> Result<(i128, Option<i64>), ColumnValueError> {
    let t = s.trim();
    let bad = |reason| invalid(s, ty, reason);
    let (days, rest) = parse_date_prefix(t).ok_or_else(|| bad("expected YYYY-MM-DD"))?;
    let mut secs = days * 86_400;
    let mut sub_nanos: i64 = 0;
    let mut rest = rest;
    if let Some(r) = rest.strip_prefix('T').or_else(|| rest.strip_prefix(' ')) {
        let b = r.as_bytes();
        let num = |i: usize| -> Option<i64> {
            let d = r.get(i..i + 2)?;
            d.bytes().all(|c| c.is_ascii_digit()).then(|| d.parse().ok())?
        };
        let (h, m) = (num(0), num(3));
        let (Some(h), Some(m)) = (h, m) else {
            return Err(bad("expected HH:MM after the date"));
        };
        if b.get(2) != Some(&b':') || h > 23 || m > 59 {
            return Err(bad("expected HH:MM after the date"));
        }
        secs += h * 3600 + m * 60;
        let mut i = 5;
        if b.get(i) == Some(&b':') {
            let sec = num(i + 1).filter(|s| *s <= 59).ok_or_else(|| bad("bad seconds"))?;
            secs += sec;
            i += 3;
            if b.get(i) == Some(&b'.') {
                let digits = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
                if digits == 0 || digits > 9 {
                    return Err(bad("a fraction of a second has 1 to 9 digits"));
                }
                let frac = &r[i + 1..i + 1 + digits];
                sub_nanos = frac.parse::<i64>().map_err(|_| bad("bad fraction"))?
                    * 10i64.pow((9 - digits) as u32);
                i += 1 + digits;
            }
        }
        rest = &r[i..];
    } else if !rest.is_empty() {
        return Err(bad("unexpected text after the date"));
    }
    let offset = match rest {
        "" => None,
        "Z" | "z" => Some(0),
        o => {
            let b = o.as_bytes();
            let sign = match b[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return Err(bad("unexpected text after the time")),
            };
            let digits: String = o[1..].chars().filter(|c| *c != ':').collect();
            if digits.len() != 4 || !digits.bytes().all(|c| c.is_ascii_digit()) {
                return Err(bad("an offset is ±HH:MM"));
            }
            let (oh, om): (i64, i64) = (
                digits[..2].parse().unwrap_or(0),
                digits[2..].parse().unwrap_or(0),
            );
            Some(sign * (oh * 3600 + om * 60))
        }
    };
    let count = i128::from(secs) * i128::from(U::PER_SECOND)
        + i128::from(sub_nanos / (1_000_000_000 / U::PER_SECOND));
    Ok((count, offset))
}

const OUT_OF_RANGE: &str = "beyond 64 bits of the timestamp's unit";

/// Converts a count of `from` units to `to` units, flooring when `to` is coarser.
fn rescale(count: i64, from_per_second: i64, to_per_second: i64) -> Option<i64> {
    if to_per_second >= from_per_second {
        count.checked_mul(to_per_second / from_per_second)
    } else {
        Some(count.div_euclid(from_per_second / to_per_second))
    }
}

macro_rules! timestamp_type {
    ($name:ident, $utc:literal, $fields:expr, $doc:literal) => {
        #[doc = $doc]
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name<U: TimeUnit = Micros>(i64, PhantomData<U>);

        impl<U: TimeUnit> $name<U> {
            const FIELDS: &'static [&'static str] = $fields;

            /// The timestamp `count` units after 1970-01-01T00:00:00 (before it when negative).
            pub fn new(count: i64) -> Self {
                $name(count, PhantomData)
            }

            /// Units since 1970-01-01T00:00:00.
            pub fn count(self) -> i64 {
                self.0
            }

            /// The timestamp `micros` microseconds after the epoch, floored to `U`; `None`
            /// beyond 64 bits of `U`.
            pub fn from_micros(micros: i64) -> Option<Self> {
                rescale(micros, Micros::PER_SECOND, U::PER_SECOND).map(Self::new)
            }

            /// Microseconds since the epoch (floored for nanoseconds); `None` beyond 64 bits.
            pub fn micros(self) -> Option<i64> {
                rescale(self.0, U::PER_SECOND, Micros::PER_SECOND)
            }

            /// The same time in another unit, floored when that unit is coarser; `None`
            /// beyond 64 bits of it.
            pub fn to_unit<V: TimeUnit>(self) -> Option<$name<V>> {
                rescale(self.0, U::PER_SECOND, V::PER_SECOND).map($name::new)
            }

            /// The calendar date (in UTC for an instant); `None` beyond `date32`'s range
            /// (only whole seconds reach that far).
            pub fn date(self) -> Option<Date> {
                let days = self.0.div_euclid(U::PER_SECOND).div_euclid(86_400);
                i32::try_from(days).ok().map(Date)
            }
        }

        impl<U: TimeUnit> fmt::Display for $name<U> {
            fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write_timestamp::<U>(f, self.0, $utc)
            }
        }

        impl<U: TimeUnit> Serialize for $name<U> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                serialize_column_value(s, Self::FIELDS, self)
            }
        }

        impl<'de, U: TimeUnit> Deserialize<'de> for $name<U> {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                deserialize_column_value(d, Self::FIELDS)
            }
        }
    };
}

timestamp_type!(
    Timestamp,
    true,
    &[MARKER, "timestamp", U::NAME, "UTC"],
    "An instant: Spark's `TimestampType`, a Parquet `timestamp[U, tz=UTC]` column, \
     `2024-03-01T12:00:00.000000Z` as text (the unit's digits, in UTC).\n\n\
     Read from a column with another unit or zone, it holds the same instant; from text \
     without an offset, the time is taken as UTC."
);
timestamp_type!(
    TimestampNtz,
    false,
    &[MARKER, "timestamp", U::NAME],
    "A wall-clock date and time without a zone: Spark's `TimestampNTZType`, a Parquet \
     `timestamp[U]` column, `2024-03-01T12:00:00.000000` as text."
);

impl<U: TimeUnit> FromStr for Timestamp<U> {
    type Err = ColumnValueError;

    /// ISO 8601: `2024-03-01`, `2024-03-01T12:00`, `2024-03-01 12:00:00.5+01:00`, … A time
    /// without an offset is in UTC.
    fn from_str(s: &str) -> Result<Self, ColumnValueError> {
        let (count, offset) = parse_timestamp::<U>(s, "timestamp")?;
        let instant = count - i128::from(offset.unwrap_or(0)) * i128::from(U::PER_SECOND);
        i64::try_from(instant)
            .map(Self::new)
            .map_err(|_| invalid(s, "timestamp", OUT_OF_RANGE))
    }
}

impl<U: TimeUnit> FromStr for TimestampNtz<U> {
    type Err = ColumnValueError;

    /// ISO 8601 without an offset (`2024-03-01T12:00:00.5`); a `Z` is accepted, as pyarrow
    /// and serde_arrow print a zone-aware column's values with one.
    fn from_str(s: &str) -> Result<Self, ColumnValueError> {
        let ty = "timestamp without time zone";
        match parse_timestamp::<U>(s, ty)? {
            (count, None | Some(0)) => i64::try_from(count)
                .map(Self::new)
                .map_err(|_| invalid(s, ty, OUT_OF_RANGE)),
            _ => Err(invalid(s, ty, "it cannot carry an offset")),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Decimals.

/// The digits 0 to 38 as text: the precision and scale names of decimal markers.
const DIGITS: [&str; 39] = [
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16",
    "17", "18", "19", "20", "21", "22", "23", "24", "25", "26", "27", "28", "29", "30", "31",
    "32", "33", "34", "35", "36", "37", "38",
];

/// A fixed-point decimal of `P` digits, `S` of them after the point: Spark's
/// `DecimalType(P, S)`, a Parquet `decimal128(P, S)` column, `-12.50` as text (always `S`
/// fraction digits). `P` is 1 to 38 and `S` at most `P`, checked at compile time.
///
/// Text with more fraction digits than `S` rounds half up, as Spark's decimal casts do; a value
/// with more than `P - S` integer digits is an error.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Decimal<const P: u8, const S: u8>(i128);

impl<const P: u8, const S: u8> Decimal<P, S> {
    const VALID: () = assert!(
        P >= 1 && P <= 38 && S <= P,
        "Decimal<P, S> needs 1 <= P <= 38, S <= P"
    );
    const FIELDS: &'static [&'static str] =
        &[MARKER, "decimal128", DIGITS[P as usize], DIGITS[S as usize]];

    /// The largest unscaled value plus one: 10^P.
    fn bound() -> i128 {
        10i128.pow(u32::from(P))
    }

    /// The decimal `unscaled / 10^S`; `None` if it has more than `P` digits.
    pub fn from_unscaled(unscaled: i128) -> Option<Self> {
        let () = Self::VALID;
        (unscaled.unsigned_abs() < Self::bound().unsigned_abs()).then_some(Decimal(unscaled))
    }

    /// The value times 10^S, as an integer.
    pub fn unscaled(self) -> i128 {
        self.0
    }

    /// The nearest `f64`.
    pub fn to_f64(self) -> f64 {
        self.0 as f64 / 10f64.powi(i32::from(S))
    }
}

impl<const P: u8, const S: u8> fmt::Display for Decimal<P, S> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let scale = 10u128.pow(u32::from(S));
        let abs = self.0.unsigned_abs();
        if self.0 < 0 {
            f.write_str("-")?;
        }
        write!(f, "{}", abs / scale)?;
        if S > 0 {
            write!(f, ".{:0width$}", abs % scale, width = usize::from(S))?;
        }
        Ok(())
    }
}

impl<const P: u8, const S: u8> FromStr for Decimal<P, S> {
    type Err = ColumnValueError;

    /// `[+-]digits[.digits]` (or `.5`, `5.`).
    fn from_str(s: &str) -> Result<Self, ColumnValueError> {
        let () = Self::VALID;
        let ty = format!("decimal({P}, {S})");
        let t = s.trim();
        let (neg, body) = match t.as_bytes().first() {
            Some(b'-') => (true, &t[1..]),
            Some(b'+') => (false, &t[1..]),
            _ => (false, t),
        };
        let (int, frac) = body.split_once('.').unwrap_or((body, ""));
        let all_digits = |p: &str| p.bytes().all(|c| c.is_ascii_digit());
        if (int.is_empty() && frac.is_empty()) || !all_digits(int) || !all_digits(frac) {
            return Err(invalid(s, ty, "expected digits with an optional point"));
        }
        let too_big = || invalid(s, &ty, "more integer digits than the precision allows");
        let int = int.trim_start_matches('0');
        if int.len() > usize::from(P - S) {
            return Err(too_big());
        }
        let mut unscaled: i128 = 0;
        let scaled_frac = frac.bytes().chain(std::iter::repeat(b'0')).take(usize::from(S));
        for c in int.bytes().chain(scaled_frac) {
            unscaled = unscaled * 10 + i128::from(c - b'0');
        }
        // Half up, on the first dropped digit.
        if frac.as_bytes().get(usize::from(S)).is_some_and(|d| *d >= b'5') {
            unscaled += 1;
        }
        let unscaled = if neg { -unscaled } else { unscaled };
        Self::from_unscaled(unscaled).ok_or_else(too_big)
    }
}

impl<const P: u8, const S: u8> Serialize for Decimal<P, S> {
    fn serialize<Se: Serializer>(&self, s: Se) -> Result<Se::Ok, Se::Error> {
        serialize_column_value(s, Self::FIELDS, self)
    }
}

impl<'de, const P: u8, const S: u8> Deserialize<'de> for Decimal<P, S> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_column_value(d, Self::FIELDS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn dates_print_and_parse_as_iso() {
        assert_eq!(Date::from_days(0).to_string(), "1970-01-01");
        assert_eq!(Date::from_ymd(2024, 2, 29).unwrap().to_string(), "2024-02-29");
        assert_eq!(Date::from_ymd(2023, 2, 29), None);
        assert_eq!("2024-02-29".parse::<Date>().unwrap().ymd(), (2024, 2, 29));
        assert_eq!("1969-12-31T23:00:00".parse::<Date>().unwrap().days(), -1);
        assert_eq!(Date::from_ymd(-1, 1, 1).unwrap().to_string(), "-000001-01-01");
        assert!("2024-13-01".parse::<Date>().is_err());
        assert!("2024-01-01x".parse::<Date>().is_err());
        assert!("24-01-01".parse::<Date>().is_err());
    }

    #[test]
    fn timestamps_keep_their_unit_and_zone() {
        let t: Timestamp<Millis> = "2024-03-01T12:00:00.25Z".parse().unwrap();
        assert_eq!(t.to_string(), "2024-03-01T12:00:00.250Z");
        let shifted: Timestamp<Millis> = "2024-03-01T13:00:00.25+01:00".parse().unwrap();
        assert_eq!(shifted, t);
        assert_eq!(t.to_unit::<Seconds>().unwrap().to_string(), "2024-03-01T12:00:00Z");
        assert_eq!(t.micros(), Some(t.count() * 1000));
        let ntz: TimestampNtz = "2024-03-01 12:00".parse().unwrap();
        assert_eq!(ntz.to_string(), "2024-03-01T12:00:00.000000");
        assert!("2024-03-01T12:00+02:00".parse::<TimestampNtz>().is_err());
        // Finer digits than the unit are truncated, before the epoch too (floor).
        let before: Timestamp<Seconds> = "1969-12-31T23:59:59.9Z".parse().unwrap();
        assert_eq!(before.count(), -1);
        let nanos: TimestampNtz<Nanos> = "2024-03-01T00:00:00.123456789".parse().unwrap();
        assert_eq!(nanos.to_unit::<Micros>().unwrap().to_string(), "2024-03-01T00:00:00.123456");
        assert!("2024-03-01T25:00".parse::<Timestamp>().is_err());
        assert!("2024-03-01T12:00:00.".parse::<Timestamp>().is_err());
    }

    #[test]
    fn decimals_round_half_up_and_check_their_precision() {
        let d: Decimal<10, 2> = "-12.5".parse().unwrap();
        assert_eq!((d.unscaled(), d.to_string()), (-1250, "-12.50".to_owned()));
        assert_eq!("0.005".parse::<Decimal<10, 2>>().unwrap().to_string(), "0.01");
        assert_eq!("0.004".parse::<Decimal<10, 2>>().unwrap().to_string(), "0.00");
        assert_eq!("-.5".parse::<Decimal<3, 0>>().unwrap().to_string(), "-1");
        assert!("12345678.9".parse::<Decimal<10, 2>>().is_ok());
        let e = "123456789".parse::<Decimal<10, 2>>().unwrap_err();
        assert!(e.to_string().contains("decimal(10, 2)"), "{e}");
        assert!("99.995".parse::<Decimal<4, 2>>().is_err(), "rounds up past the precision");
        assert!("1e5".parse::<Decimal<10, 2>>().is_err());
        assert_eq!(Decimal::<38, 0>::from_unscaled(10i128.pow(38)), None);
    }

    #[cfg(feature = "parquet")]
    #[test]
    fn a_trace_names_the_column_types() {
        use arrow_schema::{DataType, FieldRef, TimeUnit as Unit};
        use serde_arrow::schema::{SchemaLike, TracingOptions};
        #[derive(Serialize, Deserialize)]
        struct Row {
            day: Date,
            at: Option<Timestamp<Millis>>,
            local: Vec<TimestampNtz>,
            price: Decimal<10, 2>,
            text: String,
        }
        let opts = TracingOptions::default().allow_null_fields(true);
        let traced = while_tracing(|| Vec::<FieldRef>::from_type::<Row>(opts.clone())).unwrap();
        let types: Vec<DataType> =
            resolve_markers(traced).iter().map(|f| f.data_type().clone()).collect();
        assert_eq!(types[0], DataType::Date32);
        assert_eq!(types[1], DataType::Timestamp(Unit::Millisecond, Some("UTC".into())));
        match &types[2] {
            DataType::LargeList(f) | DataType::List(f) => {
                assert_eq!(f.data_type(), &DataType::Timestamp(Unit::Microsecond, None))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(types[3], DataType::Decimal128(10, 2));
        assert!(matches!(types[4], DataType::Utf8 | DataType::LargeUtf8));
        assert!(!tracing(), "the trace flag is reset");
        // From samples too (rows whose type cannot be traced from its Deserialize).
        let rows = vec![Row {
            day: Date::from_days(1),
            at: None,
            local: vec![],
            price: Decimal::from_unscaled(1).unwrap(),
            text: String::new(),
        }];
        let sampled = while_tracing(|| Vec::<FieldRef>::from_samples(&rows, opts)).unwrap();
        assert_eq!(resolve_markers(sampled)[3].data_type(), &DataType::Decimal128(10, 2));
    }

    #[test]
    fn outside_a_trace_they_are_their_text() {
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct Row {
            day: Date,
            at: Timestamp<Seconds>,
            price: Decimal<5, 1>,
        }
        let row = Row {
            day: Date::from_days(19_000),
            at: Timestamp::new(86_400),
            price: "-3.25".parse().unwrap(),
        };
        let json = serde_json::to_string(&row).unwrap();
        assert_eq!(json, r#"{"day":"2022-01-08","at":"1970-01-02T00:00:00Z","price":"-3.3"}"#);
        assert_eq!(serde_json::from_str::<Row>(&json).unwrap(), row);
    }

    proptest! {
        #[test]
        fn text_round_trips(
            days in any::<i32>(),
            count in any::<i64>(),
            unscaled in -(10i128.pow(18) - 1)..10i128.pow(18),
        ) {
            let d = Date::from_days(days);
            prop_assert_eq!(d.to_string().parse::<Date>().unwrap(), d);
            let ts = Timestamp::<Nanos>::new(count);
            prop_assert_eq!(ts.to_string().parse::<Timestamp<Nanos>>().unwrap(), ts);
            let us = TimestampNtz::<Micros>::new(count / 1000);
            prop_assert_eq!(us.to_string().parse::<TimestampNtz<Micros>>().unwrap(), us);
            let dec = Decimal::<18, 4>::from_unscaled(unscaled).unwrap();
            prop_assert_eq!(dec.to_string().parse::<Decimal<18, 4>>().unwrap(), dec);
        }
    }
}
