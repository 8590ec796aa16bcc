//! Run status badges, in one place: every status differs by colour, icon and words, so
//! Failed never looks like Completed (to anyone, colour-blind or not). The icon is
//! decoration (`aria-hidden`); the words carry the meaning. Rendered by
//! `templates/run_badge.html`; pages put a badge in with `{{ badge|safe }}`.

use crate::domain::RunStatus;
use askama::Template;

/// A status badge: its CSS modifier, icon and words.
#[derive(Debug, Clone, PartialEq, Eq, Template)]
#[template(path = "run_badge.html")]
pub struct Badge {
    /// The `badge-<tone>` class (colour).
    pub tone: &'static str,
    pub icon: &'static str,
    pub words: &'static str,
}

impl Badge {
    /// The badge of a run status; its words are the status's label.
    pub fn of(status: RunStatus) -> Badge {
        let (tone, icon) = match status {
            RunStatus::Completed => ("ok", "✓"),
            RunStatus::CompletedWithErrors => ("warn", "⚠"),
            RunStatus::Failed => ("err", "✕"),
            RunStatus::NeedsReview => ("review", "⏸"),
            RunStatus::NeedsMapping => ("mapping", "⇄"),
            RunStatus::InProgress => ("busy", "↻"),
            RunStatus::Queued => ("busy", "…"),
            RunStatus::Cancelled => ("off", "⊘"),
        };
        Badge {
            tone,
            icon,
            words: status.label(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_statuses_differ_by_colour_icon_and_words() {
        let finals = [
            RunStatus::Completed,
            RunStatus::CompletedWithErrors,
            RunStatus::Failed,
            RunStatus::NeedsReview,
            RunStatus::NeedsMapping,
            RunStatus::Cancelled,
        ];
        for (i, a) in finals.iter().enumerate() {
            for b in &finals[i + 1..] {
                let (x, y) = (Badge::of(*a), Badge::of(*b));
                assert_ne!(x.tone, y.tone, "{a} and {b} share a colour");
                assert_ne!(x.icon, y.icon, "{a} and {b} share an icon");
                assert_ne!(x.words, y.words, "{a} and {b} share words");
            }
        }
        // Every status has words of its own.
        let words: std::collections::HashSet<_> =
            RunStatus::ALL.iter().map(|s| Badge::of(*s).words).collect();
        assert_eq!(words.len(), RunStatus::ALL.len());
    }

    #[test]
    fn the_icon_is_hidden_from_screen_readers_and_the_words_are_read() {
        let html = Badge::of(RunStatus::Failed).render().unwrap();
        assert!(html.contains(r#"aria-hidden="true">✕</span>"#), "{html}");
        assert!(html.contains("Failed"), "{html}");
        assert!(html.contains("badge-err"), "{html}");
        assert_eq!(Badge::of(RunStatus::Completed).words, "Completed");
    }
}
