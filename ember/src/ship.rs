//! How code reaches executors: the same binary (see ARCHITECTURE.md, "How code reaches
//! executors"). One of the few modules allowed `unsafe` code (see the crate root).
//!
//! A task body crosses the network as a [`Shipped`] value: the index of its decode entry in this
//! build's **decode table**, the tag of its concrete type, and its postcard bytes.
//!
//! # The decode table
//!
//! Every type that can be shipped implements [`Shippable`]; its decode entry is the
//! monomorphized [`decode_entry::<T>`]. When [`ship::<T>`] is compiled for a type, an assembler
//! directive inside it (no instruction: nothing runs) appends a record to the
//! `ember_ship_table` section of the executable: the PC-relative addresses of `decode_entry::<T>`,
//! of `type_id_of::<T>` and of `type_id_of::<T::Output>`. The linker gathers the records of every
//! shipped type into one read-only table, the same in every process of the build, and bounds it
//! with `__start_`/`__stop_` symbols.
//!
//! On the executor, [`decode`] takes the entry *index* from the wire, never an address:
//! 1. the index is bounds-checked against the table;
//! 2. the record's output type (a full `TypeId`, from the record's own function) must be the `U`
//!    the caller expects, and its type's tag must be the shipped tag — both **before** any call
//!    into the entry;
//! 3. every address in the table was checked once to lie in this executable's own text segment
//!    (read from memory with `dl_iterate_phdr`, [`crate::image`]).
//!
//! So the only addresses ever called are those of decode entries the compiler wrote into the
//! table, with the function type the caller expects: no jump to an address from the wire.
//!
//! Decode entries re-create the user's zero-sized closures with [`conjure`], which works only
//! while the permit of this module is held, i.e. only inside [`decode`]. A value of a zero-sized
//! type may be created out of nothing only if the type is inhabited; that is the one promise the
//! table cannot check (a build could compile `ship::<T>` for an uninhabited `T` in dead code), so
//! [`decode`] is an `unsafe fn` whose caller vouches that the bytes came from [`ship`] in a
//! process of this build, where a value of the type existed: the executor does, for frames from
//! its authenticated driver whose build id it checked (`crate::executor::process`).
//!
//! The `unsafe` operations here, each with its argument at the site and its own tests:
//! 1. the directive that writes a table record ([`ship`]);
//! 2. reading the linker-bounded table ([`table`]);
//! 3. calling a record's type-id function, and turning its checked entry into a `DecodeFn<U>`
//!    ([`table`], [`decode`]);
//! 4. reading a zero-sized closure out of nothing ([`conjure`]).
//!
//! It knows how to encode and decode task bodies, nothing more: the hook that turns a spawned
//! process into an executor before `main` is the executor's (`crate::executor::process`).

use std::any::TypeId;
use std::cell::Cell;
use std::hash::{Hash, Hasher};
use std::sync::OnceLock;

use rustc_hash::FxHashMap;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{EmberError, Result};
pub(crate) use crate::task::Shipped;
use crate::task::TaskKind;

/// The signature of every decode entry: `(type tag, bytes) -> value`.
type DecodeFn<U> = fn(u64, &[u8]) -> Result<U>;

/// A value that can be shipped to an executor: its bytes travel, and the executor turns them
/// back into `Output` (the task body as the executor runs it).
pub(crate) trait Shippable: Serialize + DeserializeOwned + 'static {
    /// What the executor gets.
    type Output: 'static;
    /// Turns the decoded value into what the executor gets.
    fn into_output(self) -> Self::Output;
}

/// A stable tag for a type within one build: a hash of its `TypeId`.
pub(crate) fn type_tag<T: 'static>() -> u64 {
    let mut h = rustc_hash::FxHasher::default();
    TypeId::of::<T>().hash(&mut h);
    h.finish()
}

/// The `TypeId` of `T`, as a function the table can point to.
fn type_id_of<T: 'static>() -> TypeId {
    TypeId::of::<T>()
}

/// The decode entry of `T`: checks the tag again (it is the entry's own precondition), decodes,
/// and converts.
fn decode_entry<T: Shippable>(tag: u64, bytes: &[u8]) -> Result<T::Output> {
    decode_checked::<T>(tag, bytes).map(T::into_output)
}

