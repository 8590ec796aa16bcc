//! The mass-change guard (SPEC §4): a truncated or garbled feed must never wipe a district.

use crate::domain::{Scope, Source};

use super::planner::SchoolSweep;
use super::{Review, Rules};

/// `Some` when the plan archives or updates too much of the source and nobody approved it.
///
/// Archives trip when `would_archive > archive_pct % of source_total` and
/// `would_archive >= archive_min`. Updates trip when `would_update > update_pct %` and
/// `would_update >= archive_min`: the same minimum applies, so a district with eight users
/// can fix all of them in one upload. Restores and creates never trip it. A source with no
/// current users (a first upload) never trips it.
///
/// Per school: a school that had at least `school_min` users in scope and would lose more than
/// `school_pct` % of them trips it too, named (by its name when known) — so one emptied
/// school inside an otherwise full file is caught. When the whole-source archive rule trips
/// already, its reason stands alone (the schools are still listed in [`Review::schools`]).
pub(super) fn review(
    rules: &Rules,
    source: &Source,
    source_total: usize,
    would_archive: usize,
    would_update: usize,
    schools: &[SchoolSweep],
) -> Option<Review> {
    if rules.approved || source_total == 0 {
        return None;
    }
    let emptied: Vec<&SchoolSweep> = schools
        .iter()
        .filter(|s| {
            s.total >= rules.school_min.max(1)
                && s.archived as f64 * 100.0 / s.total as f64 > rules.school_pct
        })
        .collect();
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
    if reasons.is_empty() && !emptied.is_empty() {
        let named: Vec<String> = emptied
            .iter()
            .map(|s| {
                let name = rules
                    .names
                    .schools
                    .get(&s.external_id)
                    .map_or(s.external_id.as_str(), String::as_str);
                format!(
                    "{} of {} users of school {name} ({})",
                    thousands(s.archived),
                    thousands(s.total),
                    percent(s.archived as f64 * 100.0 / s.total as f64, rules.school_pct),
                )
            })
            .collect();
        reasons.push(format!("would archive {}", named.join(", ")));
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
        schools: emptied
            .iter()
            .map(|s| {
                rules
                    .names
                    .schools
                    .get(&s.external_id)
                    .cloned()
                    .unwrap_or_else(|| s.external_id.clone())
            })
            .collect(),
    })
}

/// How a source is named to an admin: the file name, or the connection.
fn source_label(source: &Source) -> String {
    match source {
        Source::File(name) => name.to_string(),
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
