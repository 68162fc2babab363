//! The `LEAKTRACKER_*` variables as one table, walked once by
//! [`ExitReport::from_env`](super::ExitReport::from_env): each entry names a variable,
//! parses its value and applies it, and says what a bad value's warning line ends with.

use std::ffi::{OsStr, OsString};

use super::{quoted, quoted_items, ExitReport, Target};
use crate::live::{parse_interval, parse_keep, parse_labels, parse_report_on, parse_signal};
use crate::report::IgnorePattern;
use crate::settings::{items, BacktraceSetting, EnvDuration, LeakExitCode, UnwinderSetting};
use crate::stack::Backtraces;

/// How a variable's value is parsed and applied. Each function applies what it can and
/// says what was bad; [`Setting::apply`] writes the warning.
#[derive(Clone, Copy)]
pub(super) enum Rule {
    /// The value as the OS gives it (a path need not be UTF-8); `false`: one warning,
    /// `NAME <expected>`.
    Raw(fn(&mut ExitReport, &OsStr) -> bool),
    /// One value; `false`: one warning, `NAME="value" <expected>`.
    One(fn(&mut ExitReport, &str) -> bool),
    /// A comma-separated list, applied whole; returns the bad items, named together in
    /// one warning, `NAME: "a", "b" <expected>`.
    List(fn(&mut ExitReport, &str) -> Vec<String>),
    /// A comma-separated list, applied item by item; `false`: one warning for that item,
    /// `NAME: "a" <expected>`.
    Each(fn(&mut ExitReport, &str) -> bool),
}

/// One environment variable.
pub(super) struct Setting {
    pub(super) name: &'static str,
    pub(super) rule: Rule,
    /// How a bad value's warning ends: what was expected, and what is used instead.
    pub(super) expected: &'static str,
}

