//! Logging and SNMP reporting the way Go kcptun does it: the process logger, Go time layouts,
//! the SIGUSR1 line and the periodic `--snmplog` CSV writer.
//!
//! * [`init_logging`] installs a `log` logger whose lines look like Go's standard logger,
//!   `2026/11/25 03:08:40 message` in local time, on stderr or appended to `--log FILE`. It is
//!   called once, before anything starts, so an unopenable log file is reported up front.
//!   Level `info` unless `RUST_LOG` says otherwise; with `--quiet`, records logged under
//!   [`STREAM_TARGET`] (the "stream opened/closed" lines) are dropped. [`reopen_log`] reopens the
//!   file (SIGHUP, after logrotate renamed it); on failure logging stays on the old handle.
//! * [`local_time`] turns Unix seconds into a [`LocalTime`] (`localtime_r`, so `TZ` and
//!   `/etc/localtime` apply as for Go); [`go_time_format`] renders one with a Go layout string
//!   (`2006-01-02 15:04:05 MST`, …).
//! * [`Reporter`]: feed it the process-wide counters about once a second ([`Reporter::tick`]);
//!   every `--snmpperiod` seconds it appends one CSV row (with the header first if the file is
//!   empty) to the `--snmplog` path whose *file name* is a Go time layout (SPEC §7.11). Open or
//!   write failures are logged and the next period tries again (latest Go behaviour).
//! * [`sigusr1_line`]: the `KCP SNMP:&{…}` text logged on SIGUSR1.
//!
//! Invariants: no log line is ever split across two `write(2)` calls to the sink (one
//! `write_all` per line under the logger's lock), nothing here panics on odd input (an
//! out-of-range [`LocalTime`] field renders as Go renders it, a clock before 1970 or beyond
//! `time_t` falls back to UTC arithmetic), and the reporter allocates only when a row is due.

use std::cell::RefCell;
use std::ffi::CStr;
use std::fmt::{self, Write as _};
use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use log::{LevelFilter, Log, Metadata, Record};

use crate::proto::snmp::Snmp;

/// `log` target of the "stream opened" / "stream closed" lines that `--quiet` suppresses:
/// `log::info!(target: STREAM_TARGET, "stream opened in: {} out: {}", …)`.
pub const STREAM_TARGET: &str = "kcptun::stream";

// ---------------------------------------------------------------------------------------------
// Local time
// ---------------------------------------------------------------------------------------------

/// A broken-down civil time with its zone, as Go's `time.Time` exposes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalTime {
    /// Full year, e.g. 2026.
    pub year: i32,
    /// 1 = January … 12 = December.
    pub month: u8,
    /// Day of the month, 1…31.
    pub day: u8,
    /// 0…23.
    pub hour: u8,
    /// 0…59.
    pub min: u8,
    /// 0…60 (60 only for a leap second the C library reports).
    pub sec: u8,
    /// Nanoseconds within the second (0 from [`local_time`]; used by `.000` layouts).
    pub nanos: u32,
    /// 0 = Sunday … 6 = Saturday.
    pub weekday: u8,
    /// Day of the year, 1…366 (Go's `YearDay`).
    pub yday: u16,
    /// Seconds east of UTC (e.g. 19800 for +05:30).
    pub utc_offset: i32,
    /// Zone abbreviation, e.g. `UTC`, `CET`, `EDT`; empty if the C library gives none.
    pub zone: String,
}

/// `libc::tm` for `unix_secs` in the local zone, or `None` if it does not fit `time_t` or the C
/// library refuses it.
fn local_tm(unix_secs: i64) -> Option<libc::tm> {
    let t = libc::time_t::try_from(unix_secs).ok()?;
    // SAFETY: tm is a plain C struct of integers and one pointer; all-zero is a valid value.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are to live locals; localtime_r is the reentrant variant and only
    // writes into `tm` (tm_zone then points into the C library's static zone data).
    let r = unsafe { libc::localtime_r(&t, &mut tm) };
    if r.is_null() {
        None
    } else {
        Some(tm)
    }
}

/// Clamps a C int into `0..=max` as a `u8` (the C library's fields are in range; this only
/// keeps a broken one from panicking anything downstream).
fn field_u8(v: libc::c_int, max: u8) -> u8 {
    u8::try_from(v.clamp(0, libc::c_int::from(max))).unwrap_or(0)
}

/// Unix seconds → local broken-down time (Go's `time.Unix(s, 0)` in `time.Local`).
///
/// Falls back to UTC (zone `UTC`) if the C library cannot represent the instant.
pub fn local_time(unix_secs: i64) -> LocalTime {
    let Some(tm) = local_tm(unix_secs) else {
        return utc_time(unix_secs);
    };
    let zone = if tm.tm_zone.is_null() {
        String::new()
    } else {
        // SAFETY: a non-null tm_zone from localtime_r points to a NUL-terminated string in the
        // C library's zone data, which stays valid at least until the next tzset.
        unsafe { CStr::from_ptr(tm.tm_zone) }
            .to_string_lossy()
            .into_owned()
    };
    LocalTime {
        year: tm.tm_year.saturating_add(1900),
        month: field_u8(tm.tm_mon.saturating_add(1), 12),
        day: field_u8(tm.tm_mday, 31),
        hour: field_u8(tm.tm_hour, 23),
        min: field_u8(tm.tm_min, 59),
        sec: field_u8(tm.tm_sec, 60),
        nanos: 0,
        weekday: field_u8(tm.tm_wday, 6),
        yday: u16::try_from(tm.tm_yday.clamp(0, 365) + 1).unwrap_or(1),
        utc_offset: i32::try_from(tm.tm_gmtoff).unwrap_or(0),
        zone,
    }
}

/// The current local time, with nanoseconds.
pub fn local_now() -> LocalTime {
    let (secs, nanos) = unix_now();
    let mut t = local_time(secs);
    t.nanos = nanos;
    t
}

/// Wall-clock Unix time as (seconds, nanoseconds), floor-rounded also before 1970.
fn unix_now() -> (i64, u32) {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => (
            i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            d.subsec_nanos(),
        ),
        Err(e) => {
            let d = e.duration();
            let s = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            if d.subsec_nanos() == 0 {
                (-s, 0)
            } else {
                (-s - 1, 1_000_000_000 - d.subsec_nanos())
            }
        }
    }
}

