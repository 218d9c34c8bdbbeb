//! Whether a text is a date a `date` field of an index reads, for the formats an index
//! template usually gives (`yyyy-MM-dd'T'HH:mm:ss.SSSSSSZ||strict_date_optional_time||
//! epoch_millis`): patterns of `y M d H m s S Z X` letters, quoted literals and punctuation,
//! and the built-in names `strict_date_optional_time`, `date_optional_time`, `epoch_millis`
//! and `epoch_second`. A list with a format this does not know says nothing (`None`): the
//! server alone can tell.

/// One piece of a pattern.
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    /// Exactly this many digits, at most this value.
    Digits(usize, u32),
    /// One to nine digits (a fraction of a second, `S`).
    Fraction(usize),
    /// An offset: `Z`, or a sign and hours and minutes, with or without a colon.
    Offset,
    /// This text as it is.
    Literal(String),
}

/// One format of a `format` list.
#[derive(Debug, Clone, PartialEq)]
enum Format {
    Pattern(Vec<Piece>),
    OptionalTime { strict: bool },
    Epoch,
}

/// The formats of a mapping's `format` (`a||b||c`), or `None` when one is not known here.
fn parse_list(list: &str) -> Option<Vec<Format>> {
    list.split("||").map(|f| parse_one(f.trim())).collect()
}

fn parse_one(format: &str) -> Option<Format> {
    match format {
        "strict_date_optional_time" | "strict_date_optional_time_nanos" => {
            return Some(Format::OptionalTime { strict: true });
        }
        "date_optional_time" => return Some(Format::OptionalTime { strict: false }),
        "epoch_millis" | "epoch_second" => return Some(Format::Epoch),
        _ => {}
    }
    let mut pieces = Vec::new();
    let chars: Vec<char> = format.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let run = chars[i..].iter().take_while(|&&x| x == c).count();
        match c {
            '\'' => {
                let end = chars[i + 1..].iter().position(|&x| x == '\'')? + i + 1;
                pieces.push(Piece::Literal(chars[i + 1..end].iter().collect()));
                i = end + 1;
                continue;
            }
            'y' | 'u' if run == 4 => pieces.push(Piece::Digits(4, 9999)),
            'M' if run == 2 => pieces.push(Piece::Digits(2, 12)),
            'd' if run == 2 => pieces.push(Piece::Digits(2, 31)),
            'H' if run == 2 => pieces.push(Piece::Digits(2, 23)),
            'm' if run == 2 => pieces.push(Piece::Digits(2, 59)),
            's' if run == 2 => pieces.push(Piece::Digits(2, 59)),
            'S' if run <= 9 => pieces.push(Piece::Fraction(run)),
            'Z' | 'X' | 'x' => pieces.push(Piece::Offset),
            // Letters not read here, optional sections, digits (a version prefix such as
            // `8`): the server alone can tell.
            c if c.is_ascii_alphanumeric() || "[]{}#".contains(c) => return None,
            c => pieces.push(Piece::Literal(c.to_string())),
        }
        i += run;
    }
    Some(Format::Pattern(pieces))
}

/// Reads `n` digits at the start of `s`, at most `max`; the rest.
fn digits(s: &str, n: usize, max: u32) -> Option<&str> {
    let (head, rest) = s.split_at_checked(n)?;
    let v: u32 = head
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| head.parse().ok())??;
    (v <= max).then_some(rest)
}

/// Reads an offset (`Z`, `+hh`, `+hhmm`, `+hh:mm`) at the start of `s`; the rest.
fn offset(s: &str) -> Option<&str> {
    if let Some(rest) = s.strip_prefix('Z') {
        return Some(rest);
    }
    let rest = s.strip_prefix(['+', '-'])?;
    let rest = digits(rest, 2, 23)?;
    if rest.is_empty() {
        return Some(rest);
    }
    let rest = rest.strip_prefix(':').unwrap_or(rest);
    digits(rest, 2, 59)
}

fn matches_pattern(pieces: &[Piece], mut s: &str) -> bool {
    for piece in pieces {
        let rest = match piece {
            Piece::Digits(n, max) => digits(s, *n, *max),
            Piece::Fraction(n) => digits(s, *n, u32::MAX),
            Piece::Offset => offset(s),
            Piece::Literal(text) => s.strip_prefix(text.as_str()),
        };
        match rest {
            Some(rest) => s = rest,
            None => return false,
        }
    }
    s.is_empty()
}

