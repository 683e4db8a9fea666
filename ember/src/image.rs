//! This executable as the loader mapped it, read from memory with `dl_iterate_phdr` (never by
//! re-reading the file, which may have been replaced since the process started): the address
//! ranges of its code, its GNU build id, and whether Rust's standard library was linked
//! dynamically. One of the few modules allowed `unsafe` code (see the crate root).
//!
//! Cluster mode needs all three: task bodies name their decode entries in this executable's
//! decode table (`crate::ship`), which is only meaningful between processes of one build (the
//! build id, compared by driver and executor both) whose Rust code is all in the main program
//! (a `-C prefer-dynamic` build loads `libstd-*.so`, and code in separately loaded images is
//! refused).

use std::ffi::{c_int, c_void, CStr};
use std::ops::Range;
use std::sync::OnceLock;

/// How to build an executable that cluster mode accepts; part of every refusal here.
pub(crate) const HOW_TO_BUILD: &str =
    "cluster mode runs the driver's own executable on every executor, so build it as one \
     statically linked Rust program with a GNU build id: without `-C prefer-dynamic`, with `-C \
     link-arg=-Wl,--build-id=sha1` (Ember's .cargo/config.toml sets it), and run the same file on \
     the driver and every executor";

/// What the loader tells about this process's executable.
#[derive(Debug, Default, Clone)]
pub struct Image {
    /// Executable (`PF_X`) `PT_LOAD` ranges of the main program, in memory.
    text: Vec<Range<usize>>,
    /// `NT_GNU_BUILD_ID` of the main program, read from its `PT_NOTE` segments in memory.
    build_id: Option<Vec<u8>>,
    /// Loaded shared objects that are a dynamically linked Rust std (`libstd-<hash>.so`).
    dynamic_std: Vec<String>,
}

impl Image {
    /// Whether `addr` is in the main program's code (not a shared library's).
    pub fn in_main_text(&self, addr: usize) -> bool {
        self.text.iter().any(|r| r.contains(&addr))
    }

    /// The build id as lowercase hex, if the executable has one.
    pub fn build_id(&self) -> Option<String> {
        self.build_id
            .as_ref()
            .map(|b| b.iter().map(|x| format!("{x:02x}")).collect())
    }

    /// Checks that this executable can take part in a cluster: it has a build id, Rust's std is
    /// not a shared library, and Ember's own code is in the main program. The error says how to
    /// build.
    pub fn check_cluster_ready(&self) -> Result<String, String> {
        if let Some(lib) = self.dynamic_std.first() {
            return Err(format!(
                "this executable loads Rust's standard library dynamically ({lib}): offsets of \
                 task code between separately loaded images are meaningless; {HOW_TO_BUILD}"
            ));
        }
        if !self.in_main_text(check_cluster_ready as fn() -> Result<String, String> as usize) {
            return Err(format!(
                "Ember's code is not in the main program (is it linked as a shared library?); \
                 {HOW_TO_BUILD}"
            ));
        }
        self.build_id().ok_or_else(|| {
            format!(
                "this executable has no GNU build id, so executors cannot check they run the same \
                 build; {HOW_TO_BUILD}"
            )
        })
    }
}

/// [`Image::check_cluster_ready`] of this process: its build id, or why it cannot join a cluster.
pub fn check_cluster_ready() -> Result<String, String> {
    image().check_cluster_ready()
}

/// The build id this process presents to its peers: its own, or the one `ember.testing.buildId`
/// claims (`claimed`, empty when unset). Only the project's own tests (the `testing` feature)
/// may claim one: in any other build two processes claiming the same id would skip the check
/// that keeps code of one build from running in another.
pub fn presented_build_id(claimed: &str) -> Result<String, String> {
    match claimed {
        "" => check_cluster_ready(),
        claimed if cfg!(feature = "testing") => Ok(claimed.to_string()),
        _ => Err(
            "ember.testing.buildId is set, but only builds with Ember's `testing` feature honour \
             it; unset it"
                .to_string(),
        ),
    }
}

const NT_GNU_BUILD_ID: u32 = 3;

/// Walks an ELF note segment: `Elf64_Nhdr { namesz, descsz, type }`, name, desc, each padded to
/// 4; every length is bounds-checked.
fn find_build_id(notes: &[u8]) -> Option<Vec<u8>> {
    let mut at = 0usize;
    let u32_at = |i: usize| -> Option<u32> {
        Some(u32::from_ne_bytes(
            notes.get(i..i.checked_add(4)?)?.try_into().ok()?,
        ))
    };
    while at.checked_add(12)? <= notes.len() {
        let (namesz, descsz, kind) = (
            u32_at(at)? as usize,
            u32_at(at + 4)? as usize,
            u32_at(at + 8)?,
        );
        let name_start = at + 12;
        let desc_start = name_start.checked_add(namesz.checked_add(3)? & !3)?;
        let next = desc_start.checked_add(descsz.checked_add(3)? & !3)?;
        if kind == NT_GNU_BUILD_ID
            && notes.get(name_start..name_start.checked_add(namesz)?)? == b"GNU\0"
        {
            let id = notes.get(desc_start..desc_start.checked_add(descsz)?)?;
            return (!id.is_empty()).then(|| id.to_vec());
        }
        at = next;
    }
    None
}

/// State passed through `dl_iterate_phdr` to [`visit`].
struct Walk {
    image: Image,
    first: bool,
}

