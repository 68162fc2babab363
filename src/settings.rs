//! The spellings of setting values, with their types: each type parses its spelling
//! (`FromStr`) and, where a value is written back, prints it (`Display`).
//!
//! The exit report's configuration, reports and live reports all read these, and import
//! this module rather than one another for them. Every parser is total: any input gives
//! a value or [`BadValue`], never a panic.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::stack::{Backtraces, Unwinder};

/// A value that is not a setting's spelling (the warning that says so names the
/// variable, so the error carries nothing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BadValue;

/// The comma-separated items of a list value, trimmed; empty items are skipped.
pub(crate) fn items(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').map(str::trim).filter(|i| !i.is_empty())
}

/// A duration as `LEAKTRACKER_MIN_AGE` spells it: `0`, `250ms`, `5s`, `2m`, `1h` (a whole
/// number and a unit, blanks around them allowed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct EnvDuration(pub(crate) Duration);

impl FromStr for EnvDuration {
    type Err = BadValue;

    fn from_str(s: &str) -> Result<EnvDuration, BadValue> {
        let s = s.trim();
        if s == "0" {
            return Ok(EnvDuration(Duration::ZERO));
        }
        let digits = s.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(BadValue);
        }
        let n: u64 = s[..digits].parse().map_err(|_| BadValue)?;
        let ms_per = match &s[digits..] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            _ => return Err(BadValue),
        };
        n.checked_mul(ms_per)
            .map(|ms| EnvDuration(Duration::from_millis(ms)))
            .ok_or(BadValue)
    }
}

/// A backtrace setting as `LEAKTRACKER_BACKTRACE` spells it: `0`, `1`, `sample:N` (N ≥ 1;
/// `sample:1` is `1`). Reports write it back the same way (`"backtraces": "sample:10"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BacktraceSetting(pub(crate) Backtraces);

impl FromStr for BacktraceSetting {
    type Err = BadValue;

    fn from_str(s: &str) -> Result<BacktraceSetting, BadValue> {
        let mode = match s.trim() {
            "0" => Backtraces::Off,
            "1" => Backtraces::All,
            other => {
                let n: u32 = other
                    .strip_prefix("sample:")
                    .ok_or(BadValue)?
                    .parse()
                    .map_err(|_| BadValue)?;
                match n {
                    0 => return Err(BadValue),
                    1 => Backtraces::All,
                    n => Backtraces::Sample(n),
                }
            }
        };
        Ok(BacktraceSetting(mode))
    }
}

impl fmt::Display for BacktraceSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Backtraces::Off => f.write_str("0"),
            Backtraces::All => f.write_str("1"),
            Backtraces::Sample(n) => write!(f, "sample:{n}"),
        }
    }
}

/// An unwinder as `LEAKTRACKER_UNWIND` spells it: `tables`, `system`, `frame-pointers`
/// (or `fp`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct UnwinderSetting(pub(crate) Unwinder);

impl FromStr for UnwinderSetting {
    type Err = BadValue;

    fn from_str(s: &str) -> Result<UnwinderSetting, BadValue> {
        match s.trim() {
            "system" => Ok(UnwinderSetting(Unwinder::System)),
            "tables" => Ok(UnwinderSetting(Unwinder::Tables)),
            "frame-pointers" | "fp" => Ok(UnwinderSetting(Unwinder::FramePointers)),
            _ => Err(BadValue),
        }
    }
}

/// An exit code as `LEAKTRACKER_EXIT_CODE` spells it: `1` to `255` (`0` is refused: it
/// would not tell a leak from success).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LeakExitCode(pub(crate) u8);

impl FromStr for LeakExitCode {
    type Err = BadValue;

    fn from_str(s: &str) -> Result<LeakExitCode, BadValue> {
        match s.trim().parse::<u8>() {
            Ok(0) | Err(_) => Err(BadValue),
            Ok(n) => Ok(LeakExitCode(n)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn duration(s: &str) -> Option<Duration> {
        s.parse::<EnvDuration>().ok().map(|d| d.0)
    }

    fn backtraces(s: &str) -> Option<Backtraces> {
        s.parse::<BacktraceSetting>().ok().map(|b| b.0)
    }

    fn unwinder(s: &str) -> Option<Unwinder> {
        s.parse::<UnwinderSetting>().ok().map(|u| u.0)
    }

    fn exit_code(s: &str) -> Option<u8> {
        s.parse::<LeakExitCode>().ok().map(|c| c.0)
    }

    #[test]
    fn durations() {
        assert_eq!(duration("0"), Some(Duration::ZERO));
        assert_eq!(duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(duration("5s"), Some(Duration::from_secs(5)));
        assert_eq!(duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(duration(" 1h "), Some(Duration::from_secs(3600)));
        for bad in [
            "",
            "5",
            "s",
            "5x",
            "-5s",
            "5 s",
            "1.5s",
            "ms",
            "99999999999999999999s",
            "18446744073709551615h",
            "５s",
        ] {
            assert_eq!(duration(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn exit_codes_and_backtraces() {
        assert_eq!(exit_code("1"), Some(1));
        assert_eq!(exit_code("255"), Some(255));
        for bad in ["0", "256", "-1", "", "x", "1.0"] {
            assert_eq!(exit_code(bad), None, "{bad:?}");
        }
        assert_eq!(backtraces("0"), Some(Backtraces::Off));
        assert_eq!(backtraces("1"), Some(Backtraces::All));
        assert_eq!(backtraces("sample:1"), Some(Backtraces::All));
        assert_eq!(backtraces("sample:10"), Some(Backtraces::Sample(10)));
        for bad in [
            "",
            "2",
            "yes",
            "sample:",
            "sample:0",
            "sample:-3",
            "sample:x",
        ] {
            assert_eq!(backtraces(bad), None, "{bad:?}");
        }
        assert_eq!(
            BacktraceSetting(Backtraces::Sample(10)).to_string(),
            "sample:10"
        );
        assert_eq!(BacktraceSetting(Backtraces::All).to_string(), "1");
        assert_eq!(BacktraceSetting(Backtraces::Off).to_string(), "0");
        assert_eq!(unwinder("system"), Some(Unwinder::System));
        assert_eq!(unwinder("tables"), Some(Unwinder::Tables));
        assert_eq!(unwinder(" frame-pointers "), Some(Unwinder::FramePointers));
        assert_eq!(unwinder("fp"), Some(Unwinder::FramePointers));
        for bad in ["", "dwarf", "System", "frame pointers"] {
            assert_eq!(unwinder(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn list_items() {
        let got: Vec<&str> = items(" a, ,b ,,c").collect();
        assert_eq!(got, ["a", "b", "c"]);
        assert_eq!(items(" , ").count(), 0);
    }

    proptest::proptest! {
        #[test]
        fn backtrace_settings_read_back(n in 2u32..) {
            let mode = Backtraces::Sample(n);
            proptest::prop_assert_eq!(backtraces(&BacktraceSetting(mode).to_string()), Some(mode));
        }

        #[test]
        fn durations_in_every_unit(n in 0u64..1_000_000, unit in 0usize..4) {
            let (suffix, ms_per) = [("ms", 1), ("s", 1_000), ("m", 60_000), ("h", 3_600_000)][unit];
            proptest::prop_assert_eq!(
                duration(&format!("{n}{suffix}")),
                Some(Duration::from_millis(n * ms_per))
            );
        }
    }
}