/// `yyyy-MM-dd`, then optionally `T` (or `t`, or with `date_optional_time` a space) and
/// `HH[:mm[:ss[.fraction]]]`, then optionally an offset.
fn matches_optional_time(s: &str, strict: bool) -> bool {
    // The year, then optionally the month, then optionally the day.
    let Some(mut rest) = digits(s, 4, 9999) else {
        return false;
    };
    for max in [12, 31] {
        let Some(after) = rest.strip_prefix('-') else {
            break;
        };
        match date_part(after, max, strict) {
            Some(r) => rest = r,
            None => return false,
        }
    }
    if rest.is_empty() {
        return true;
    }
    let Some(time) = rest
        .strip_prefix('T')
        .or_else(|| (!strict).then(|| rest.strip_prefix(['t', ' '])).flatten())
    else {
        return false;
    };
    let Some(mut rest) = digits(time, 2, 23) else {
        return false;
    };
    for _ in 0..2 {
        match rest.strip_prefix(':').and_then(|r| digits(r, 2, 59)) {
            Some(r) => rest = r,
            None => break,
        }
    }
    if let Some(fraction) = rest.strip_prefix(['.', ',']) {
        let n = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 || n > 9 {
            return false;
        }
        rest = &fraction[n..];
    }
    rest.is_empty() || offset(rest).is_some_and(str::is_empty)
}

/// A month or a day (1 to `max`) at the start of `s`: two digits, or one or two when not
/// `strict`; the rest.
fn date_part(s: &str, max: u32, strict: bool) -> Option<&str> {
    let n = s.bytes().take_while(u8::is_ascii_digit).count();
    let ok = if strict { n == 2 } else { (1..=2).contains(&n) };
    let v: u32 = s[..n].parse().ok()?;
    (ok && (1..=max).contains(&v)).then(|| &s[n..])
}

fn matches_epoch(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.bytes().all(|b| b.is_ascii_digit())
}

/// Whether a `date` field with the `format` list (`None`: Elasticsearch's default,
/// `strict_date_optional_time||epoch_millis`) reads the text `s`: `None` when a format of the
/// list is not known here.
pub fn reads(format: Option<&str>, s: &str) -> Option<bool> {
    let formats = parse_list(format.unwrap_or("strict_date_optional_time||epoch_millis"))?;
    Some(formats.iter().any(|f| match f {
        Format::Pattern(pieces) => matches_pattern(pieces, s),
        Format::OptionalTime { strict } => matches_optional_time(s, *strict),
        Format::Epoch => matches_epoch(s),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = "yyyy-MM-dd'T'HH:mm:ss.SSSSSSZ||strict_date_optional_time||epoch_millis";
    const SQL: &str = "yyyy-MM-dd HH:mm:ss.SSSSSS||strict_date_optional_time||epoch_millis";

    #[test]
    fn the_shipped_template_formats_read_what_elasticsearch_reads() {
        for good in [
            "2025-07-19T12:34:56.123456+0000",
            "2025-07-19T12:34:56Z",
            "2025-07-19",
            "2025-07-19T12:34:56.1+02:00",
            "1752928496123",
        ] {
            assert_eq!(reads(Some(SEED), good), Some(true), "{good}");
        }
        for bad in [
            "2025-07-19 12:34:56.123456+0000",
            "2025-13-19T12:34:56Z",
            "19/07/2025",
            "2025-07-19T25:00:00Z",
            "",
            "yesterday",
        ] {
            assert_eq!(reads(Some(SEED), bad), Some(false), "{bad}");
        }
        assert_eq!(reads(Some(SQL), "2025-07-19 12:34:56.123456"), Some(true));
        assert_eq!(reads(Some(SQL), "2025-07-19 12:34:56"), Some(false));
        assert_eq!(reads(None, "2025-07-19T12:34:56Z"), Some(true));
        assert_eq!(reads(Some("dd.MM.yyyy"), "19.07.2025"), Some(true));
    }

    #[test]
    fn a_list_with_a_format_not_known_here_says_nothing() {
        assert_eq!(reads(Some("basic_date||epoch_millis"), "x"), None);
        assert_eq!(reads(Some("EEE, dd MMM yyyy"), "x"), None);
        assert_eq!(reads(Some("yyyy-MM-dd['T'HH:mm:ss]"), "x"), None);
        assert_eq!(reads(Some("8yyyy-MM-dd"), "x"), None);
    }

    #[test]
    fn dates_with_a_year_and_month_only_and_lenient_digits_are_read() {
        assert_eq!(reads(None, "2025-07"), Some(true));
        assert_eq!(reads(None, "2025"), Some(true));
        assert_eq!(reads(None, "2025-7-1"), Some(false));
        assert_eq!(reads(Some("date_optional_time"), "2025-7-1"), Some(true));
        assert_eq!(reads(None, "2025-00-10"), Some(false));
    }
}
