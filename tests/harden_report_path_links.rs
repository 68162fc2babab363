//! A report path that is a symbolic link is followed to its target: the target gets the
//! report, the link stays. Relative links, chains of links and links to nothing (the
//! target is created) work; the format is the one the link's name asks for; a loop of
//! links gets one warning line and the report on stderr. A regular file is still replaced
//! whole, with no temporary file left.

mod common;
use common::*;
use std::hint::black_box;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::Path;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

fn report_to(path: &Path) -> std::process::Output {
    let o = run_self("leak", &[("LEAKTRACKER_REPORT", path.to_str().unwrap())]);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    o
}

fn assert_link(link: &Path, target: &str) {
    let m = std::fs::symlink_metadata(link).unwrap();
    assert!(
        m.file_type().is_symlink(),
        "{} was replaced",
        link.display()
    );
    assert_eq!(std::fs::read_link(link).unwrap(), Path::new(target));
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn main() {
    if role().as_deref() == Some("leak") {
        let v = black_box(vec![7u8; 100]);
        leaktracker::track_resource(&v, "connection-1", "database").unwrap();
        std::mem::forget(v);
        return;
    }
    let dir = temp_dir("harden_report_path_links");
    let links = dir.join("links");
    let store = dir.join("store");
    std::fs::create_dir_all(&links).unwrap();
    std::fs::create_dir_all(&store).unwrap();

    // A relative link to an existing file in another directory.
    std::fs::write(store.join("kept.json"), "old contents").unwrap();
    let rel = links.join("rel.json");
    symlink("../store/kept.json", &rel).unwrap();
    let o = report_to(&rel);
    assert_eq!(text(&o).1, "");
    assert_link(&rel, "../store/kept.json");
    let j = read_json(&store.join("kept.json"));
    assert_eq!(j["leaks"][0]["name"], "connection-1");

    // A chain of two links (absolute, then relative) to a file of another extension: the
    // first name's `.json` decides the format.
    let abs_target = store.join("chain-target.txt");
    symlink("chain-target.txt", store.join("second")).unwrap();
    let first = links.join("chain.json");
    symlink(store.join("second"), &first).unwrap();
    let o = report_to(&first);
    assert_eq!(text(&o).1, "");
    assert_link(&first, store.join("second").to_str().unwrap());
    assert_link(&store.join("second"), "chain-target.txt");
    let j = read_json(&abs_target);
    assert_eq!(j["leaks"][0]["bytes"], 100);

    // A link to nothing: the target is created (text, by the link's name).
    let dangling = links.join("dangling.txt");
    symlink("../store/created-by-report", &dangling).unwrap();
    let o = report_to(&dangling);
    assert_eq!(text(&o).1, "");
    assert_link(&dangling, "../store/created-by-report");
    let t = std::fs::read_to_string(store.join("created-by-report")).unwrap();
    assert!(t.starts_with("leaktracker report (pid "), "{t}");
    assert!(t.contains("connection-1"), "{t}");

    // A loop: one warning line, the report on stderr, the link stays.
    let looped = links.join("loop.json");
    symlink("loop.json", &looped).unwrap();
    let o = report_to(&looped);
    let (_, err) = text(&o);
    let first_line = err.lines().next().unwrap_or_default();
    assert!(
        first_line.starts_with(&format!(
            "leaktracker: cannot write the leak report to {}: more than 40 symbolic links",
            looped.display()
        )),
        "{err}"
    );
    assert!(err.contains("connection-1"), "{err}");
    assert_eq!(err.matches("leaktracker: ").count(), 1, "{err}");
    assert_link(&looped, "loop.json");

    // A regular file is replaced whole (a new file), and no temporary file is left.
    let plain = links.join("plain.json");
    std::fs::write(&plain, "old").unwrap();
    let ino = std::fs::metadata(&plain).unwrap().ino();
    let o = report_to(&plain);
    assert_eq!(text(&o).1, "");
    assert_ne!(std::fs::metadata(&plain).unwrap().ino(), ino);
    assert_eq!(read_json(&plain)["leaks"][0]["name"], "connection-1");
    assert_eq!(
        names(&links),
        [
            "chain.json",
            "dangling.txt",
            "loop.json",
            "plain.json",
            "rel.json"
        ]
    );
    assert_eq!(
        names(&store),
        [
            "chain-target.txt",
            "created-by-report",
            "kept.json",
            "second"
        ]
    );
}