/// Days since 1970-01-01 → (year, month 1…12, day 1…31), proleptic Gregorian.
fn civil_from_days(days: i64) -> (i64, u8, u8) {
    // Shift the epoch to 0000-03-01 so leap days fall at the end of each 400-year cycle's year.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of era, 0…146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // year of era, 0…399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of (March-based) year, 0…365
    let mp = (5 * doy + 2) / 153; // March = 0 … February = 11
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month as u8, day as u8)
}

/// (year, month 1…12, day) → days since 1970-01-01, the inverse of [`civil_from_days`].
fn days_from_civil(year: i64, month: u8, day: u8) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Unix seconds → UTC broken-down time (zone `UTC`), computed without the C library.
pub fn utc_time(unix_secs: i64) -> LocalTime {
    let days = unix_secs.div_euclid(86_400);
    let rem = unix_secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let yday = days - days_from_civil(year, 1, 1) + 1;
    LocalTime {
        year: i32::try_from(year).unwrap_or(if year < 0 { i32::MIN } else { i32::MAX }),
        month,
        day,
        hour: (rem / 3600) as u8,
        min: (rem / 60 % 60) as u8,
        sec: (rem % 60) as u8,
        nanos: 0,
        // 1970-01-01 was a Thursday.
        weekday: (days + 4).rem_euclid(7) as u8,
        yday: yday as u16,
        utc_offset: 0,
        zone: String::from("UTC"),
    }
}

// ---------------------------------------------------------------------------------------------
// Go time layouts
// ---------------------------------------------------------------------------------------------

const LONG_MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

const LONG_DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// One element of a Go layout (Go's `std*` constants).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tok {
    LongMonth,      // January
    Month,          // Jan
    NumMonth,       // 1
    ZeroMonth,      // 01
    LongWeekDay,    // Monday
    WeekDay,        // Mon
    Day,            // 2
    UnderDay,       // _2
    ZeroDay,        // 02
    UnderYearDay,   // __2
    ZeroYearDay,    // 002
    Hour,           // 15
    Hour12,         // 3
    ZeroHour12,     // 03
    Minute,         // 4
    ZeroMinute,     // 04
    Second,         // 5
    ZeroSecond,     // 05
    LongYear,       // 2006
    Year,           // 06
    PM,             // PM
    Pm,             // pm
    TzName,         // MST
    Iso8601Tz,      // Z0700
    Iso8601SecTz,   // Z070000
    Iso8601ShortTz, // Z07
    Iso8601ColonTz, // Z07:00
    Iso8601ColonSecTz,
    NumTz,      // -0700
    NumSecTz,   // -070000
    NumShortTz, // -07
    NumColonTz, // -07:00
    NumColonSecTz,
    /// `.000` / `,000` (digits kept) or `.999` (trailing zeros trimmed): separator, digits.
    Frac {
        sep: u8,
        digits: usize,
        trim: bool,
    },
}

/// Finds the next token: `(literal prefix length, token, token length)`, or `None` if the rest
/// is literal. Mirrors the precedence of Go's `nextStdChunk`.
fn next_token(l: &[u8]) -> Option<(usize, Tok, usize)> {
    let has = |i: usize, s: &str| l.get(i..i + s.len()) == Some(s.as_bytes());
    for i in 0..l.len() {
        let next = l.get(i + 1).copied();
        let hit: Option<(Tok, usize)> = match l[i] {
            b'J' if has(i, "Jan") => Some(if has(i, "January") {
                (Tok::LongMonth, 7)
            } else {
                (Tok::Month, 3)
            }),
            b'M' if has(i, "Monday") => Some((Tok::LongWeekDay, 6)),
            b'M' if has(i, "Mon") => Some((Tok::WeekDay, 3)),
            b'M' if has(i, "MST") => Some((Tok::TzName, 3)),
            b'0' => match next {
                Some(b'1') => Some((Tok::ZeroMonth, 2)),
                Some(b'2') => Some((Tok::ZeroDay, 2)),
                Some(b'3') => Some((Tok::ZeroHour12, 2)),
                Some(b'4') => Some((Tok::ZeroMinute, 2)),
                Some(b'5') => Some((Tok::ZeroSecond, 2)),
                Some(b'6') => Some((Tok::Year, 2)),
                Some(b'0') if l.get(i + 2) == Some(&b'2') => Some((Tok::ZeroYearDay, 3)),
                _ => None,
            },
            b'1' if next == Some(b'5') => Some((Tok::Hour, 2)),
            b'1' => Some((Tok::NumMonth, 1)),
            b'2' if has(i, "2006") => Some((Tok::LongYear, 4)),
            b'2' => Some((Tok::Day, 1)),
            // `_2006` is a literal underscore followed by the year, as in Go.
            b'_' if has(i, "_2006") => {
                return Some((i + 1, Tok::LongYear, 4));
            }
            b'_' if next == Some(b'2') => Some((Tok::UnderDay, 2)),
            b'_' if has(i, "__2") => Some((Tok::UnderYearDay, 3)),
            b'3' => Some((Tok::Hour12, 1)),
            b'4' => Some((Tok::Minute, 1)),
            b'5' => Some((Tok::Second, 1)),
            b'P' if next == Some(b'M') => Some((Tok::PM, 2)),
            b'p' if next == Some(b'm') => Some((Tok::Pm, 2)),
            b'-' if has(i, "-070000") => Some((Tok::NumSecTz, 7)),
            b'-' if has(i, "-07:00:00") => Some((Tok::NumColonSecTz, 9)),
            b'-' if has(i, "-0700") => Some((Tok::NumTz, 5)),
            b'-' if has(i, "-07:00") => Some((Tok::NumColonTz, 6)),
            b'-' if has(i, "-07") => Some((Tok::NumShortTz, 3)),
            b'Z' if has(i, "Z070000") => Some((Tok::Iso8601SecTz, 7)),
            b'Z' if has(i, "Z07:00:00") => Some((Tok::Iso8601ColonSecTz, 9)),
            b'Z' if has(i, "Z0700") => Some((Tok::Iso8601Tz, 5)),
            b'Z' if has(i, "Z07:00") => Some((Tok::Iso8601ColonTz, 6)),
            b'Z' if has(i, "Z07") => Some((Tok::Iso8601ShortTz, 3)),
            sep @ (b'.' | b',') if matches!(next, Some(b'0' | b'9')) => {
                let ch = l[i + 1];
                let mut j = i + 1;
                while l.get(j) == Some(&ch) {
                    j += 1;
                }
                // A fraction only if the run of 0s or 9s is not followed by another digit.
                if l.get(j).is_some_and(u8::is_ascii_digit) {
                    None
                } else {
                    let tok = Tok::Frac {
                        sep,
                        digits: j - (i + 1),
                        trim: ch == b'9',
                    };
                    Some((tok, j - i))
                }
            }
            _ => None,
        };
        if let Some((tok, len)) = hit {
            return Some((i, tok, len));
        }
    }
    None
}