/// Every variable [`ExitReport::from_env`] reads, in the order they are read (and their
/// warnings written).
pub(super) const SETTINGS: &[Setting] = &[
    Setting {
        name: "LEAKTRACKER_REPORT",
        rule: Rule::Raw(|c, v| {
            if v.is_empty() {
                return false;
            }
            c.target = Some(if v == "stderr" {
                Target::Stderr
            } else if v == "stdout" {
                // Written in place, as any `/dev/stdout` report is (not a file named
                // `stdout` in the working directory).
                Target::File("/dev/stdout".into())
            } else {
                Target::File(v.to_owned())
            });
            true
        }),
        expected: "is empty (expected `stderr`, `stdout` or a file path); no exit report",
    },
    Setting {
        name: "LEAKTRACKER_MIN_AGE",
        rule: Rule::One(|c, s| s.parse().map(|EnvDuration(d)| c.min_age = d).is_ok()),
        expected: "is not a duration (0, 250ms, 5s, 2m, 1h); using 0",
    },
    Setting {
        name: "LEAKTRACKER_EXIT_CODE",
        rule: Rule::One(|c, s| {
            s.parse()
                .map(|LeakExitCode(n)| c.exit_code = Some(n))
                .is_ok()
        }),
        expected: "is not an exit code from 1 to 255; leaks will not change the exit status",
    },
    Setting {
        name: "LEAKTRACKER_IGNORE",
        rule: Rule::List(|c, s| {
            let (good, bad) = parse_allow_list(s);
            c.ignore = good;
            bad
        }),
        expected: "not `kind:GLOB` or `name:GLOB`; ignored",
    },
    Setting {
        name: "LEAKTRACKER_BACKTRACE",
        rule: Rule::One(|c, s| {
            s.parse()
                .map(|BacktraceSetting(m)| c.backtraces = Some(m))
                .is_ok()
        }),
        expected: "is not 0, 1 or sample:N; no backtraces",
    },
    Setting {
        name: "LEAKTRACKER_UNWIND",
        rule: Rule::One(|c, s| {
            s.parse()
                .map(|UnwinderSetting(u)| c.unwinder = Some(u))
                .is_ok()
        }),
        expected: "is not `tables`, `system` or `frame-pointers`; using tables",
    },
    Setting {
        name: "LEAKTRACKER_VERDICT",
        rule: Rule::Each(|c, item| {
            if item == "show-all" {
                c.show_all = true;
                return true;
            }
            item.parse().map(|v| c.verdict = v).is_ok()
        }),
        expected: "is not `default`, `strict` or `show-all`; using default",
    },
    Setting {
        name: "LEAKTRACKER_MAX_RECORDS",
        rule: Rule::One(|c, s| s.trim().parse().map(|n| c.max_records = Some(n)).is_ok()),
        expected: "is not a number of records; no cap",
    },
    Setting {
        name: "LEAKTRACKER_SIGNAL",
        rule: Rule::One(|c, s| parse_signal(s).map(|sig| c.snapshot_signal = Some(sig)).is_some()),
        expected: "is not a signal a report can be asked with (USR1, USR2, HUP, …); no snapshots on a signal",
    },
    Setting {
        name: "LEAKTRACKER_INTERVAL",
        rule: Rule::One(|c, s| parse_interval(s).map(|d| c.interval = Some(d)).is_some()),
        expected: "is not a duration above 0 (500ms, 60s, 5m, 1h); no interval snapshots",
    },
    Setting {
        name: "LEAKTRACKER_KEEP",
        rule: Rule::One(|c, s| parse_keep(s).map(|n| c.keep = Some(n)).is_some()),
        expected: "is not a number of files from 1 up; every snapshot file stays",
    },
    Setting {
        name: "LEAKTRACKER_LABELS",
        rule: Rule::List(|c, s| {
            let (good, bad) = parse_labels(s);
            c.labels = Some(good);
            bad
        }),
        expected: "not `key=value`; ignored",
    },
    Setting {
        name: "LEAKTRACKER_REPORT_ON",
        rule: Rule::List(|c, s| {
            let (good, bad) = parse_report_on(s);
            c.report_on = good;
            bad
        }),
        expected: "not `term`, `int` or `hup`; ignored",
    },
];

impl Setting {
    /// Applies the value `v` of this variable to `cfg`; `warn` gets one line (without the
    /// `leaktracker: ` prefix) for each bad part.
    pub(super) fn apply(&self, cfg: &mut ExitReport, v: &OsStr, warn: &mut dyn FnMut(String)) {
        let (name, expected) = (self.name, self.expected);
        if let Rule::Raw(apply) = self.rule {
            if !apply(cfg, v) {
                warn(format!("{name} {expected}"));
            }
            return;
        }
        let Some(s) = v.to_str() else {
            warn(format!("{name} is not valid UTF-8; ignored"));
            return;
        };
        match self.rule {
            Rule::Raw(_) => {}
            Rule::One(apply) => {
                if !apply(cfg, s) {
                    warn(format!("{name}={} {expected}", quoted(s)));
                }
            }
            Rule::List(apply) => {
                let bad = apply(cfg, s);
                if !bad.is_empty() {
                    warn(format!("{name}: {} {expected}", quoted_items(&bad)));
                }
            }
            Rule::Each(apply) => {
                for item in items(s) {
                    if !apply(cfg, item) {
                        warn(format!("{name}: {} {expected}", quoted(item)));
                    }
                }
            }
        }
    }
}

