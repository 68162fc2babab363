//! Address space at start-up: a program that links leaktracker and installs its allocator
//! needs about as much address space as a plain Rust program (the record filters are
//! mapped on the first tagged block, not reserved in `.bss`), and when the filter cannot be
//! mapped, tagging runs untracked with one warning line instead of crashing.
//!
//! Each program runs as a child under `RLIMIT_AS` (set with `setrlimit` between fork and
//! exec, as `ulimit -v` does). The limits are found by bisection against a plain program
//! built by the same `rustc`, so the test does not depend on this machine's libc.

mod common;
use common::*;

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Output;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

/// The program with leaktracker's allocator: `plain` does ordinary work; `tagged` also
/// tags 1,000 blocks in scopes and prints what was recorded.
const WITH_TRACKER: &str = r#"
use std::hint::black_box;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let words: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
    black_box(&words);
    match mode.as_str() {
        "plain" => println!("ok {}", words.len()),
        "tagged" => {
            let t = leaktracker::LeakTracker::new();
            let mut kept = Vec::with_capacity(1000);
            for i in 0..1000u32 {
                let _s = t.scope("request", "http");
                kept.push(black_box(vec![(i % 251) as u8; 64]));
            }
            // Every block is served and usable, recorded or not.
            let sum: u64 = kept.iter().map(|v| u64::from(v[63])).sum();
            let st = leaktracker::stats();
            println!(
                "ok sum={sum} records={} dropped={} live={}",
                st.records,
                st.dropped_records,
                t.live().len()
            );
        }
        other => panic!("unknown mode {other}"),
    }
}
"#;

/// The same ordinary work without leaktracker (rustc does not link an unused crate).
const PLAIN: &str = r#"
use std::hint::black_box;

fn main() {
    let words: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
    black_box(&words);
    println!("ok {}", words.len());
}
"#;

const MIB: u64 = 1 << 20;

/// Runs `exe mode` with its address space limited to `limit` bytes.
fn run_limited(exe: &Path, mode: &str, limit: u64) -> Output {
    let mut c = command(exe, &[]);
    c.arg(mode);
    // SAFETY: the closure runs between fork and exec and only calls setrlimit, which is
    // async-signal-safe; it allocates nothing.
    unsafe {
        c.pre_exec(move || {
            let r = libc::rlimit {
                rlim_cur: limit as libc::rlim_t,
                rlim_max: limit as libc::rlim_t,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &r) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    c.output().unwrap()
}

fn ran_ok(o: &Output) -> bool {
    o.status.success() && String::from_utf8_lossy(&o.stdout).starts_with("ok ")
}

/// The bytes the loader maps from `exe`'s file (its `PT_LOAD` segments; `.bss` not
/// counted, so a table reserved there would show).
fn loaded_size(exe: &Path) -> u64 {
    use object::read::elf::{ElfFile64, ProgramHeader};
    let data = std::fs::read(exe).expect("read the fixture");
    let elf = ElfFile64::<object::Endianness>::parse(&*data).expect("an ELF file");
    let endian = elf.endian();
    elf.elf_program_headers()
        .iter()
        .filter(|ph| ph.p_type(endian) == object::elf::PT_LOAD)
        .map(|ph| ph.p_filesz(endian))
        .sum()
}

/// The smallest limit, to 64 KiB, at which `exe mode` runs to completion.
fn min_limit(exe: &Path, mode: &str) -> u64 {
    let (mut lo, mut hi) = (MIB, 256 * MIB);
    assert!(
        ran_ok(&run_limited(exe, mode, hi)),
        "{mode} fails at 256 MiB"
    );
    while hi - lo > 64 << 10 {
        let mid = (lo + hi) / 2;
        if ran_ok(&run_limited(exe, mode, mid)) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    hi
}

#[test]
fn main() {
    let tracked = build_fixture("lazy_filter_tracked", WITH_TRACKER);
    let plain = build_fixture("lazy_filter_plain", PLAIN);

    // 1. Untagged: as little address space as a plain program, give or take the code
    //    leaktracker adds to the binary (4-5 MiB in this unoptimised build: report, JSON,
    //    DWARF and symbol reading), not 16 MiB of filters more.
    let plain_min = min_limit(&plain, "plain");
    let tracked_min = min_limit(&tracked, "plain");
    let code = loaded_size(&tracked).saturating_sub(loaded_size(&plain));
    eprintln!(
        "minimum RLIMIT_AS: plain {} KiB, with leaktracker {} KiB; leaktracker's code and \
         data mapped from the binary: {} KiB",
        plain_min >> 10,
        tracked_min >> 10,
        code >> 10
    );
    assert!(
        tracked_min <= plain_min + code + 2 * MIB,
        "with leaktracker the program needs {} KiB of address space, a plain one {} KiB \
         (the binary maps {} KiB more)",
        tracked_min >> 10,
        plain_min >> 10,
        code >> 10
    );
    assert!(tracked_min <= 12 * MIB, "needs {} KiB", tracked_min >> 10);

    // 2. Without a limit, tagging records every block and says nothing.
    let o = run_limited(&tracked, "tagged", 1 << 40);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert!(
        out.contains("records=1000 dropped=0 live=1000"),
        "{out}\n{err}"
    );
    assert!(!err.contains("leaktracker:"), "{err}");

    // 3. Room for the program but not for the 8 MiB filter: the program runs to the end,
    //    its blocks untracked and counted as dropped, with one warning line.
    let tight = tracked_min + 4 * MIB;
    let o = run_limited(&tracked, "tagged", tight);
    let (out, err) = text(&o);
    assert!(
        o.status.success(),
        "under {} KiB: {:?}\n{out}\n{err}",
        tight >> 10,
        o.status
    );
    let sum: u64 = (0..1000u64).map(|i| i % 251).sum();
    assert!(
        out.contains(&format!("ok sum={sum} records=0 dropped=1000 live=0")),
        "{out}\n{err}"
    );
    let warnings: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("leaktracker:"))
        .collect();
    assert_eq!(warnings.len(), 1, "{err}");
    assert!(
        warnings[0].contains("cannot map 8 MiB for the record filter")
            && warnings[0].contains("untracked"),
        "{err}"
    );
}