/// Appends `v` in decimal, zero-padded to `width` digits, with a leading `-` if negative
/// (Go's `appendInt`).
fn push_int(out: &mut String, v: i64, width: usize) {
    if v < 0 {
        out.push('-');
    }
    let _ = write!(out, "{:0width$}", v.unsigned_abs());
}

fn push_offset(out: &mut String, tok: Tok, offset: i32) {
    let iso = matches!(
        tok,
        Tok::Iso8601Tz
            | Tok::Iso8601SecTz
            | Tok::Iso8601ShortTz
            | Tok::Iso8601ColonTz
            | Tok::Iso8601ColonSecTz
    );
    if iso && offset == 0 {
        out.push('Z');
        return;
    }
    let colon = matches!(
        tok,
        Tok::Iso8601ColonTz | Tok::Iso8601ColonSecTz | Tok::NumColonTz | Tok::NumColonSecTz
    );
    let short = matches!(tok, Tok::NumShortTz | Tok::Iso8601ShortTz);
    let secs = matches!(
        tok,
        Tok::Iso8601SecTz | Tok::Iso8601ColonSecTz | Tok::NumSecTz | Tok::NumColonSecTz
    );
    let abs = i64::from(offset).unsigned_abs();
    out.push(if offset < 0 { '-' } else { '+' });
    let _ = write!(out, "{:02}", abs / 3600);
    if !short {
        if colon {
            out.push(':');
        }
        let _ = write!(out, "{:02}", abs / 60 % 60);
    }
    if secs {
        if colon {
            out.push(':');
        }
        let _ = write!(out, "{:02}", abs % 60);
    }
}

fn push_token(out: &mut String, tok: Tok, t: &LocalTime) {
    let month_name = |long: bool| match LONG_MONTHS.get(usize::from(t.month).wrapping_sub(1)) {
        Some(m) if long => (*m).to_string(),
        Some(m) => m[..3].to_string(),
        None => format!("%!Month({})", t.month),
    };
    let day_name = |long: bool| match LONG_DAYS.get(usize::from(t.weekday)) {
        Some(d) if long => (*d).to_string(),
        Some(d) => d[..3].to_string(),
        None => format!("%!Weekday({})", t.weekday),
    };
    let hour12 = match t.hour % 12 {
        0 => 12,
        h => i64::from(h),
    };
    match tok {
        Tok::LongMonth => out.push_str(&month_name(true)),
        Tok::Month => out.push_str(&month_name(false)),
        Tok::NumMonth => push_int(out, t.month.into(), 0),
        Tok::ZeroMonth => push_int(out, t.month.into(), 2),
        Tok::LongWeekDay => out.push_str(&day_name(true)),
        Tok::WeekDay => out.push_str(&day_name(false)),
        Tok::Day => push_int(out, t.day.into(), 0),
        Tok::UnderDay => {
            if t.day < 10 {
                out.push(' ');
            }
            push_int(out, t.day.into(), 0);
        }
        Tok::ZeroDay => push_int(out, t.day.into(), 2),
        Tok::UnderYearDay => {
            if t.yday < 100 {
                out.push(' ');
                if t.yday < 10 {
                    out.push(' ');
                }
            }
            push_int(out, t.yday.into(), 0);
        }
        Tok::ZeroYearDay => push_int(out, t.yday.into(), 3),
        Tok::Hour => push_int(out, t.hour.into(), 2),
        Tok::Hour12 => push_int(out, hour12, 0),
        Tok::ZeroHour12 => push_int(out, hour12, 2),
        Tok::Minute => push_int(out, t.min.into(), 0),
        Tok::ZeroMinute => push_int(out, t.min.into(), 2),
        Tok::Second => push_int(out, t.sec.into(), 0),
        Tok::ZeroSecond => push_int(out, t.sec.into(), 2),
        Tok::LongYear => push_int(out, t.year.into(), 4),
        Tok::Year => push_int(out, i64::from(t.year) % 100, 2),
        Tok::PM => out.push_str(if t.hour >= 12 { "PM" } else { "AM" }),
        Tok::Pm => out.push_str(if t.hour >= 12 { "pm" } else { "am" }),
        Tok::TzName => {
            if t.zone.is_empty() {
                // Go prints an unnamed zone as -0700.
                push_offset(out, Tok::NumTz, t.utc_offset);
            } else {
                out.push_str(&t.zone);
            }
        }
        Tok::Frac { sep, digits, trim } => {
            let all = format!("{:09}", t.nanos.min(999_999_999));
            let mut d = &all[..digits.min(9)];
            if trim {
                d = d.trim_end_matches('0');
                if d.is_empty() {
                    return;
                }
            }
            out.push(char::from(sep));
            out.push_str(d);
        }
        _ => push_offset(out, tok, t.utc_offset),
    }
}

/// Appends `t` formatted with the Go layout `layout` (reference time
/// `Mon Jan 2 15:04:05 MST 2006`) to `out`.
pub fn go_time_format_into(out: &mut String, layout: &str, t: &LocalTime) {
    let mut rest = layout;
    while let Some((lit, tok, len)) = next_token(rest.as_bytes()) {
        // Token boundaries are ASCII bytes, hence char boundaries.
        out.push_str(&rest[..lit]);
        push_token(out, tok, t);
        rest = &rest[lit + len..];
    }
    out.push_str(rest);
}

/// `t` formatted with a Go time layout, e.g. `go_time_format("2006/01/02 15:04:05", &t)`.
///
/// Supported: `2006 06 01 1 Jan January 02 2 _2 __2 002 15 03 3 04 4 05 5 PM pm Mon Monday
/// MST -0700 -07:00 -07 -070000 -07:00:00 Z0700 Z07:00 Z07 Z070000 Z07:00:00` and fractions
/// `.000…`/`.999…` (also with `,`); anything else is copied.
pub fn go_time_format(layout: &str, t: &LocalTime) -> String {
    let mut s = String::with_capacity(layout.len() + 16);
    go_time_format_into(&mut s, layout, t);
    s
}

