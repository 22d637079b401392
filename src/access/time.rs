//! The time of an access log line as nginx's `$time_local` writes it
//! (`10/Oct/2000:13:55:36 +0000`), in UTC, computed without the C library.

use std::time::{SystemTime, UNIX_EPOCH};

/// Bytes of a formatted time.
pub const LEN: usize = 26;

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// The last second formatted, kept by each writer of lines: most lines share their second
/// with the one before.
#[derive(Debug, Clone, Copy)]
pub struct Stamp {
    second: u64,
    text: [u8; LEN],
}

impl Default for Stamp {
    fn default() -> Stamp {
        Stamp {
            second: u64::MAX,
            text: [b' '; LEN],
        }
    }
}

impl Stamp {
    /// The time now, formatted.
    pub fn now(&mut self) -> &[u8; LEN] {
        let second = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.at(second)
    }

    /// `second` (since the Unix epoch), formatted.
    pub fn at(&mut self, second: u64) -> &[u8; LEN] {
        if second != self.second {
            self.second = second;
            self.text = format(second);
        }
        &self.text
    }
}

/// `second` since the Unix epoch as `DD/Mon/YYYY:HH:MM:SS +0000`.
pub fn format(second: u64) -> [u8; LEN] {
    let days = second / 86_400;
    let in_day = second % 86_400;
    let (year, month, day) = civil_from_days(days as i64);
    let mut out = [0u8; LEN];
    let two = |out: &mut [u8], at: usize, n: u64| {
        out[at] = b'0' + (n / 10 % 10) as u8;
        out[at + 1] = b'0' + (n % 10) as u8;
    };
    two(&mut out, 0, u64::from(day));
    out[2] = b'/';
    out[3..6].copy_from_slice(MONTHS[usize::from(month - 1)]);
    out[6] = b'/';
    let y = year.clamp(0, 9999) as u64;
    two(&mut out, 7, y / 100);
    two(&mut out, 9, y % 100);
    out[11] = b':';
    two(&mut out, 12, in_day / 3600);
    out[14] = b':';
    two(&mut out, 15, in_day / 60 % 60);
    out[17] = b':';
    two(&mut out, 18, in_day % 60);
    out[20..].copy_from_slice(b" +0000");
    out
}

/// Year, month (1–12) and day (1–31) of `days` after 1970-01-01, in the proleptic Gregorian
/// calendar (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        let f = |s| String::from_utf8(format(s).to_vec()).unwrap();
        assert_eq!(f(0), "01/Jan/1970:00:00:00 +0000");
        // nginx's documentation example, 2000-10-10T13:55:36Z.
        assert_eq!(f(971_186_136), "10/Oct/2000:13:55:36 +0000");
        // A leap day and the last second of a year.
        assert_eq!(f(951_782_400), "29/Feb/2000:00:00:00 +0000");
        assert_eq!(f(1_767_225_599), "31/Dec/2025:23:59:59 +0000");
        let mut stamp = Stamp::default();
        assert_eq!(stamp.at(0), &format(0));
        assert_eq!(stamp.now().len(), LEN);
    }
}