/// `dl_iterate_phdr`'s callback: records what it needs of each loaded object.
unsafe extern "C" fn visit(
    info: *mut libc::dl_phdr_info,
    _size: usize,
    data: *mut c_void,
) -> c_int {
    if info.is_null() || data.is_null() {
        return 0;
    }
    // SAFETY: the loader passes a valid `dl_phdr_info` for the duration of the call, and `data`
    // is the `&mut Walk` that `read_image` passed in, used by nothing else meanwhile.
    let (info, walk) = unsafe { (&*info, &mut *(data as *mut Walk)) };
    let name = if info.dlpi_name.is_null() {
        String::new()
    } else {
        // SAFETY: a non-null `dlpi_name` is a NUL-terminated string owned by the loader.
        unsafe { CStr::from_ptr(info.dlpi_name) }
            .to_string_lossy()
            .into_owned()
    };
    let file = name.rsplit('/').next().unwrap_or("");
    if file.starts_with("libstd-") && file.ends_with(".so") {
        walk.image.dynamic_std.push(name.clone());
    }
    // The first object reported is the main program, with an empty name (the vDSO and the
    // libraries follow).
    if std::mem::take(&mut walk.first) && name.is_empty() && !info.dlpi_phdr.is_null() {
        // SAFETY: `dlpi_phdr` points to `dlpi_phnum` program headers of a loaded object.
        let phdrs =
            unsafe { std::slice::from_raw_parts(info.dlpi_phdr, usize::from(info.dlpi_phnum)) };
        for ph in phdrs {
            let start = (info.dlpi_addr as usize).wrapping_add(ph.p_vaddr as usize);
            if ph.p_type == libc::PT_LOAD && ph.p_flags & libc::PF_X != 0 {
                walk.image
                    .text
                    .push(start..start.saturating_add(ph.p_memsz as usize));
            }
            if ph.p_type == libc::PT_NOTE && walk.image.build_id.is_none() && ph.p_memsz > 0 {
                // SAFETY: a `PT_NOTE` segment lies inside a loaded, readable segment of the
                // image, mapped for the life of the process: readable for `p_memsz` bytes.
                let notes =
                    unsafe { std::slice::from_raw_parts(start as *const u8, ph.p_memsz as usize) };
                walk.image.build_id = find_build_id(notes);
            }
        }
    }
    0
}

fn read_image() -> Image {
    let mut walk = Walk {
        image: Image::default(),
        first: true,
    };
    // SAFETY: `visit` has the callback's type and only reads what the loader hands it; `walk`
    // outlives the call.
    unsafe { libc::dl_iterate_phdr(Some(visit), &mut walk as *mut Walk as *mut c_void) };
    walk.image
}

/// This process's image (read once).
pub fn image() -> &'static Image {
    static IMAGE: OnceLock<Image> = OnceLock::new();
    IMAGE.get_or_init(read_image)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_testing_builds_may_claim_another_build_id() {
        assert_eq!(presented_build_id(""), check_cluster_ready());
        let claimed = presented_build_id("someone-else");
        if cfg!(feature = "testing") {
            assert_eq!(claimed, Ok("someone-else".to_string()));
        } else {
            assert!(claimed.is_err_and(|e| e.contains("ember.testing.buildId")));
        }
    }

    #[inline(never)]
    fn some_function() -> usize {
        std::hint::black_box(7)
    }

    #[test]
    fn the_test_binary_is_a_static_build_with_an_id_and_its_code_is_in_its_text() {
        let img = image();
        assert!(img.in_main_text(some_function as fn() -> usize as usize));
        assert!(!img.in_main_text(0));
        assert!(
            !img.in_main_text(libc::getpid as *const () as usize),
            "libc's code is not the main program's"
        );
        assert!(img.dynamic_std.is_empty());
        let id = img.check_cluster_ready().expect("cluster-ready");
        assert!(
            id.len() >= 16 && id.bytes().all(|c| c.is_ascii_hexdigit()),
            "{id}"
        );
        // The same id the file's note has (read here from the file only to compare).
        let file = std::fs::read("/proc/self/exe").unwrap();
        let hex = |s: &str| {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
                .collect::<Vec<u8>>()
        };
        assert!(file.windows(id.len() / 2).any(|w| w == hex(&id)));
    }

    #[test]
    fn a_dynamic_std_or_a_missing_id_is_refused_with_how_to_build() {
        let mut img = image().clone();
        img.dynamic_std.push("/x/libstd-0123.so".into());
        let e = img.check_cluster_ready().unwrap_err();
        assert!(
            e.contains("libstd-0123.so") && e.contains("prefer-dynamic"),
            "{e}"
        );
        let mut img = image().clone();
        img.build_id = None;
        assert!(img.check_cluster_ready().unwrap_err().contains("build-id"));
        let mut img = image().clone();
        img.text.clear();
        assert!(img
            .check_cluster_ready()
            .unwrap_err()
            .contains("shared library"));
    }

    #[test]
    fn notes_are_walked_with_every_length_checked() {
        let mut note = Vec::new();
        for (name, kind, desc) in [
            (&b"XYZ\0"[..], 1u32, &[1u8, 2, 3][..]),
            (b"GNU\0", 3, &[0xab; 20]),
        ] {
            note.extend_from_slice(&(name.len() as u32).to_ne_bytes());
            note.extend_from_slice(&(desc.len() as u32).to_ne_bytes());
            note.extend_from_slice(&kind.to_ne_bytes());
            note.extend_from_slice(name);
            note.extend_from_slice(desc);
            while note.len() % 4 != 0 {
                note.push(0);
            }
        }
        assert_eq!(find_build_id(&note), Some(vec![0xab; 20]));
        for cut in 0..note.len() {
            let _ = find_build_id(&note[..cut]);
        }
        let mut huge = note.clone();
        huge[4..8].copy_from_slice(&u32::MAX.to_ne_bytes());
        assert_eq!(find_build_id(&huge), None);
        assert_eq!(find_build_id(&[]), None);
    }
}
