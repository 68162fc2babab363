//! `LeakReport::from_json` fails with an error type of the crate's own: it implements
//! `std::error::Error` (and is `Send + Sync + 'static`), says what kind of text it was
//! given and where reading stopped, keeps the JSON decoder's message (the old `Display`),
//! and hands over the decoder's error on request.

use leaktracker::report::{ParseReportError, ReportErrorKind};
use leaktracker::LeakReport;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

fn is_error<E: std::error::Error + Send + Sync + 'static>(_: &E) {}

fn err(json: &str) -> ParseReportError {
    LeakReport::from_json(json).unwrap_err()
}

#[test]
fn main() {
    let e = err("{\"version\": 1}");
    is_error(&e);
    assert_eq!(e.kind(), ReportErrorKind::NotAReport);
    assert_eq!((e.line(), e.column()), (1, 14));
    assert_eq!(e.to_string(), "missing field `pid` at line 1 column 14");
    // The decoder's own error, as before.
    let inner = e.get_ref().downcast_ref::<serde_json::Error>().unwrap();
    assert_eq!(inner.to_string(), e.to_string());
    assert!(inner.is_data());

    let e = err("[]");
    assert_eq!(e.kind(), ReportErrorKind::NotAReport);

    let e = err("{\"version\": 1, \"pid\": ");
    assert_eq!(e.kind(), ReportErrorKind::Truncated);
    assert!(e.to_string().starts_with("EOF while parsing"), "{e}");

    let e = err("{\n  \"version\": 1,\n  oops\n}");
    assert_eq!(e.kind(), ReportErrorKind::Syntax);
    assert_eq!(e.line(), 3);
    let boxed = e.into_inner();
    assert!(boxed.downcast::<serde_json::Error>().unwrap().is_syntax());

    // As a boxed error, with `?`.
    fn read(json: &str) -> Result<LeakReport, Box<dyn std::error::Error + Send + Sync>> {
        Ok(LeakReport::from_json(json)?)
    }
    assert!(read("nope").is_err());
}
