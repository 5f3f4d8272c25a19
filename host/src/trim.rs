//! Giving back the memory that only starting needed.
//!
//! Most of an idle Aetherius's resident memory is not data but the pages of
//! its own binary: 25 MB of machine code (wasmtime, Cranelift, rustls,
//! librdkafka, clap, ...), of which a start touches a good part once
//! (parsing the config, compiling or loading plugins, the initial list) and
//! the steady watch path a small part. The kernel also maps code around each
//! page that faults (fault-around, whole large folios), so what is resident
//! after a start is far more than what a running pipeline uses.
//!
//! Once the plugins are loaded, again once the watches are synced (after
//! the initial lists), and after a reload, [`release`]
//!
//! - asks the kernel to page out the read-only file mappings (the binary,
//!   the compiled plugins, shared libraries): `MADV_PAGEOUT`, which drops
//!   them from the page cache too where the process may (files it owns,
//!   such as the plugin cache, or any file when running as root). Paging
//!   out never discards data: on memory that is not a clean file page it
//!   does nothing (no swap) or swaps.
//! - then, for the executable and the shared libraries (libc, libcrypto),
//!   `MADV_DONTNEED`, which unmaps them from this process whether or not it
//!   owns the file or shares the pages with other processes (in the image
//!   the binary belongs to root and the process runs as 65532; every
//!   process maps libc): the pages stay in the page cache. DONTNEED would
//!   zero anonymous memory, so it is kept to mappings that stay mapped
//!   while the process runs: the program and the libraries the loader
//!   mapped before `main`. The compiled plugins (`.cwasm`) are not among
//!   them: a reload unmaps old plugins' code while the trim may run, and
//!   the address could be reused by an allocation between reading smaps
//!   and advising.
//!
//! Only mappings without a private copy of any page (`Anonymous: 0 kB` in
//! smaps: no relocations, no breakpoints) are touched, so nothing but clean
//! file pages is let go: reading them again costs a page fault, and what
//! the pipeline uses comes back within its first events.
//!
//! Last, it returns glibc's free heap memory to the kernel (`malloc_trim`):
//! the buffers of the config, the plugin compile and the initial list.
//!
//! Nothing here changes what the process does; it is measured by the watch
//! benchmark's idle and steady RSS (docs/benchmarks.md).

use std::path::{Path, PathBuf};
use std::time::Duration;

use procfs::process::{MMPermissions, MMapPath, MemoryMaps};

/// What [`release`] let go of, for the log.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Released {
    /// Resident bytes of the clean file mappings advised.
    pub mapped: u64,
    /// Mappings advised.
    pub mappings: usize,
}

/// Lets go of the clean file pages mapped into this process and of the
/// allocator's free memory. Blocking (reads /proc, a few system calls):
/// run it off the async threads.
pub fn release() -> Released {
    let mut released = Released::default();
    let me = procfs::process::Process::myself();
    let executable = me.as_ref().ok().and_then(|me| me.exe().ok());
    match me.and_then(|me| me.smaps()) {
        Ok(smaps) => {
            for mapping in clean_file_mappings(smaps) {
                let stays_mapped = shared_library(&mapping.path)
                    || executable.as_deref() == Some(mapping.path.as_path());
                advise(mapping.start, mapping.end, stays_mapped);
                released.mapped += mapping.resident;
                released.mappings += 1;
            }
        }
        Err(error) => tracing::debug!(%error, "cannot read /proc/self/smaps; code pages kept"),
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory of glibc's heap.
    unsafe {
        libc::malloc_trim(0);
    }
    released
}

/// How long [`release_when_ready`] waits for `/ready` at most (a sink that
/// never comes up must not keep it looking forever).
const READY_WAIT: Duration = Duration::from_secs(300);

/// [`release`] once every watch is synced (`/ready`), looking every
/// `every`, or after [`READY_WAIT`]; then on a blocking thread. Ends after
/// that.
pub async fn release_when_ready(every: Duration) {
    let give_up = tokio::time::Instant::now() + READY_WAIT;
    while crate::metrics::ready().is_err() && tokio::time::Instant::now() < give_up {
        tokio::time::sleep(every).await;
    }
    release_soon().await;
}

/// [`release`] on a blocking thread, logged.
pub async fn release_soon() {
    if let Ok(released) = tokio::task::spawn_blocking(release).await {
        tracing::debug!(
            mappings = released.mappings,
            resident_bytes = released.mapped,
            "gave back the code and heap pages the start touched"
        );
    }
}

/// One mapping [`release`] may advise.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mapping {
    start: usize,
    end: usize,
    /// Its resident bytes (`Rss`).
    resident: u64,
    /// The file mapped.
    path: PathBuf,
}

/// The read-only, private, file-backed mappings of `smaps` holding resident
/// pages and no private (anonymous) copy of any.
fn clean_file_mappings(smaps: MemoryMaps) -> Vec<Mapping> {
    smaps
        .into_iter()
        .filter_map(|map| {
            let MMapPath::Path(path) = map.pathname else {
                return None;
            };
            let field = |name: &str| map.extension.map.get(name).copied().unwrap_or(0);
            let read_only = map
                .perms
                .contains(MMPermissions::READ | MMPermissions::PRIVATE)
                && !map.perms.contains(MMPermissions::WRITE);
            let resident = field("Rss");
            (read_only && map.inode != 0 && field("Anonymous") == 0 && resident > 0).then_some(
                Mapping {
                    start: map.address.0 as usize,
                    end: map.address.1 as usize,
                    resident,
                    path,
                },
            )
        })
        .collect()
}

