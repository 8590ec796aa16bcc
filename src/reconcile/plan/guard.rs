//! The mass-change guard (SPEC §4): a truncated or garbled feed must never wipe a district.

use crate::domain::{Scope, Source};

use super::{Review, Rules};

/// `Some` when the plan archives or updates too much of the source and nobody approved it.
///
/// Archives trip when `would_archive > archive_pct % of source_total` and
/// `would_archive >= archive_min`. Updates trip when `would_update > update_pct %` and
/// `would_update >= archive_min`: the same minimum applies, so a district with eight users
/// can fix all of them in one upload. Restores and creates never trip it. A source with no
/// current users (a first upload) never trips it.
pub(super) fn review(
    rules: &Rules,
    source: &Source,
    source_total: usize,
    would_archive: usize,
    would_update: usize,
) -> Option<Review> {
    if rules.approved || source_total == 0 {
        return None;
    }
    let pct = |n: usize| n as f64 * 100.0 / source_total as f64;
    let label = match rules.scope {
        Scope::District => "the district (file and manual users)".to_string(),
        Scope::Source | Scope::Patch => source_label(source),
    };
    let mut reasons = Vec::new();
    if would_archive >= rules.archive_min && pct(would_archive) > rules.archive_pct {
        reasons.push(format!(
            "would archive {} of {} users of {label} ({})",
            thousands(would_archive),
            thousands(source_total),
            percent(pct(would_archive), rules.archive_pct),
        ));
    }
    if would_update >= rules.archive_min && pct(would_update) > rules.update_pct {
        reasons.push(format!(
            "would update {} of {} users of {label} ({})",
            thousands(would_update),
            thousands(source_total),
            percent(pct(would_update), rules.update_pct),
        ));
    }
    (!reasons.is_empty()).then(|| Review {
        reason: reasons.join("; "),
        would_archive,
        would_update,
        source_total,
    })
}

/// How a source is named to an admin: the file name, or the connection.
fn source_label(source: &Source) -> String {
    match source {
        Source::File(name) => name.clone(),
        other => other.to_string(),
    }
}

/// `1234567` → `1,234,567`.
pub(super) fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A whole percentage, or one decimal when rounding would hide that it passed the threshold
/// (`10.4%`, not `10%`, against a 10% threshold).
fn percent(value: f64, threshold: f64) -> String {
    let whole = value.round();
    if whole <= threshold {
        format!("{value:.1}%")
    } else {
        format!("{whole}%")
    }
}