/// Decodes `bytes` as `T` after checking the tag.
fn decode_checked<T: DeserializeOwned + 'static>(tag: u64, bytes: &[u8]) -> Result<T> {
    if tag != type_tag::<T>() {
        return Err(EmberError::serialization(format!(
            "task type tag mismatch: expected {:x}, got {tag:x}",
            type_tag::<T>()
        )));
    }
    postcard::from_bytes(bytes).map_err(EmberError::ser)
}

/// Writes `T`'s record into the decode table (see the module docs). Emits no instruction.
#[inline(always)]
fn record_entry<T: Shippable>() {
    // SAFETY: the template only switches sections and emits data: three 8-byte PC-relative
    // offsets (`sym - .`, resolved by the linker, so no relocation is left in the read-only
    // section) into the `ember_ship_table` section, then switches back. No instruction is
    // emitted in the function's own section, so executing this touches no register, memory,
    // stack or flag (`nomem, nostack, preserves_flags`). `R` (SHF_GNU_RETAIN) keeps the section
    // when the linker collects unused sections. The record's layout is `RawRecord`.
    unsafe {
        std::arch::asm!(
            ".pushsection ember_ship_table,\"aR\",@progbits",
            ".balign 8",
            ".8byte {entry} - .",
            ".8byte {tag} - .",
            ".8byte {output} - .",
            ".popsection",
            entry = sym decode_entry::<T>,
            tag = sym type_id_of::<T>,
            output = sym type_id_of::<<T as Shippable>::Output>,
            options(nomem, nostack, preserves_flags),
        );
    }
}

/// One record of the table as the directive above lays it out: each field is the distance from
/// the field itself to its target.
#[repr(C)]
#[derive(Clone, Copy)]
struct RawRecord {
    entry: i64,
    tag: i64,
    output: i64,
}

/// A record of the table, checked.
#[derive(Clone, Copy, Debug)]
struct Entry {
    /// Address of `decode_entry::<T>`.
    entry: usize,
    /// `type_tag::<T>()`.
    tag: u64,
    /// `TypeId::of::<T::Output>()`.
    output: TypeId,
}

/// This build's decode table: the records in table order, and the index of each.
struct Table {
    entries: Vec<Entry>,
    index: FxHashMap<(usize, u64), u64>,
}

extern "C" {
    /// Linker-defined bounds of the `ember_ship_table` section.
    static __start_ember_ship_table: [RawRecord; 0];
    static __stop_ember_ship_table: [RawRecord; 0];
}

/// The decode table, read and checked once per process.
fn table() -> std::result::Result<&'static Table, EmberError> {
    static TABLE: OnceLock<std::result::Result<Table, String>> = OnceLock::new();
    TABLE
        .get_or_init(read_table)
        .as_ref()
        .map_err(|e| EmberError::serialization(e.clone()))
}

