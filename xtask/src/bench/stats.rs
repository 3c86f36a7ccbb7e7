//! Medians, maxima and the client's outage from ping's replies.

/// Median and maximum; None when empty.
pub(crate) fn median_max(v: &[f64]) -> Option<(f64, f64)> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    let med = if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    };
    Some((med, s[n - 1]))
}

/// ping -D lines: `[1795000000.123456] 64 bytes from 192.0.2.100: icmp_seq=5 ...`.
pub(crate) fn ping_replies(text: &str) -> Vec<f64> {
    text.lines()
        .filter(|l| l.contains(" bytes from "))
        .filter_map(|l| {
            l.strip_prefix('[')
                .and_then(|r| r.split(']').next())
                .and_then(|t| t.parse().ok())
        })
        .collect()
}

/// The longest gap between consecutive replies at or after `from`,
/// counting from the last reply before `from`: the client's outage.
pub(crate) fn longest_reply_gap(replies: &[f64], from: f64) -> Option<f64> {
    let before = replies
        .iter()
        .copied()
        .filter(|t| *t < from)
        .fold(None, |a: Option<f64>, t| Some(a.map_or(t, |a| a.max(t))))?;
    let mut after: Vec<f64> = replies.iter().copied().filter(|t| *t >= from).collect();
    after.sort_by(f64::total_cmp);
    if after.is_empty() {
        return None;
    }
    let mut prev = before;
    let mut worst = 0.0f64;
    for t in after {
        worst = worst.max(t - prev);
        prev = t;
    }
    Some(worst)
}
