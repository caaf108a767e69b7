//! Quiet hours and do-not-disturb, per phone: the settings a phone stores on the hub
//! (`GET`/`PUT /api/quiet`, see `docs/PROTOCOL.md`), their validation, and the one decision
//! "is this phone quiet at this instant", without I/O.
//!
//! Time zone: the phone reports its UTC offset in minutes (`utc_offset_min`, what JavaScript's
//! `-new Date().getTimezoneOffset()` gives) rather than an IANA zone name, so the hub needs no
//! time-zone database. The app sends it again every time it starts and the offset changed, which
//! corrects a daylight-saving change the next time the app is opened.
//!
//! A schedule window is local to the phone: `days` are the weekdays it starts on (0 = Sunday,
//! as `Date.getDay()`), `start`/`end` are `HH:MM`. A window whose end is not after its start
//! runs past midnight into the next day ("22:00"–"07:00"); "00:00"–"24:00" is a whole day.

pub(crate) mod roster;

use serde::{Deserialize, Serialize};

/// Schedule windows per phone: a week of "weeknights" and "weekend" plus a few exceptions is
/// under 10; the cap keeps each ring's evaluation and the stored row small.
pub(crate) const MAX_WINDOWS: usize = 14;
/// Offsets beyond ±14 h do not exist on Earth (UTC−12 to UTC+14).
pub(crate) const MAX_OFFSET_MIN: i32 = 14 * 60;
/// Do-not-disturb ends at most this far ahead: a forgotten switch must not silence a phone
/// for good. 31 days covers a holiday.
pub(crate) const MAX_DND_MS: i64 = 31 * 24 * 3600 * 1000;

const MINUTES_PER_DAY: u32 = 24 * 60;
const MS_PER_DAY: i64 = 24 * 3600 * 1000;

/// One weekly window of quiet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Window {
    /// Weekdays the window starts on, 0 = Sunday … 6 = Saturday.
    pub(crate) days: Vec<u8>,
    /// `HH:MM`, local to the phone.
    pub(crate) start: String,
    /// `HH:MM` (or `24:00`); not after `start` means the next day.
    pub(crate) end: String,
}

/// What a phone stores (the `PUT /api/quiet` body and the `GET` answer).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub(crate) struct QuietSettings {
    /// The phone's offset from UTC in minutes (UTC+1 is 60).
    #[serde(default)]
    pub(crate) utc_offset_min: i32,
    #[serde(default)]
    pub(crate) schedule: Vec<Window>,
    /// The manual switch: quiet until this Unix millisecond time (`null`: off).
    #[serde(default)]
    pub(crate) dnd_until_ms: Option<i64>,
}

/// Why settings were refused; `code()` is the wire spelling, `field()` what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum QuietError {
    #[error("utc_offset_min must be between -{MAX_OFFSET_MIN} and {MAX_OFFSET_MIN}")]
    BadOffset,
    #[error("at most {MAX_WINDOWS} schedule windows")]
    TooManyWindows,
    #[error("schedule[{0}].days must list weekdays 0 (Sunday) to 6, at least one")]
    BadDays(usize),
    #[error("schedule[{0}]: start and end must be HH:MM (00:00 to 23:59; end may be 24:00)")]
    BadTime(usize),
    #[error("schedule[{0}]: start and end are equal; use 00:00 to 24:00 for a whole day")]
    EmptyWindow(usize),
    #[error("dnd_until_ms is more than 31 days ahead")]
    DndTooFar,
}

impl QuietError {
    pub(crate) fn code(&self) -> &'static str {
        match self {
            QuietError::BadOffset => "bad_offset",
            QuietError::TooManyWindows => "too_many_windows",
            QuietError::BadDays(_) => "bad_days",
            QuietError::BadTime(_) => "bad_time",
            QuietError::EmptyWindow(_) => "empty_window",
            QuietError::DndTooFar => "too_far",
        }
    }

    pub(crate) fn field(&self) -> String {
        match self {
            QuietError::BadOffset => "utc_offset_min".into(),
            QuietError::TooManyWindows => "schedule".into(),
            QuietError::BadDays(i) => format!("schedule[{i}].days"),
            QuietError::BadTime(i) | QuietError::EmptyWindow(i) => format!("schedule[{i}]"),
            QuietError::DndTooFar => "dnd_until_ms".into(),
        }
    }
}

