//! Readable units for sizes and ages.

use std::fmt;
use std::time::Duration;

/// A byte count shown as `512 B`, `1.5 KiB`, `3.2 MiB`, `1.0 GiB`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bytes(pub(crate) usize);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
        let n = self.0;
        if n < 1024 {
            return write!(f, "{n} B");
        }
        let mut v = n as f64 / 1024.0;
        let mut unit = 0;
        while v >= 1024.0 && unit + 1 < UNITS.len() {
            v /= 1024.0;
            unit += 1;
        }
        write!(f, "{v:.1} {}", UNITS[unit])
    }
}

/// An age shown as `350ms`, `4.2s`, `3m 12s`, `2h 5m`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Age(pub(crate) Duration);

impl fmt::Display for Age {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        let secs = d.as_secs();
        if secs == 0 {
            write!(f, "{}ms", d.as_millis())
        } else if secs < 60 {
            write!(f, "{:.1}s", d.as_secs_f64())
        } else if secs < 3600 {
            write!(f, "{}m {}s", secs / 60, secs % 60)
        } else {
            write!(f, "{}h {}m", secs / 3600, (secs % 3600) / 60)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes() {
        assert_eq!(Bytes(0).to_string(), "0 B");
        assert_eq!(Bytes(1023).to_string(), "1023 B");
        assert_eq!(Bytes(1536).to_string(), "1.5 KiB");
        assert_eq!(Bytes(3 * 1024 * 1024).to_string(), "3.0 MiB");
        assert_eq!(Bytes(usize::MAX).to_string(), "16.0 EiB");
    }

    #[test]
    fn ages() {
        assert_eq!(Age(Duration::from_millis(350)).to_string(), "350ms");
        assert_eq!(Age(Duration::from_millis(4200)).to_string(), "4.2s");
        assert_eq!(Age(Duration::from_secs(192)).to_string(), "3m 12s");
        assert_eq!(Age(Duration::from_secs(7500)).to_string(), "2h 5m");
    }
}