/// The snmplog path for time `t`: the directory part of `template` kept as is, the file name
/// part (after the last `/`) formatted as a Go layout — Go's `filepath.Split` then
/// `dir + time.Now().Format(file)`.
pub fn snmplog_path(template: &str, t: &LocalTime) -> PathBuf {
    let (dir, file) = split_path(template);
    let mut s = String::from(dir);
    go_time_format_into(&mut s, file, t);
    PathBuf::from(s)
}

/// Splits after the last `/` (the directory keeps its trailing slash).
fn split_path(p: &str) -> (&str, &str) {
    match p.rfind('/') {
        Some(i) => p.split_at(i + 1),
        None => ("", p),
    }
}

// ---------------------------------------------------------------------------------------------
// Logger
// ---------------------------------------------------------------------------------------------

/// Why [`init_logging`] failed.
#[derive(Debug)]
pub enum LogError {
    /// `--log FILE` could not be opened (or created) for appending.
    Open {
        /// The file named by `--log`.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
}

impl fmt::Display for LogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogError::Open { path, source } => write!(
                f,
                "cannot open log file {}: {} (check --log: the directory must exist and be \
                 writable)",
                path.display(),
                go_error_text(source)
            ),
        }
    }
}

impl std::error::Error for LogError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LogError::Open { source, .. } => Some(source),
        }
    }
}

/// An OS error as Go prints it: `no such file or directory` rather than Rust's
/// `No such file or directory (os error 2)`.
fn go_error_text(e: &io::Error) -> String {
    let s = e.to_string();
    let s = match s.rfind(" (os error ") {
        Some(i) if s.ends_with(')') => &s[..i],
        _ => &s[..],
    };
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

fn open_log_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o644)
        .open(path)
}

/// Where log lines go, and the state for reopening.
#[derive(Debug)]
enum Sink {
    Stderr,
    File { path: PathBuf, file: File },
}

impl Sink {
    fn open(log_file: Option<&Path>) -> Result<Sink, LogError> {
        match log_file {
            None => Ok(Sink::Stderr),
            Some(p) => match open_log_file(p) {
                Ok(file) => Ok(Sink::File {
                    path: p.to_path_buf(),
                    file,
                }),
                Err(source) => Err(LogError::Open {
                    path: p.to_path_buf(),
                    source,
                }),
            },
        }
    }

    /// Writes one whole line (already ending in `\n`); errors are dropped (nowhere to report).
    fn write_line(&mut self, line: &[u8]) {
        let _ = match self {
            Sink::Stderr => io::stderr().lock().write_all(line),
            Sink::File { file, .. } => file.write_all(line),
        };
    }

    /// Reopens the file by name; on failure the old handle stays and the error is returned.
    fn reopen(&mut self) -> Result<(), (PathBuf, io::Error)> {
        if let Sink::File { path, file } = self {
            match open_log_file(path) {
                Ok(f) => *file = f,
                Err(e) => return Err((path.clone(), e)),
            }
        }
        Ok(())
    }
}

/// Formats one Go-style log line into `out`: `YYYY/MM/DD hh:mm:ss message\n` (a newline is added
/// only if the message lacks one, as Go's `log` does).
fn format_line(out: &mut String, unix_secs: i64, msg: &fmt::Arguments<'_>) {
    match local_tm(unix_secs) {
        Some(tm) => {
            let _ = write!(
                out,
                "{:04}/{:02}/{:02} {:02}:{:02}:{:02} ",
                i64::from(tm.tm_year) + 1900,
                tm.tm_mon + 1,
                tm.tm_mday,
                tm.tm_hour,
                tm.tm_min,
                tm.tm_sec
            );
        }
        None => go_time_format_into(out, "2006/01/02 15:04:05 ", &utc_time(unix_secs)),
    }
    let _ = out.write_fmt(*msg);
    if !out.ends_with('\n') {
        out.push('\n');
    }
}

struct Installed {
    /// Level/module filter built from `info` and `RUST_LOG` (env_logger's parser).
    filter: env_logger::Logger,
    quiet: bool,
    sink: Sink,
}

/// The process logger: configuration and sink behind one lock.
struct GoLogger {
    state: Mutex<Option<Installed>>,
}

static LOGGER: GoLogger = GoLogger {
    state: Mutex::new(None),
};

thread_local! {
    /// Per-thread line buffer, so formatting (which may run arbitrary `Display` code) happens
    /// outside the logger's lock and without allocating per line.
    static LINE: RefCell<String> = const { RefCell::new(String::new()) };
}

impl GoLogger {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Installed>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `--quiet` drops info-and-below records under [`STREAM_TARGET`]; warnings still pass.
fn quieted(inst: &Installed, metadata: &Metadata<'_>) -> bool {
    inst.quiet && metadata.target() == STREAM_TARGET && metadata.level() >= log::Level::Info
}

impl Log for GoLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.lock()
            .as_ref()
            .is_some_and(|i| !quieted(i, metadata) && i.filter.enabled(metadata))
    }

    fn log(&self, record: &Record<'_>) {
        let wanted = self
            .lock()
            .as_ref()
            .is_some_and(|i| !quieted(i, record.metadata()) && i.filter.matches(record));
        if !wanted {
            return;
        }
        let emit = |line: &mut String| {
            line.clear();
            format_line(line, unix_now().0, record.args());
            if let Some(inst) = self.lock().as_mut() {
                inst.sink.write_line(line.as_bytes());
            }
            // Do not let one huge message pin a huge buffer for the thread's lifetime.
            if line.capacity() > 64 * 1024 {
                *line = String::new();
            }
        };
        let done = LINE
            .try_with(|cell| match cell.try_borrow_mut() {
                Ok(mut line) => {
                    emit(&mut line);
                    true
                }
                Err(_) => false,
            })
            .unwrap_or(false);
        if !done {
            // Re-entrant logging (a Display impl that logs) or thread teardown.
            emit(&mut String::new());
        }
    }

    fn flush(&self) {}
}

/// Builds the level filter: `info`, overridden by `RUST_LOG` (env_logger syntax, e.g. `debug`
/// or `kcptun::io=trace`).
fn build_filter() -> env_logger::Logger {
    let mut b = env_logger::Builder::new();
    b.filter_level(LevelFilter::Info);
    if let Ok(spec) = std::env::var("RUST_LOG") {
        b.parse_filters(&spec);
    }
    b.build()
}