/// `HH:MM` as minutes after midnight; `24:00` only where `allow_24` (an end).
fn minutes(text: &str, allow_24: bool) -> Option<u32> {
    let (h, m) = text.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    match (h, m) {
        (24, 0) if allow_24 => Some(MINUTES_PER_DAY),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

impl QuietSettings {
    /// Checks every field; `now_ms` bounds the do-not-disturb end.
    pub(crate) fn validate(&self, now_ms: i64) -> Result<(), QuietError> {
        if self.utc_offset_min.abs() > MAX_OFFSET_MIN {
            return Err(QuietError::BadOffset);
        }
        if self.schedule.len() > MAX_WINDOWS {
            return Err(QuietError::TooManyWindows);
        }
        for (i, w) in self.schedule.iter().enumerate() {
            if w.days.is_empty() || w.days.len() > 7 || w.days.iter().any(|d| *d > 6) {
                return Err(QuietError::BadDays(i));
            }
            let (Some(start), Some(end)) = (minutes(&w.start, false), minutes(&w.end, true)) else {
                return Err(QuietError::BadTime(i));
            };
            if start == end {
                return Err(QuietError::EmptyWindow(i));
            }
        }
        if self
            .dnd_until_ms
            .is_some_and(|until| until > now_ms.saturating_add(MAX_DND_MS))
        {
            return Err(QuietError::DndTooFar);
        }
        Ok(())
    }

    /// Whether the phone is quiet at `now_ms` (Unix milliseconds): its manual switch is on, or
    /// its local time falls in a schedule window. Windows that fail validation never match.
    pub(crate) fn is_quiet(&self, now_ms: i64) -> bool {
        if self.dnd_until_ms.is_some_and(|until| until > now_ms) {
            return true;
        }
        let local = now_ms.saturating_add(i64::from(self.utc_offset_min) * 60_000);
        let day = local.div_euclid(MS_PER_DAY);
        // 1970-01-01 was a Thursday (4).
        let weekday = (day + 4).rem_euclid(7) as u8;
        let yesterday = (weekday + 6) % 7;
        let minute = (local.rem_euclid(MS_PER_DAY) / 60_000) as u32;
        self.schedule.iter().any(|w| {
            let (Some(start), Some(end)) = (minutes(&w.start, false), minutes(&w.end, true)) else {
                return false;
            };
            if start < end {
                w.days.contains(&weekday) && (start..end).contains(&minute)
            } else {
                // Past midnight: the evening part today, the morning part on the next day.
                (w.days.contains(&weekday) && minute >= start)
                    || (w.days.contains(&yesterday) && minute < end)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-01-05 was a Monday; this is 00:00 UTC that day.
    const MONDAY_MS: i64 = 1_767_571_200_000;
    const HOUR: i64 = 3_600_000;

    fn nights(days: &[u8]) -> QuietSettings {
        QuietSettings {
            utc_offset_min: 60,
            schedule: vec![Window {
                days: days.to_vec(),
                start: "22:00".into(),
                end: "07:00".into(),
            }],
            dnd_until_ms: None,
        }
    }

    #[test]
    fn an_overnight_window_covers_the_evening_and_the_next_morning_in_local_time() {
        // Sunday night only (local UTC+1).
        let s = nights(&[0]);
        // Sunday 21:30 UTC = 22:30 local Sunday: quiet.
        assert!(s.is_quiet(MONDAY_MS - 2 * HOUR - HOUR / 2));
        // Sunday 20:30 UTC = 21:30 local: not yet.
        assert!(!s.is_quiet(MONDAY_MS - 3 * HOUR - HOUR / 2));
        // Monday 05:59 UTC = 06:59 local Monday: still Sunday's window.
        assert!(s.is_quiet(MONDAY_MS + 6 * HOUR - 60_000));
        // Monday 06:00 UTC = 07:00 local: over.
        assert!(!s.is_quiet(MONDAY_MS + 6 * HOUR));
        // Monday 21:30 UTC = 22:30 local Monday: Monday is not listed.
        assert!(!s.is_quiet(MONDAY_MS + 21 * HOUR + HOUR / 2));
    }

    #[test]
    fn a_whole_day_and_the_manual_switch() {
        let s = QuietSettings {
            utc_offset_min: 0,
            schedule: vec![Window {
                days: vec![1],
                start: "00:00".into(),
                end: "24:00".into(),
            }],
            dnd_until_ms: Some(MONDAY_MS - HOUR),
        };
        assert!(s.is_quiet(MONDAY_MS));
        assert!(s.is_quiet(MONDAY_MS + 24 * HOUR - 1));
        assert!(!s.is_quiet(MONDAY_MS + 24 * HOUR));
        // The switch ended an hour before Monday.
        assert!(s.is_quiet(MONDAY_MS - 2 * HOUR));
        assert!(!s.is_quiet(MONDAY_MS - HOUR));
        assert!(!QuietSettings::default().is_quiet(MONDAY_MS));
    }

    #[test]
    fn validation_names_the_field() {
        let now = MONDAY_MS;
        assert_eq!(nights(&[0, 6]).validate(now), Ok(()));
        let mut s = nights(&[7]);
        assert_eq!(s.validate(now), Err(QuietError::BadDays(0)));
        s = nights(&[]);
        assert_eq!(s.validate(now), Err(QuietError::BadDays(0)));
        s = nights(&[1]);
        s.schedule[0].start = "7:00".into();
        assert_eq!(s.validate(now), Err(QuietError::BadTime(0)));
        s.schedule[0].start = "24:00".into();
        assert_eq!(s.validate(now), Err(QuietError::BadTime(0)));
        s.schedule[0].start = "07:00".into();
        assert_eq!(s.validate(now), Err(QuietError::EmptyWindow(0)));
        assert_eq!(QuietError::EmptyWindow(0).field(), "schedule[0]");
        s = nights(&[1]);
        s.utc_offset_min = 15 * 60;
        assert_eq!(s.validate(now), Err(QuietError::BadOffset));
        s = nights(&[1]);
        s.schedule = vec![s.schedule[0].clone(); MAX_WINDOWS + 1];
        assert_eq!(s.validate(now), Err(QuietError::TooManyWindows));
        s = nights(&[1]);
        s.dnd_until_ms = Some(now + MAX_DND_MS + 1);
        assert_eq!(s.validate(now).map_err(|e| e.code()), Err("too_far"));
    }
}
