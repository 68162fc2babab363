//! `TrackError::NoHeapBlock` for every value whose contents take 0 bytes; the error's
//! `Display` and `std::error::Error`; `is_installed()` is true in this binary.

use leaktracker::{
    is_installed, stats, track_resource, LeakTracker, TrackError, TrackingAllocator,
};
use std::error::Error;
use std::hint::black_box;
use std::rc::Rc;
use std::sync::Arc;

#[global_allocator]
static ALLOC: TrackingAllocator = TrackingAllocator::system();

#[derive(Debug)]
struct Zst;

#[test]
fn main() {
    assert!(is_installed());
    let tracker = LeakTracker::new();
    let base = stats();
    let no = Err(TrackError::NoHeapBlock);

    assert_eq!(tracker.track(&Vec::<u8>::new(), "a", "k"), no);
    assert_eq!(tracker.track(&Vec::<u64>::with_capacity(0), "a", "k"), no);
    assert_eq!(tracker.track(&String::new(), "a", "k"), no);
    assert_eq!(
        tracker.track(&Vec::<u8>::new().into_boxed_slice(), "a", "k"),
        no
    );
    let empty_str: Box<str> = String::new().into_boxed_str();
    assert_eq!(tracker.track(&empty_str, "a", "k"), no);
    assert_eq!(tracker.track(&vec![(); 1000], "a", "k"), no);
    assert_eq!(tracker.track(&Vec::<Zst>::with_capacity(50), "a", "k"), no);
    assert_eq!(tracker.track(&Box::new(()), "a", "k"), no);
    assert_eq!(tracker.track(&Box::new(Zst), "a", "k"), no);
    assert_eq!(tracker.track(&Box::new([0u64; 0]), "a", "k"), no);
    assert_eq!(
        tracker.track(&vec![Zst, Zst].into_boxed_slice(), "a", "k"),
        no
    );
    let dyn_zst: Box<dyn std::fmt::Debug> = Box::new(Zst);
    assert_eq!(tracker.track(&dyn_zst, "a", "k"), no);
    assert_eq!(tracker.track(&Rc::<[u8]>::from(Vec::new()), "a", "k"), no);
    assert_eq!(tracker.track(&Arc::<str>::default(), "a", "k"), no);
    assert_eq!(track_resource(&String::new(), "a", "k"), no);
    // A String emptied but with capacity does have a block.
    let mut s = String::from("x");
    s.clear();
    assert_eq!(tracker.track(&s, "emptied", "k"), Ok(()));
    assert!(tracker.untrack(&s));

    // Nothing was recorded or created; untrack of such values is false.
    assert!(tracker.live().is_empty());
    assert!(LeakTracker::global().live().is_empty());
    assert_eq!(stats().records, base.records);
    assert!(!tracker.untrack(&Vec::<u8>::new()));
    assert!(!tracker.untrack(&Box::new(Zst)));

    // The error value.
    let err = tracker.track(&String::new(), "a", "k").unwrap_err();
    assert_eq!(err, TrackError::NoHeapBlock);
    assert_ne!(err, TrackError::NotInstalled);
    let text = err.to_string();
    assert!(text.contains("no heap block"), "{text}");
    assert_ne!(text, TrackError::NotInstalled.to_string());
    assert_eq!(format!("{err:?}"), "NoHeapBlock");
    let boxed: Box<dyn Error + Send + Sync + 'static> = err.into();
    assert_eq!(boxed.to_string(), text);
    assert!(boxed.source().is_none());
    assert_eq!(
        boxed.downcast_ref::<TrackError>(),
        Some(&TrackError::NoHeapBlock)
    );
    black_box(s);
}
