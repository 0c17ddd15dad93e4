//! Numbers in human units: `40.4 MB`, `1.2 ms`, `52.2 k`. Three significant digits at most (one
//! decimal below 100 of the unit, none above); zero prints as `0`. Decimal (SI) prefixes, as
//! network traffic is counted.

/// `value` scaled to the largest of `prefixes` (each 1000 times the previous) that keeps it at
/// least 1, with its prefix.
fn scaled(value: f64, prefixes: &[&str]) -> (f64, usize) {
    let mut v = value;
    let mut i = 0;
    while v.abs() >= 999.95 && i + 1 < prefixes.len() {
        v /= 1000.0;
        i += 1;
    }
    (v, i)
}

fn digits(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1000.0 {
        format!("{v:.0}")
    } else if v.abs() < 99.95 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

/// A byte count: `812 B`, `40.4 MB`.
pub fn bytes(n: u64) -> String {
    if n == 0 {
        return "0".into();
    }
    const P: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let (v, i) = scaled(n as f64, &P);
    if i == 0 { format!("{n} B") } else { format!("{} {}", digits(v), P[i]) }
}

/// A count (gates, ReLUs, rounds): `812`, `52.2 k`, `1.3 M`.
pub fn count(n: u64) -> String {
    const P: [&str; 7] = ["", "k", "M", "G", "T", "P", "E"];
    let (v, i) = scaled(n as f64, &P);
    if i == 0 { n.to_string() } else { format!("{} {}", digits(v), P[i]) }
}

/// A duration in seconds: `850 µs`, `1.2 ms`, `3.1 s`, `2.5 min`. Negative or not finite
/// prints as `-`.
pub fn seconds(s: f64) -> String {
    if !s.is_finite() || s < 0.0 {
        return "-".into();
    }
    if s == 0.0 {
        return "0".into();
    }
    let (v, unit) = if s < 1e-3 {
        (s * 1e6, "µs")
    } else if s < 0.99995 {
        (s * 1e3, "ms")
    } else if s < 99.95 {
        (s, "s")
    } else {
        (s / 60.0, "min")
    };
    // 999.96 µs rounds to "1000 µs": say 1.0 ms instead.
    let text = digits(v);
    if text == "1000" && unit == "µs" { "1.0 ms".into() } else { format!("{text} {unit}") }
}

/// An integer with thousands separators: `40,407,083` (for the few exact numbers a person reads).
pub fn grouped(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_read_like_a_person_writes_them() {
        assert_eq!(bytes(0), "0");
        assert_eq!(bytes(812), "812 B");
        assert_eq!(bytes(40_407_083), "40.4 MB");
        assert_eq!(bytes(999_999), "1.0 MB");
        assert_eq!(bytes(204_840), "205 kB");
        assert_eq!(count(52_224), "52.2 k");
        assert_eq!(count(163_008), "163 k");
        assert_eq!(count(12), "12");
        assert_eq!(seconds(0.0012), "1.2 ms");
        assert_eq!(seconds(3.1), "3.1 s");
        assert_eq!(seconds(0.000_85), "850 µs");
        assert_eq!(seconds(0.999_99), "1.0 s");
        assert_eq!(seconds(150.0), "2.5 min");
        assert_eq!(seconds(f64::NAN), "-");
        assert_eq!(grouped(40_407_083), "40,407,083");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
    }
}