fn read_table() -> std::result::Result<Table, String> {
    // The section exists even in a program that ships nothing, so the bounds always resolve.
    // SAFETY: as in `record_entry`: section directives only, no instruction.
    unsafe {
        std::arch::asm!(
            ".pushsection ember_ship_table,\"aR\",@progbits",
            ".popsection",
            options(nomem, nostack, preserves_flags)
        );
    }
    let start = std::ptr::addr_of!(__start_ember_ship_table) as *const RawRecord;
    let stop = std::ptr::addr_of!(__stop_ember_ship_table) as *const RawRecord;
    let bytes = (stop as usize)
        .checked_sub(start as usize)
        .ok_or("the decode table's bounds are reversed")?;
    if bytes % std::mem::size_of::<RawRecord>() != 0
        || !(start as usize).is_multiple_of(std::mem::align_of::<RawRecord>())
    {
        return Err(format!(
            "the decode table is malformed ({bytes} bytes at {start:p})"
        ));
    }
    let n = bytes / std::mem::size_of::<RawRecord>();
    // SAFETY: `__start_`/`__stop_` bound the `ember_ship_table` section, which the linker built
    // only from the 24-byte, 8-aligned records of `record_entry` (checked: size and alignment
    // above); it is mapped read-only for the life of the process.
    let raw: &[RawRecord] = if n == 0 {
        &[]
    } else {
        unsafe { std::slice::from_raw_parts(start, n) }
    };
    let image = crate::image::image();
    let mut entries = Vec::with_capacity(n);
    let mut index = FxHashMap::default();
    for (i, r) in raw.iter().enumerate() {
        let at = |field: &i64| (field as *const i64 as usize).wrapping_add(*field as usize);
        let (entry, tag_fn, output_fn) = (at(&r.entry), at(&r.tag), at(&r.output));
        for addr in [entry, tag_fn, output_fn] {
            if !image.in_main_text(addr) {
                return Err(format!(
                    "decode table record {i} points outside this executable's text segment \
                     ({addr:#x}); {}",
                    crate::image::HOW_TO_BUILD
                ));
            }
        }
        // SAFETY: `tag_fn` and `output_fn` are the addresses of `type_id_of::<X>` instances,
        // written by the compiler into the record (`sym`) and checked to lie in this
        // executable's text; `type_id_of::<X>` has exactly the type `fn() -> TypeId`.
        let (tag_id, output) = unsafe {
            let tag_of: fn() -> TypeId = std::mem::transmute::<usize, fn() -> TypeId>(tag_fn);
            let output_of: fn() -> TypeId = std::mem::transmute::<usize, fn() -> TypeId>(output_fn);
            (tag_of(), output_of())
        };
        let mut h = rustc_hash::FxHasher::default();
        tag_id.hash(&mut h);
        let tag = h.finish();
        // Inlining may copy a record; the first copy is the type's index.
        index.entry((entry, tag)).or_insert(i as u64);
        entries.push(Entry { entry, tag, output });
    }
    Ok(Table { entries, index })
}

/// Packs a value for the executor: its decode entry's index in the table, its tag, its bytes.
pub(crate) fn ship<T: Shippable>(value: &T) -> Result<Shipped> {
    record_entry::<T>();
    let bytes = postcard::to_allocvec(value).map_err(EmberError::ser)?;
    let table = table()?;
    let entry = decode_entry::<T> as DecodeFn<T::Output> as usize;
    let tag = type_tag::<T>();
    let index = *table.index.get(&(entry, tag)).ok_or_else(|| {
        EmberError::serialization(format!(
            "{} has no record in the decode table; {}",
            std::any::type_name::<T>(),
            crate::image::HOW_TO_BUILD
        ))
    })?;
    Ok(Shipped {
        entry: index,
        tag,
        bytes,
    })
}

thread_local! {
    /// Set only while a decode entry runs: the one place zero-sized closures may be re-created.
    static PERMIT: Cell<bool> = const { Cell::new(false) };
}

struct PermitGuard(bool);
impl Drop for PermitGuard {
    fn drop(&mut self) {
        PERMIT.with(|p| p.set(self.0));
    }
}

/// Unpacks a shipped value on an executor.
///
/// The entry is looked up by index in this build's decode table, and its record must name the
/// output type `U` and the shipped type tag before it is called (see the module docs), so no
/// shipped value, however forged, makes this call an address that is not a decode entry of the
/// right type.
///
/// # Safety
///
/// `shipped` must have been made by [`ship`] in a process running this same executable (same
/// build id), where a value of the shipped type existed: zero-sized closures are re-created from
/// nothing while decoding, which is sound only for types that have values. An executor
/// satisfies this for task binaries from its driver over an authenticated connection, after
/// checking the driver's build id.
pub(crate) unsafe fn decode<U: 'static>(shipped: &Shipped) -> Result<U> {
    let table = table()?;
    let e = usize::try_from(shipped.entry)
        .ok()
        .and_then(|i| table.entries.get(i))
        .ok_or_else(|| {
            EmberError::serialization(format!(
                "shipped task names decode entry {} of a table of {}",
                shipped.entry,
                table.entries.len()
            ))
        })?;
    if e.output != TypeId::of::<U>() {
        return Err(EmberError::serialization(format!(
            "shipped task's decode entry {} does not produce a {}",
            shipped.entry,
            std::any::type_name::<U>()
        )));
    }
    if e.tag != shipped.tag {
        return Err(EmberError::serialization(format!(
            "task type tag mismatch: entry {} decodes {:x}, got {:x}",
            shipped.entry, e.tag, shipped.tag
        )));
    }
    // SAFETY: `e.entry` is the address of `decode_entry::<T>` for some `T: Shippable` (written by
    // the compiler into the table, checked to lie in this executable's text), and
    // `T::Output == U` (the record's output `TypeId`, checked just above), so its type is exactly
    // `DecodeFn<U>`. What the entry does with the permit is covered by this function's contract.
    let f: DecodeFn<U> = unsafe { std::mem::transmute::<usize, DecodeFn<U>>(e.entry) };
    let previous = PERMIT.with(|p| p.replace(true));
    let _guard = PermitGuard(previous);
    f(shipped.tag, &shipped.bytes)
}