/// The configuration the variables `get` gives say; `warn` gets one line for each bad
/// value (and one when snapshots have no path), in the order of [`SETTINGS`].
pub(super) fn from_vars(
    get: impl Fn(&str) -> Option<OsString>,
    warn: &mut dyn FnMut(String),
) -> ExitReport {
    let mut cfg = ExitReport::new();
    for setting in SETTINGS {
        if let Some(v) = get(setting.name) {
            setting.apply(&mut cfg, &v, warn);
        }
    }
    // The verdict tells one-time initialisation from per-unit retention by allocation
    // site: a report or gate without a backtrace setting gets stacks.
    if get("LEAKTRACKER_BACKTRACE").is_none() && (cfg.target.is_some() || cfg.exit_code.is_some()) {
        cfg.backtraces = Some(Backtraces::All);
        cfg.stacks_for_verdict = true;
    }
    if (cfg.snapshot_signal.is_some() || cfg.interval.is_some()) && cfg.target.is_none() {
        warn("LEAKTRACKER_SIGNAL and LEAKTRACKER_INTERVAL write to LEAKTRACKER_REPORT's path, which is not set; snapshots go to stderr".to_string());
    }
    cfg
}

/// Parses a comma-separated allow-list; empty items are skipped. Returns the good
/// patterns and the bad items.
pub(super) fn parse_allow_list(s: &str) -> (Vec<IgnorePattern>, Vec<String>) {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for item in items(s) {
        match item.parse() {
            Ok(p) => good.push(p),
            Err(_) => bad.push(item.to_string()),
        }
    }
    (good, bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// One bad value for every variable (the test fails when one is missing).
    const BAD: &[(&str, &str)] = &[
        ("LEAKTRACKER_REPORT", ""),
        ("LEAKTRACKER_MIN_AGE", "5 minutes"),
        ("LEAKTRACKER_EXIT_CODE", "300"),
        ("LEAKTRACKER_IGNORE", "kind:cache,cache"),
        ("LEAKTRACKER_BACKTRACE", "yes"),
        ("LEAKTRACKER_UNWIND", "dwarf"),
        ("LEAKTRACKER_VERDICT", "lenient"),
        ("LEAKTRACKER_MAX_RECORDS", "-1"),
        ("LEAKTRACKER_SIGNAL", "KILL"),
        ("LEAKTRACKER_INTERVAL", "0"),
        ("LEAKTRACKER_KEEP", "0"),
        ("LEAKTRACKER_LABELS", "service"),
        ("LEAKTRACKER_REPORT_ON", "usr1"),
    ];

    /// One good value for every variable, which changes the configuration.
    const GOOD: &[(&str, &str)] = &[
        ("LEAKTRACKER_REPORT", "leaks-%p.json"),
        ("LEAKTRACKER_MIN_AGE", "250ms"),
        ("LEAKTRACKER_EXIT_CODE", "3"),
        ("LEAKTRACKER_IGNORE", "kind:cache"),
        ("LEAKTRACKER_BACKTRACE", "sample:5"),
        ("LEAKTRACKER_UNWIND", "fp"),
        ("LEAKTRACKER_VERDICT", "strict,show-all"),
        ("LEAKTRACKER_MAX_RECORDS", "100"),
        ("LEAKTRACKER_SIGNAL", "USR2"),
        ("LEAKTRACKER_INTERVAL", "60s"),
        ("LEAKTRACKER_KEEP", "5"),
        ("LEAKTRACKER_LABELS", "service=api"),
        ("LEAKTRACKER_REPORT_ON", "term"),
    ];

    /// The configuration and the warnings of these variables (nothing else is set).
    fn read(vars: &[(&str, &[u8])]) -> (ExitReport, Vec<String>) {
        use std::os::unix::ffi::OsStrExt;
        let map: HashMap<&str, OsString> = vars
            .iter()
            .map(|&(k, v)| (k, OsStr::from_bytes(v).to_owned()))
            .collect();
        let mut warnings = Vec::new();
        let cfg = from_vars(|name| map.get(name).cloned(), &mut |w| warnings.push(w));
        (cfg, warnings)
    }

    fn names(examples: &[(&'static str, &str)]) -> Vec<&'static str> {
        examples.iter().map(|&(n, _)| n).collect()
    }

    #[test]
    fn names_are_unique_and_prefixed() {
        let table: Vec<&str> = SETTINGS.iter().map(|s| s.name).collect();
        for (i, name) in table.iter().enumerate() {
            assert!(name.starts_with("LEAKTRACKER_"), "{name}");
            assert!(!table[..i].contains(name), "{name} twice");
        }
        // Every variable is documented, on `ExitReport`.
        let doc = include_str!("../exit.rs");
        for name in &table {
            assert!(doc.contains(&format!("/// | `{name}` |")), "{name}");
        }
        // Every variable has its examples, in the table's order.
        assert_eq!(names(BAD), table);
        assert_eq!(names(GOOD), table);
    }

    #[test]
    fn each_bad_value_gives_one_warning_naming_it() {
        for &(name, bad) in BAD {
            let (_, warnings) = read(&[(name, bad.as_bytes())]);
            assert_eq!(warnings.len(), 1, "{name}={bad:?}: {warnings:?}");
            let w = &warnings[0];
            let rest = w.strip_prefix(name).unwrap_or_else(|| panic!("{w}"));
            assert!(
                rest.starts_with(['=', ':', ' ']),
                "{w} does not name {name}"
            );
            assert!(!w.contains('\n'), "{w:?}");
        }
    }

    #[test]
    fn bad_values_warn_in_table_order_with_the_documented_texts() {
        let vars: Vec<(&str, &[u8])> = BAD.iter().map(|&(n, v)| (n, v.as_bytes())).collect();
        let (_, warnings) = read(&vars);
        assert_eq!(
            warnings,
            [
                "LEAKTRACKER_REPORT is empty (expected `stderr`, `stdout` or a file path); no exit report",
                "LEAKTRACKER_MIN_AGE=\"5 minutes\" is not a duration (0, 250ms, 5s, 2m, 1h); using 0",
                "LEAKTRACKER_EXIT_CODE=\"300\" is not an exit code from 1 to 255; leaks will not change the exit status",
                "LEAKTRACKER_IGNORE: \"cache\" not `kind:GLOB` or `name:GLOB`; ignored",
                "LEAKTRACKER_BACKTRACE=\"yes\" is not 0, 1 or sample:N; no backtraces",
                "LEAKTRACKER_UNWIND=\"dwarf\" is not `tables`, `system` or `frame-pointers`; using tables",
                "LEAKTRACKER_VERDICT: \"lenient\" is not `default`, `strict` or `show-all`; using default",
                "LEAKTRACKER_MAX_RECORDS=\"-1\" is not a number of records; no cap",
                "LEAKTRACKER_SIGNAL=\"KILL\" is not a signal a report can be asked with (USR1, USR2, HUP, …); no snapshots on a signal",
                "LEAKTRACKER_INTERVAL=\"0\" is not a duration above 0 (500ms, 60s, 5m, 1h); no interval snapshots",
                "LEAKTRACKER_KEEP=\"0\" is not a number of files from 1 up; every snapshot file stays",
                "LEAKTRACKER_LABELS: \"service\" not `key=value`; ignored",
                "LEAKTRACKER_REPORT_ON: \"usr1\" not `term`, `int` or `hup`; ignored",
            ]
        );
    }

    #[test]
    fn verdict_warns_once_per_bad_item_and_lists_once_in_all() {
        let (cfg, warnings) = read(&[
            ("LEAKTRACKER_VERDICT", b"a, strict,b"),
            ("LEAKTRACKER_IGNORE", b"x,kind:k,y,z,w"),
        ]);
        assert_eq!(cfg.verdict, crate::verdict::Verdict::Strict);
        assert_eq!(cfg.ignore.len(), 1);
        assert_eq!(
            warnings,
            [
                "LEAKTRACKER_IGNORE: \"x\", \"y\", \"z\", and 1 more not `kind:GLOB` or `name:GLOB`; ignored",
                "LEAKTRACKER_VERDICT: \"a\" is not `default`, `strict` or `show-all`; using default",
                "LEAKTRACKER_VERDICT: \"b\" is not `default`, `strict` or `show-all`; using default",
            ]
        );
    }

    #[test]
    fn values_not_utf8_are_ignored_with_one_warning_but_paths_are_kept() {
        for s in SETTINGS {
            let (cfg, warnings) = read(&[(s.name, b"\xff5s")]);
            if matches!(s.rule, Rule::Raw(_)) {
                assert!(warnings.is_empty(), "{}: {warnings:?}", s.name);
                assert!(matches!(cfg.target, Some(Target::File(_))), "{}", s.name);
            } else {
                assert_eq!(
                    warnings,
                    [format!("{} is not valid UTF-8; ignored", s.name)]
                );
            }
        }
    }

    #[test]
    fn each_good_value_applies_without_a_warning() {
        for &(name, good) in GOOD {
            // With a report path, so that snapshots have somewhere to go.
            let path: (&str, &[u8]) = ("LEAKTRACKER_REPORT", b"r.json");
            let with: Vec<(&str, &[u8])> = if name == path.0 {
                vec![(name, good.as_bytes())]
            } else {
                vec![path, (name, good.as_bytes())]
            };
            let (cfg, warnings) = read(&with);
            assert!(warnings.is_empty(), "{name}={good}: {warnings:?}");
            let (base, _) = read(&with[..with.len() - 1]);
            assert_ne!(
                format!("{cfg:?}"),
                format!("{base:?}"),
                "{name}={good} changed nothing"
            );
        }
    }

    #[test]
    fn stdout_and_stderr_are_streams_not_file_names() {
        let (cfg, warnings) = read(&[("LEAKTRACKER_REPORT", b"stdout")]);
        assert_eq!(cfg.target, Some(Target::File("/dev/stdout".into())));
        assert!(warnings.is_empty(), "{warnings:?}");
        let (cfg, _) = read(&[("LEAKTRACKER_REPORT", b"stderr")]);
        assert_eq!(cfg.target, Some(Target::Stderr));
        let (cfg, _) = read(&[("LEAKTRACKER_REPORT", b"./stdout")]);
        assert_eq!(cfg.target, Some(Target::File("./stdout".into())));
    }

    #[test]
    fn a_report_without_a_backtrace_setting_gets_stacks_for_the_verdict() {
        let (cfg, _) = read(&[("LEAKTRACKER_REPORT", b"stderr")]);
        assert_eq!(cfg.backtraces, Some(Backtraces::All));
        assert!(cfg.stacks_for_verdict);
        let (cfg, _) = read(&[("LEAKTRACKER_EXIT_CODE", b"2")]);
        assert!(cfg.stacks_for_verdict);
        // Any backtrace setting, even a bad one, is the user's: no stacks are added.
        for v in [&b"0"[..], b"yes"] {
            let (cfg, _) = read(&[
                ("LEAKTRACKER_REPORT", b"stderr"),
                ("LEAKTRACKER_BACKTRACE", v),
            ]);
            assert!(!cfg.stacks_for_verdict);
            assert_ne!(cfg.backtraces, Some(Backtraces::All));
        }
        let (cfg, _) = read(&[]);
        assert_eq!(cfg.backtraces, None);
        assert!(!cfg.stacks_for_verdict);
    }

    #[test]
    fn snapshots_without_a_path_say_so_last() {
        let (_, warnings) = read(&[("LEAKTRACKER_INTERVAL", b"60s"), ("LEAKTRACKER_KEEP", b"x")]);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].starts_with("LEAKTRACKER_KEEP="));
        assert!(
            warnings[1].starts_with("LEAKTRACKER_SIGNAL and LEAKTRACKER_INTERVAL write to"),
            "{warnings:?}"
        );
        let (_, warnings) = read(&[
            ("LEAKTRACKER_SIGNAL", b"USR2"),
            ("LEAKTRACKER_REPORT", b"stderr"),
        ]);
        assert!(warnings.is_empty(), "{warnings:?}");
    }
}