/// Installs the process logger: Go-style lines (`2026/11/25 03:08:40 message`, local time) on
/// stderr, or appended to `log_file` (created with mode 0644 if missing). With `quiet`, records
/// under [`STREAM_TARGET`] are dropped. Level `info`, `RUST_LOG` may override.
///
/// Call it before starting anything: the only error is an unopenable log file, which names the
/// file. Calling it again replaces the configuration (the logger itself is installed once).
pub fn init_logging(log_file: Option<&Path>, quiet: bool) -> Result<(), LogError> {
    let sink = Sink::open(log_file)?;
    let filter = build_filter();
    let max = filter.filter();
    *LOGGER.lock() = Some(Installed {
        filter,
        quiet,
        sink,
    });
    // Fails only if a logger is already installed: ours (a second init) or a test harness's.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(max);
    Ok(())
}

/// Reopens the `--log` file by name (on SIGHUP, after logrotate moved it away). Safe at any time
/// and a no-op when logging to stderr or before [`init_logging`]. On failure one line goes to
/// stderr (and to the old log) and logging continues to the old handle.
pub fn reopen_log() {
    let mut guard = LOGGER.lock();
    let Some(inst) = guard.as_mut() else {
        return;
    };
    if let Err((path, e)) = inst.sink.reopen() {
        let mut line = String::new();
        let msg = format_args!(
            "cannot reopen log file {}: {}; still logging to the old file",
            path.display(),
            go_error_text(&e)
        );
        format_line(&mut line, unix_now().0, &msg);
        let _ = io::stderr().lock().write_all(line.as_bytes());
        inst.sink.write_line(line.as_bytes());
    }
}

// ---------------------------------------------------------------------------------------------
// SNMP reporting
// ---------------------------------------------------------------------------------------------

/// The line logged on SIGUSR1: `KCP SNMP:&{BytesSent:… OOBPackets:…}` (Go's
/// `log.Printf("KCP SNMP:%+v", snmp)`).
pub fn sigusr1_line(s: &Snmp) -> String {
    let mut line = String::from("KCP SNMP:");
    line.push_str(&s.sigusr1_text());
    line
}

/// Why one snmplog row was not written (it is also logged; the next period tries again).
#[derive(Debug)]
pub enum SnmpLogError {
    /// Opening (or creating) the file failed.
    Open {
        /// The formatted file path.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// Writing the row (or header) failed.
    Write {
        /// The formatted file path.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
}

impl fmt::Display for SnmpLogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Go: `open <path>: <errno text>` (an *os.PathError).
            SnmpLogError::Open { path, source } => {
                write!(f, "open {}: {}", path.display(), go_error_text(source))
            }
            SnmpLogError::Write { path, source } => {
                write!(f, "write {}: {}", path.display(), go_error_text(source))
            }
        }
    }
}

impl std::error::Error for SnmpLogError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SnmpLogError::Open { source, .. } | SnmpLogError::Write { source, .. } => Some(source),
        }
    }
}

/// The `--snmplog` writer.
///
/// Call order: [`Reporter::new`] once; then [`Reporter::tick`] (or [`Reporter::tick_at`] with an
/// explicit clock) about once a second with the process-wide counters. The first call arms the
/// schedule; a row is written at the first call at or after each `period` boundary (like Go's
/// ticker, missed periods are skipped rather than written in a burst, and a wall clock that
/// jumps backwards re-arms the schedule). Disabled (every call a no-op) without a path, with an
/// empty path, or with a zero period.
#[derive(Debug)]
pub struct Reporter {
    /// The `--snmplog` value; `None` when disabled.
    template: Option<String>,
    /// Whole seconds, at least 1.
    period: i64,
    /// Unix second at or after which the next row is due; `None` until the first tick.
    next_due: Option<i64>,
    /// Reused output buffer (header + row).
    buf: String,
}

impl Reporter {
    /// A reporter for `--snmplog` `snmplog` every `period` (`--snmpperiod`, whole seconds;
    /// sub-second periods round up to one second, zero disables it).
    pub fn new(snmplog: Option<String>, period: Duration) -> Self {
        let enabled = !period.is_zero();
        let mut secs = i64::try_from(period.as_secs()).unwrap_or(i64::MAX);
        if period.subsec_nanos() > 0 {
            secs = secs.saturating_add(1);
        }
        Reporter {
            template: snmplog.filter(|p| enabled && !p.is_empty()),
            period: secs.max(1),
            next_due: None,
            buf: String::new(),
        }
    }

    /// Whether rows are written at all.
    pub fn is_enabled(&self) -> bool {
        self.template.is_some()
    }

    /// [`Reporter::tick_at`] with the wall clock.
    pub fn tick(&mut self, snapshot: &Snmp) {
        let _ = self.tick_at(snapshot, unix_now().0);
    }

    /// Writes a row for `snapshot` if one is due at Unix time `unix_secs`.
    ///
    /// Returns `None` when nothing was due, else the file written to or why it failed (the
    /// failure is also logged at error level, as Go's `log.Println(err)`).
    pub fn tick_at(
        &mut self,
        snapshot: &Snmp,
        unix_secs: i64,
    ) -> Option<Result<PathBuf, SnmpLogError>> {
        let template = self.template.as_deref()?;
        let due = match self.next_due {
            // Not armed yet, or the clock went back by more than a period: (re)arm.
            None => None,
            Some(d) if d.saturating_sub(unix_secs) > self.period => None,
            Some(d) => Some(d),
        };
        let Some(due) = due else {
            self.next_due = Some(unix_secs.saturating_add(self.period));
            return None;
        };
        if unix_secs < due {
            return None;
        }
        let mut next = due.saturating_add(self.period);
        if next <= unix_secs {
            next = unix_secs.saturating_add(self.period);
        }
        self.next_due = Some(next);

        let path = snmplog_path(template, &local_time(unix_secs));
        let r = write_row(&mut self.buf, &path, snapshot, unix_secs);
        if self.buf.capacity() > 4096 {
            self.buf = String::new();
        }
        Some(match r {
            Ok(()) => Ok(path),
            Err(e) => {
                log::error!("{e}");
                Err(e)
            }
        })
    }
}

