//! Without a `TrackingAllocator` as the global allocator (this binary has none):
//! `is_installed()` is false and `track` fails with `TrackError::NotInstalled`; nothing
//! else breaks.

use leaktracker::{is_installed, track_resource, untrack_resource, LeakTracker, TrackError};
use std::error::Error;
use std::hint::black_box;

#[test]
fn main() {
    assert!(!is_installed());
    assert!(!is_installed()); // cached answer, same

    let tracker = LeakTracker::new();
    let v = black_box(vec![1u8; 64]);
    assert_eq!(tracker.track(&v, "v", "k"), Err(TrackError::NotInstalled));
    assert_eq!(track_resource(&v, "v", "k"), Err(TrackError::NotInstalled));
    // NotInstalled comes first, even for a value without a heap block.
    assert_eq!(
        tracker.track(&Vec::<u8>::new(), "e", "k"),
        Err(TrackError::NotInstalled)
    );
    assert!(!tracker.untrack(&v));
    assert!(!untrack_resource(&v));
    assert!(tracker.live().is_empty());

    // A scope opens and closes; nothing is recorded.
    {
        let _g = tracker.scope("s", "k");
        let b = black_box(Box::new([0u8; 100]));
        assert!(tracker.live().is_empty());
        drop(b);
    }
    tracker.clear();
    assert!(LeakTracker::global().live().is_empty());
    assert_eq!(leaktracker::stats().records, 0);

    // The error: Display names the fix, Debug the variant, and it is a std error.
    let err = tracker.track(&v, "v", "k").unwrap_err();
    let text = err.to_string();
    assert!(text.contains("no TrackingAllocator"), "{text}");
    assert!(text.contains("#[global_allocator]"), "{text}");
    assert_eq!(format!("{err:?}"), "NotInstalled");
    let boxed: Box<dyn Error + Send + Sync> = Box::new(err);
    assert_eq!(boxed.to_string(), text);
    assert!(boxed.source().is_none());
    let via_q = || -> Result<(), Box<dyn Error>> {
        tracker.track(&v, "v", "k")?;
        Ok(())
    };
    assert_eq!(via_q().unwrap_err().to_string(), text);
}