/// Unpacks a shipped value nested inside one being decoded (a type-erased part of a task body).
/// Refused outside a decode: the outer [`decode`]'s caller vouched for these bytes too.
pub(crate) fn decode_nested<U: 'static>(shipped: &Shipped) -> Result<U> {
    if !PERMIT.with(|p| p.get()) {
        return Err(EmberError::serialization(
            "a nested shipped value can be decoded only inside a task's decode",
        ));
    }
    // SAFETY: the permit is held, so this runs inside `decode`, whose caller vouched that the
    // whole task body, this nested value included, was made by `ship` in a process of this build.
    unsafe { decode::<U>(shipped) }
}

/// The forced wire path of local mode (`ember.test.serializeLocal`): ships a task body and
/// decodes it again in this process.
pub(crate) fn round_trip(kind: &TaskKind) -> Result<TaskKind> {
    let shipped = kind.ship()?;
    // SAFETY: `shipped` was just made by `ship` in this very process, from a task body that
    // exists (`kind`).
    unsafe { decode::<TaskKind>(&shipped) }
}

/// Re-creates a zero-sized, drop-free `F` (a user closure that captures nothing).
///
/// Only inside [`decode`]: a value of a zero-sized type exists only if the type is inhabited, and
/// a closure capturing an uninhabited zero-sized value would be zero-sized too. Inside `decode`
/// the type was fixed by the driver, where a value of it existed (`decode`'s contract).
pub(crate) fn conjure<F: Copy + 'static>() -> Result<F> {
    const {
        assert!(
            std::mem::size_of::<F>() == 0,
            "only zero-sized closures can be shipped"
        );
        assert!(
            !std::mem::needs_drop::<F>(),
            "only closures without drop glue can be shipped"
        );
    }
    if !PERMIT.with(|p| p.get()) {
        return Err(EmberError::serialization(
            "closures can be decoded only inside a task",
        ));
    }
    // SAFETY: `F` is zero-sized (asserted at compile time), so reading it reads no memory, and a
    // dangling, well-aligned pointer is valid for zero-sized reads. The value is valid because
    // `F` is inhabited (the permit confines this to `decode`, see above) and has no drop glue
    // (asserted), so creating it out of thin air cannot double-free anything.
    Ok(unsafe { std::ptr::NonNull::<F>::dangling().as_ptr().read() })
}

/// The serde form of a zero-sized function value: nothing on the wire, re-created on decode.
pub(crate) mod zst {
    use serde::{Deserializer, Serializer};

    /// Serializes a zero-sized function as unit.
    pub(crate) fn serialize<F, S: Serializer>(_f: &F, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_unit()
    }