/// Whether `path` names a shared library (`libc.so.6`, `libcrypto.so.3`):
/// the loader maps them before `main` and nothing here unloads one.
fn shared_library(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|name| name.to_str()) else {
        return false;
    };
    name.match_indices(".so")
        .any(|(at, _)| matches!(name.as_bytes().get(at + 3), None | Some(b'.')))
}

/// Pages out a clean read-only file mapping; `stays_mapped` (the program's,
/// a library's): also unmapped from this process.
fn advise(start: usize, end: usize, stays_mapped: bool) {
    let ptr = start as *mut libc::c_void;
    let len = end - start;
    // SAFETY: the range was a read-only private file mapping of this
    // process whose pages were all unmodified file pages (see
    // `clean_file_mappings`). MADV_PAGEOUT never discards data, whatever is
    // mapped there by now. MADV_DONTNEED only on the program's and the
    // libraries' mappings, which stay mapped as long as the process runs
    // (`shared_library`): dropping their clean
    // pages changes no content, the next access reads them from the file
    // again. Errors (an old kernel without MADV_PAGEOUT, a mapping gone
    // meanwhile) leave the pages where they are.
    unsafe {
        libc::madvise(ptr, len, libc::MADV_PAGEOUT);
        if stays_mapped {
            libc::madvise(ptr, len, libc::MADV_DONTNEED);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use procfs::FromBufRead;

    fn parse(smaps: &str) -> MemoryMaps {
        MemoryMaps::from_buf_read(smaps.as_bytes()).expect("the fixture parses")
    }

    const SMAPS: &str = "\
55d0c0000000-55d0c1000000 r-xp 00200000 fd:00 1234 /usr/bin/aetherius
Size:              16384 kB
Rss:                8192 kB
Anonymous:             0 kB
55d0c1000000-55d0c1400000 r--p 01200000 fd:00 1234 /usr/bin/aetherius
Size:               4096 kB
Rss:                4096 kB
Anonymous:           120 kB
55d0c1400000-55d0c1410000 rw-p 01600000 fd:00 1234 /usr/bin/aetherius
Rss:                  64 kB
Anonymous:            64 kB
55d0c2000000-55d0c2100000 rw-p 00000000 00:00 0 [heap]
Rss:                 900 kB
Anonymous:           900 kB
7f0000000000-7f0000200000 r-xp 00001000 fd:00 99 /var/cache/aetherius/plugins/ab c.cwasm
Rss:                 512 kB
Anonymous:             0 kB
7f0000200000-7f0000300000 r--p 00000000 fd:00 100 /usr/lib/x86_64-linux-gnu/libc.so.6
Rss:                   0 kB
Anonymous:             0 kB
7f0000300000-7f0000301000 r-xp 00000000 00:00 0 [vdso]
Rss:                   4 kB
Anonymous:             0 kB
7f0000400000-7f0000500000 r--s 00000000 fd:00 101 /dev/shm/shared
Rss:                 100 kB
Anonymous:             0 kB
";

    #[test]
    fn only_clean_private_read_only_file_mappings_with_resident_pages() {
        let found = clean_file_mappings(parse(SMAPS));
        assert_eq!(
            found,
            [
                Mapping {
                    start: 0x55d0c0000000,
                    end: 0x55d0c1000000,
                    resident: 8192 * 1024,
                    path: "/usr/bin/aetherius".into(),
                },
                Mapping {
                    start: 0x7f0000000000,
                    end: 0x7f0000200000,
                    resident: 512 * 1024,
                    path: "/var/cache/aetherius/plugins/ab c.cwasm".into(),
                },
            ],
            "not: relocated (anonymous) pages, writable, heap, nothing resident, vdso, shared"
        );
    }

    #[test]
    fn shared_libraries_by_name() {
        assert!(shared_library(Path::new(
            "/usr/lib/x86_64-linux-gnu/libc.so.6"
        )));
        assert!(shared_library(Path::new(
            "/usr/lib/x86_64-linux-gnu/libcrypto.so.3"
        )));
        assert!(shared_library(Path::new("/lib64/ld-linux-x86-64.so.2")));
        assert!(shared_library(Path::new("/opt/lib/libfoo.so")));
        assert!(!shared_library(Path::new(
            "/var/cache/aetherius/plugins/ab.cwasm"
        )));
        assert!(!shared_library(Path::new("/usr/local/bin/aetherius")));
        assert!(!shared_library(Path::new("/data/some.sock")));
        assert!(!shared_library(Path::new("/data/x.sol.json")));
    }

    #[test]
    fn releasing_keeps_the_process_working() {
        // The test binary's own code is let go of and faults back in.
        let released = release();
        assert!(released.mappings > 0, "{released:?}");
        assert!(released.mapped > 0, "{released:?}");
        // Code and read-only data that were let go of still read the same.
        let again = clean_file_mappings(parse(SMAPS));
        assert_eq!(again.len(), 2);
    }
}