/// Appends one CSV row (after the header if the file is empty) in one write.
fn write_row(
    buf: &mut String,
    path: &Path,
    snapshot: &Snmp,
    unix_secs: i64,
) -> Result<(), SnmpLogError> {
    let mut f = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o666)
        .open(path)
        .map_err(|source| SnmpLogError::Open {
            path: path.to_path_buf(),
            source,
        })?;
    buf.clear();
    // Go writes the header when Stat succeeds and reports size 0.
    if f.metadata().is_ok_and(|m| m.len() == 0) {
        buf.push_str(&Snmp::csv_header());
        buf.push('\n');
    }
    buf.push_str(&snapshot.csv_row(unix_secs));
    buf.push('\n');
    f.write_all(buf.as_bytes())
        .map_err(|source| SnmpLogError::Write {
            path: path.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-25 03:12:00 UTC, the instant of SPEC §8.4's snmplog example.
    const SPEC_UNIX: i64 = 1_795_576_320;

    fn t(year: i32, month: u8, day: u8, hour: u8, min: u8, sec: u8) -> LocalTime {
        let days = days_from_civil(year.into(), month, day);
        LocalTime {
            year,
            month,
            day,
            hour,
            min,
            sec,
            nanos: 0,
            weekday: (days + 4).rem_euclid(7) as u8,
            yday: (days - days_from_civil(year.into(), 1, 1) + 1) as u16,
            utc_offset: 0,
            zone: "UTC".into(),
        }
    }

    fn spec_time() -> LocalTime {
        t(2026, 11, 25, 3, 12, 0)
    }

    #[test]
    fn spec_file_name_examples() {
        let now = spec_time();
        assert_eq!(
            go_time_format("snmp-20060102.log", &now),
            "snmp-20261125.log"
        );
        assert_eq!(
            go_time_format("new-20060102-150405.csv", &now),
            "new-20261125-031200.csv"
        );
        assert_eq!(go_time_format("deb-20060102.log", &now), "deb-20261125.log");
        assert_eq!(
            snmplog_path("./snmp-20060102.log", &now),
            PathBuf::from("./snmp-20261125.log")
        );
        // Only the file name is a layout: the directory keeps its digits.
        assert_eq!(
            snmplog_path("/var/log/2006-15/new-20060102-150405.csv", &now),
            PathBuf::from("/var/log/2006-15/new-20261125-031200.csv")
        );
        assert_eq!(
            snmplog_path("snmp/new-20060102-150405.csv", &t(2026, 11, 25, 3, 12, 1)),
            PathBuf::from("snmp/new-20261125-031201.csv")
        );
    }

    #[test]
    fn go_reference_layouts() {
        // Go's own reference time: Mon Jan 2 15:04:05 2006 in MST (-0700).
        let mut r = t(2006, 1, 2, 15, 4, 5);
        r.utc_offset = -7 * 3600;
        r.zone = "MST".into();
        let cases = [
            ("Mon Jan _2 15:04:05 2006", "Mon Jan  2 15:04:05 2006"),
            (
                "Mon Jan _2 15:04:05 MST 2006",
                "Mon Jan  2 15:04:05 MST 2006",
            ),
            ("02 Jan 06 15:04 -0700", "02 Jan 06 15:04 -0700"),
            (
                "Monday, 02-Jan-06 15:04:05 MST",
                "Monday, 02-Jan-06 15:04:05 MST",
            ),
            ("2006-01-02T15:04:05Z07:00", "2006-01-02T15:04:05-07:00"),
            ("3:04PM", "3:04PM"),
            ("January 2, 2006 3:04:05 pm", "January 2, 2006 3:04:05 pm"),
            ("2006/01/02 15:04:05", "2006/01/02 15:04:05"),
            ("1/2 3:4:5 06", "1/2 3:4:5 06"),
            ("002 __2", "002   2"),
            ("-07 -07:00:00 Z070000 Z07", "-07 -07:00:00 -070000 -07"),
        ];
        for (layout, want) in cases {
            assert_eq!(go_time_format(layout, &r), want, "layout {layout:?}");
        }
    }

    #[test]
    fn every_token_on_another_time() {
        // Sat 2026-11-28 23:09:07.123456789 +05:30 "IST", day 332 of the year.
        let mut x = t(2026, 11, 28, 23, 9, 7);
        x.nanos = 123_456_789;
        x.utc_offset = 5 * 3600 + 30 * 60;
        x.zone = "IST".into();
        assert_eq!(x.weekday, 6);
        assert_eq!(x.yday, 332);
        let cases = [
            ("2006 06 01 1 Jan January", "2026 26 11 11 Nov November"),
            ("02 2 _2 002 __2", "28 28 28 332 332"),
            ("15 03 3 04 4 05 5 PM pm", "23 11 11 09 9 07 7 PM pm"),
            ("Mon Monday MST", "Sat Saturday IST"),
            (
                "-0700 -07:00 -07 -070000 -07:00:00",
                "+0530 +05:30 +05 +053000 +05:30:00",
            ),
            ("Z0700 Z07:00 Z07", "+0530 +05:30 +05"),
            ("05.000 05.000000 05,000", "07.123 07.123456 07,123"),
            ("05.000000000 05.999", "07.123456789 07.123"),
        ];
        for (layout, want) in cases {
            assert_eq!(go_time_format(layout, &x), want, "layout {layout:?}");
        }
    }

    #[test]
    fn edge_cases_follow_go() {
        let mut x = t(2026, 3, 5, 0, 0, 0);
        assert_eq!(go_time_format("3 03 PM _2", &x), "12 12 AM  5");
        assert_eq!(go_time_format("Z07:00 Z0700", &x), "Z Z");
        assert_eq!(go_time_format("-07:00", &x), "+00:00");
        // .999 with zero nanos prints nothing at all, not even the dot.
        assert_eq!(go_time_format("05.999|", &x), "00|");
        // A run of zeros followed by a digit is not a fraction; `.0` then `01` (month).
        assert_eq!(go_time_format(".001", &x), ".003");
        // `_2006` is underscore + year; `__2` is the padded day of year.
        assert_eq!(go_time_format("x_2006", &x), "x_2026");
        assert_eq!(go_time_format("__2", &x), " 64");
        // Unnamed zone: MST falls back to the numeric offset.
        x.zone.clear();
        x.utc_offset = -(3 * 3600 + 30 * 60);
        assert_eq!(go_time_format("MST", &x), "-0330");
        // Literal text (including multibyte) passes through; "snmp.log" has no tokens.
        assert_eq!(go_time_format("snmp.log", &x), "snmp.log");
        assert_eq!(go_time_format("日志-2006.csv", &x), "日志-2026.csv");
        assert_eq!(go_time_format("", &x), "");
        // Out-of-range fields render like Go instead of panicking.
        x.month = 13;
        x.weekday = 9;
        assert_eq!(go_time_format("Jan Mon", &x), "%!Month(13) %!Weekday(9)");
        x.month = 0;
        assert_eq!(go_time_format("January", &x), "%!Month(0)");
    }

    #[test]
    fn utc_arithmetic_matches_known_dates() {
        let u = utc_time(SPEC_UNIX + 3);
        assert_eq!(
            (u.year, u.month, u.day, u.hour, u.min, u.sec),
            (2026, 11, 25, 3, 12, 3)
        );
        assert_eq!(u.weekday, 3); // Wednesday
        assert_eq!(u.yday, 329);
        let e = utc_time(0);
        assert_eq!(
            (e.year, e.month, e.day, e.weekday, e.yday),
            (1970, 1, 1, 4, 1)
        );
        let before = utc_time(-1);
        assert_eq!(
            (
                before.year,
                before.month,
                before.day,
                before.hour,
                before.sec
            ),
            (1969, 12, 31, 23, 59)
        );
        let leap = utc_time(951_782_400); // 2000-02-29
        assert_eq!(
            (leap.year, leap.month, leap.day, leap.yday),
            (2000, 2, 29, 60)
        );
        // Round trip over a wide range, including far past and future.
        for days in [-800_000i64, -1, 0, 59, 10_957, 20_782, 2_000_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        // Extreme inputs do not panic.
        let _ = utc_time(i64::MIN);
        let _ = utc_time(i64::MAX);
    }

    #[test]
    fn local_time_is_consistent_with_its_offset() {
        for unix in [0, SPEC_UNIX, 1_700_000_000, 1_720_000_000, -86_400 * 365] {
            let l = local_time(unix);
            assert!((1..=12).contains(&l.month) && (1..=31).contains(&l.day));
            let back = days_from_civil(l.year.into(), l.month, l.day) * 86_400
                + i64::from(l.hour) * 3600
                + i64::from(l.min) * 60
                + i64::from(l.sec)
                - i64::from(l.utc_offset);
            assert_eq!(back, unix, "local {l:?}");
            let days = days_from_civil(l.year.into(), l.month, l.day);
            assert_eq!(l.weekday as i64, (days + 4).rem_euclid(7));
            assert_eq!(
                i64::from(l.yday),
                days - days_from_civil(l.year.into(), 1, 1) + 1
            );
        }
        // Beyond what time_t/localtime_r handle: UTC fallback, no panic.
        let _ = local_time(i64::MAX);
        let _ = local_time(i64::MIN);
        let now = local_now();
        assert!(now.nanos < 1_000_000_000 && now.year >= 2024);
    }

    /// Runs in a child process (see `local_time_honours_tz`), with `TZ` set by the parent.
    #[test]
    #[ignore = "run by local_time_honours_tz in a child process with TZ set"]
    fn tz_child() {
        let Ok(case) = std::env::var("KCPTUN_TZ_CASE") else {
            return;
        };
        let l = local_time(SPEC_UNIX);
        let got = go_time_format("2006-01-02 15:04:05 MST -07:00", &l);
        let want = match case.as_str() {
            "utc" => "2026-11-25 03:12:00 UTC +00:00",
            "india" => "2026-11-25 08:42:00 XST +05:30",
            "ny" => "2026-11-24 22:12:00 EST -05:00",
            _ => panic!("unknown case {case}"),
        };
        assert_eq!(got, want);
        if case == "utc" {
            assert_eq!(
                snmplog_path("snmp/new-20060102-150405.csv", &l),
                PathBuf::from("snmp/new-20261125-031200.csv")
            );
        }
        if case == "ny" {
            // Summer time: 2026-07-01 12:00:00 UTC is 08:00 EDT.
            let s = local_time(1_782_907_200);
            assert_eq!(go_time_format("15:04 MST Z07:00", &s), "08:00 EDT -04:00");
        }
    }

    #[test]
    fn local_time_honours_tz() {
        let exe = std::env::current_exe().expect("test binary path");
        for (case, tz) in [
            ("utc", "UTC0"),
            ("india", "XST-5:30"),
            ("ny", "EST5EDT,M3.2.0,M11.1.0"),
        ] {
            let out = std::process::Command::new(&exe)
                .args(["--ignored", "--exact", "io::report::tests::tz_child"])
                .env("TZ", tz)
                .env("KCPTUN_TZ_CASE", case)
                .output()
                .expect("spawn test binary");
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success() && text.contains("1 passed"),
                "case {case}: {text}{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    #[test]
    fn log_line_format() {
        let mut s = String::new();
        format_line(&mut s, SPEC_UNIX, &format_args!("stream opened {}", 7));
        let (stamp, msg) = s.split_at(20);
        assert_eq!(msg, "stream opened 7\n");
        let b = stamp.as_bytes();
        assert!(
            b.iter().enumerate().all(|(i, c)| match i {
                4 | 7 => *c == b'/',
                10 | 19 => *c == b' ',
                13 | 16 => *c == b':',
                _ => c.is_ascii_digit(),
            }),
            "{s:?}"
        );
        // Same stamp as the layout formatter on local_time.
        assert_eq!(
            stamp,
            go_time_format("2006/01/02 15:04:05 ", &local_time(SPEC_UNIX))
        );
        // A message that already ends in a newline gets no second one.
        s.clear();
        format_line(&mut s, 0, &format_args!("x\n"));
        assert!(s.ends_with(" x\n") && !s.ends_with("\n\n"));
    }

    #[test]
    fn go_error_text_drops_rust_decoration() {
        let e = io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(go_error_text(&e), "no such file or directory");
        let e = io::Error::other("Custom thing");
        assert_eq!(go_error_text(&e), "custom thing");
    }

    proptest::proptest! {
        /// Any layout (user-supplied via --snmplog) and any field values: no panic, and text
        /// without layout characters is copied unchanged.
        #[test]
        fn format_never_panics(
            layout in ".{0,40}",
            fields in proptest::array::uniform8(proptest::prelude::any::<u8>()),
            year in proptest::prelude::any::<i32>(),
            nanos in proptest::prelude::any::<u32>(),
            offset in proptest::prelude::any::<i32>(),
        ) {
            let x = LocalTime {
                year,
                month: fields[0],
                day: fields[1],
                hour: fields[2],
                min: fields[3],
                sec: fields[4],
                nanos,
                weekday: fields[5],
                yday: u16::from(fields[6]) * 3,
                utc_offset: offset,
                zone: if fields[7] % 2 == 0 { String::new() } else { "CET".into() },
            };
            let _ = go_time_format(&layout, &x);
            let _ = snmplog_path(&layout, &x);
            let plain: String = layout.chars().filter(|c| !"0123456789JMPpZ_-.,".contains(*c)).collect();
            proptest::prop_assert_eq!(go_time_format(&plain, &x), plain);
        }
    }

    #[test]
    fn sigusr1_line_has_go_prefix() {
        let s = Snmp {
            bytes_sent: 571,
            oob_packets: 2,
            ..Snmp::default()
        };
        let line = sigusr1_line(&s);
        assert!(line.starts_with("KCP SNMP:&{BytesSent:571 BytesReceived:0 "));
        assert!(line.ends_with(" OOBPackets:2}"));
    }

    fn temp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "kcptun-report-{}-{name}-{}",
            std::process::id(),
            unix_now().1
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("temp dir");
        d
    }

    #[test]
    fn reporter_schedule_header_and_rows() {
        let dir = temp_dir("rows");
        let template = format!("{}/snmp-20060102.csv", dir.display());
        let mut r = Reporter::new(Some(template.clone()), Duration::from_secs(5));
        assert!(r.is_enabled());
        let mut s = Snmp {
            in_pkts: 1,
            ..Snmp::default()
        };
        let t0 = SPEC_UNIX;
        // First call only arms; nothing before t0 + 5.
        for now in t0..t0 + 5 {
            assert!(r.tick_at(&s, now).is_none(), "at {now}");
        }
        let path = r.tick_at(&s, t0 + 5).expect("due").expect("written");
        assert_eq!(path, snmplog_path(&template, &local_time(t0 + 5)));
        assert!(r.tick_at(&s, t0 + 5).is_none());
        assert!(r.tick_at(&s, t0 + 9).is_none());
        s.in_pkts = 2;
        // Late tick (t0 + 11): written now; schedule stays on the 5-second grid (next at 15).
        assert!(r.tick_at(&s, t0 + 11).is_some());
        assert!(r.tick_at(&s, t0 + 14).is_none());
        assert!(r.tick_at(&s, t0 + 15).is_some());
        let text = std::fs::read_to_string(&path).expect("read csv");
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert_eq!(lines[0], format!("{}\n", Snmp::csv_header()));
        assert_eq!(
            lines[1],
            format!(
                "{}\n",
                Snmp {
                    in_pkts: 1,
                    ..Snmp::default()
                }
                .csv_row(t0 + 5)
            )
        );
        assert_eq!(lines[2], format!("{}\n", s.csv_row(t0 + 11)));
        assert_eq!(lines[3], format!("{}\n", s.csv_row(t0 + 15)));
        assert_eq!(text.matches("Unix,").count(), 1, "header once");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn reporter_skips_missed_periods_and_survives_clock_jumps() {
        let dir = temp_dir("jumps");
        let template = format!("{}/x.csv", dir.display());
        let mut r = Reporter::new(Some(template), Duration::from_secs(10));
        let s = Snmp::default();
        let t0 = 1_000_000;
        assert!(r.tick_at(&s, t0).is_none());
        // A long stall: one row, not a burst of catch-up rows.
        assert!(r.tick_at(&s, t0 + 100).is_some());
        assert!(r.tick_at(&s, t0 + 101).is_none());
        assert!(r.tick_at(&s, t0 + 109).is_none());
        assert!(r.tick_at(&s, t0 + 110).is_some());
        // Wall clock set back an hour: re-armed, next row one period later.
        assert!(r.tick_at(&s, t0 - 3600).is_none());
        assert!(r.tick_at(&s, t0 - 3591).is_none());
        assert!(r.tick_at(&s, t0 - 3590).is_some());
        let text = std::fs::read_to_string(dir.join("x.csv")).expect("read");
        assert_eq!(text.lines().count(), 4);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn reporter_one_file_per_second_layout() {
        let dir = temp_dir("persec");
        let template = format!("{}/new-20060102-150405.csv", dir.display());
        let mut r = Reporter::new(Some(template.clone()), Duration::from_secs(1));
        let s = Snmp::default();
        assert!(r.tick_at(&s, SPEC_UNIX - 1).is_none());
        let a = r.tick_at(&s, SPEC_UNIX).expect("due").expect("ok");
        let b = r.tick_at(&s, SPEC_UNIX + 1).expect("due").expect("ok");
        assert_ne!(a, b);
        for (p, unix) in [(&a, SPEC_UNIX), (&b, SPEC_UNIX + 1)] {
            let name = go_time_format("new-20060102-150405.csv", &local_time(unix));
            assert_eq!(p, &dir.join(name));
            let text = std::fs::read_to_string(p).expect("read");
            assert_eq!(
                text,
                format!("{}\n{}\n", Snmp::csv_header(), s.csv_row(unix))
            );
        }
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn reporter_appends_to_existing_file_without_header() {
        let dir = temp_dir("append");
        let p = dir.join("s.csv");
        std::fs::write(&p, "old\n").expect("seed");
        let mut r = Reporter::new(Some(p.display().to_string()), Duration::from_secs(1));
        let s = Snmp::default();
        r.tick_at(&s, 10);
        r.tick_at(&s, 11).expect("due").expect("ok");
        let text = std::fs::read_to_string(&p).expect("read");
        assert_eq!(text, format!("old\n{}\n", s.csv_row(11)));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn reporter_open_failure_is_reported_and_retried() {
        let dir = temp_dir("fail");
        let template = format!("{}/missing/s.csv", dir.display());
        let mut r = Reporter::new(Some(template), Duration::from_secs(1));
        let s = Snmp::default();
        r.tick_at(&s, 10);
        let e = r.tick_at(&s, 11).expect("due").expect_err("no such dir");
        let msg = e.to_string();
        assert!(
            msg.starts_with("open ") && msg.ends_with("/missing/s.csv: no such file or directory"),
            "{msg}"
        );
        // Continues: once the directory exists, the next period writes.
        std::fs::create_dir(dir.join("missing")).expect("mkdir");
        let p = r.tick_at(&s, 12).expect("due").expect("ok now");
        assert!(std::fs::read_to_string(p)
            .expect("read")
            .starts_with("Unix,"));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn reporter_disabled_cases() {
        let s = Snmp::default();
        for mut r in [
            Reporter::new(None, Duration::from_secs(1)),
            Reporter::new(Some(String::new()), Duration::from_secs(1)),
            Reporter::new(Some("/nonexistent/x".into()), Duration::ZERO),
        ] {
            assert!(!r.is_enabled());
            for now in 0..5 {
                assert!(r.tick_at(&s, now).is_none());
            }
        }
        // Sub-second periods round up to one second.
        let r = Reporter::new(Some("x".into()), Duration::from_millis(300));
        assert_eq!(r.period, 1);
    }
}