    /// Re-creates the function under the task permit.
    pub(crate) fn deserialize<'de, F: Copy + 'static, D: Deserializer<'de>>(
        d: D,
    ) -> Result<F, D::Error> {
        <() as serde::Deserialize>::deserialize(d)?;
        super::conjure::<F>().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Job {
        n: u32,
    }

    impl Shippable for Job {
        type Output = Job;
        fn into_output(self) -> Job {
            self
        }
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Other(String);

    impl Shippable for Other {
        type Output = String;
        fn into_output(self) -> String {
            self.0
        }
    }

    /// A job carrying a zero-sized closure, re-created on decode.
    #[derive(Serialize, Deserialize)]
    #[serde(bound(deserialize = "F: Copy + 'static"))]
    struct WithFn<F> {
        #[serde(with = "zst")]
        f: F,
        x: u32,
    }

    impl<F: Fn(u32) -> u32 + Copy + 'static> Shippable for WithFn<F> {
        type Output = u32;
        fn into_output(self) -> u32 {
            (self.f)(self.x)
        }
    }

    #[test]
    fn round_trip_through_the_table() {
        let s = ship(&Job { n: 7 }).unwrap();
        // SAFETY (test): made by `ship` just above, in this process.
        assert_eq!(unsafe { decode::<Job>(&s) }.unwrap(), Job { n: 7 });
        let add = |x: u32| x + 1;
        let s = ship(&WithFn { f: add, x: 41 }).unwrap();
        // SAFETY (test): as above.
        assert_eq!(unsafe { decode::<u32>(&s) }.unwrap(), 42);
    }

    #[test]
    fn the_table_has_a_checked_record_per_shipped_type() {
        let (a, b) = (
            ship(&Job { n: 1 }).unwrap(),
            ship(&Other("x".into())).unwrap(),
        );
        let t = table().unwrap();
        assert_ne!(a.entry, b.entry);
        let (ea, eb) = (t.entries[a.entry as usize], t.entries[b.entry as usize]);
        assert_eq!(
            (ea.tag, ea.output),
            (type_tag::<Job>(), TypeId::of::<Job>())
        );
        assert_eq!(
            (eb.tag, eb.output),
            (type_tag::<Other>(), TypeId::of::<String>())
        );
        let image = crate::image::image();
        assert!(t.entries.iter().all(|e| image.in_main_text(e.entry)));
    }

    #[test]
    fn a_wrong_tag_index_or_output_type_is_refused_before_any_call() {
        let good = ship(&Job { n: 7 }).unwrap();
        let other = ship(&Other("x".into())).unwrap();
        // SAFETY (test, for every call below): the values are `ship`'s, altered only in the
        // fields `decode` checks before it calls anything.
        unsafe {
            let mut s = good.clone();
            s.tag ^= 1;
            assert!(decode::<Job>(&s)
                .unwrap_err()
                .to_string()
                .contains("tag mismatch"));
            // The right entry asked for another output type.
            assert!(decode::<String>(&good)
                .unwrap_err()
                .to_string()
                .contains("does not produce"));
            // Another type's entry with this type's tag.
            let mut s = other.clone();
            s.tag = good.tag;
            assert!(decode::<String>(&s).is_err());
            // Indexes past the table, including ones that would be addresses.
            for entry in [
                table().unwrap().entries.len() as u64,
                u64::MAX,
                decode_entry::<Job> as DecodeFn<Job> as usize as u64,
            ] {
                let s = Shipped {
                    entry,
                    ..good.clone()
                };
                assert!(
                    decode::<Job>(&s)
                        .unwrap_err()
                        .to_string()
                        .contains("decode entry"),
                    "{entry}"
                );
            }
            // Bytes that do not decode.
            let s = Shipped {
                bytes: vec![0xff; 3],
                ..good.clone()
            };
            assert!(decode::<Job>(&s).is_err());
        }
    }

    #[test]
    fn closures_are_conjured_only_under_the_permit() {
        fn make<F: Fn(u32) -> u32 + Copy + 'static>(_: F) -> Result<F> {
            conjure::<F>()
        }
        assert!(make(|x: u32| x + 1).is_err(), "outside decode");
        let nested = ship(&Job { n: 1 }).unwrap();
        assert!(
            decode_nested::<Job>(&nested).is_err(),
            "nested decodes need the permit too"
        );
    }

    #[test]
    fn the_permit_is_restored_after_a_decode() {
        let s = ship(&Job { n: 3 }).unwrap();
        // SAFETY (test): made by `ship` just above.
        unsafe { decode::<Job>(&s) }.unwrap();
        assert!(!PERMIT.with(|p| p.get()));
    }
}
