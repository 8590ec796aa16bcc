//! Run status badges, in one place: every status differs by colour, icon and words, so
//! Failed never looks like Completed (to anyone, colour-blind or not). The icon is
//! decoration (`aria-hidden`); the words carry the meaning. Rendered by
//! `templates/run_badge.html`; pages put a badge in with `{{ badge|safe }}`.

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
    /// The badge of a run status (`runs.status`, or `needs_mapping`).
    pub fn of(status: &str) -> Badge {
        let (tone, icon, words) = match status {
            "completed" => ("ok", "✓", "Completed"),
            "completed_with_errors" => ("warn", "⚠", "Completed with errors"),
            "failed" => ("err", "✕", "Failed"),
            "needs_review" => ("review", "⏸", "Needs Review"),
            "needs_mapping" => ("mapping", "⇄", "Needs mapping"),
            "in_progress" => ("busy", "↻", "In progress"),
            "queued" => ("busy", "…", "Queued"),
            "cancelled" => ("off", "⊘", "Cancelled"),
            _ => ("off", "?", "Unknown"),
        };
        Badge { tone, icon, words }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [&str; 8] = [
        "completed",
        "completed_with_errors",
        "failed",
        "needs_review",
        "needs_mapping",
        "in_progress",
        "queued",
        "cancelled",
    ];

    #[test]
    fn final_statuses_differ_by_colour_icon_and_words() {
        let finals = [
            "completed",
            "completed_with_errors",
            "failed",
            "needs_review",
            "needs_mapping",
            "cancelled",
        ];
        for (i, a) in finals.iter().enumerate() {
            for b in &finals[i + 1..] {
                let (x, y) = (Badge::of(a), Badge::of(b));
                assert_ne!(x.tone, y.tone, "{a} and {b} share a colour");
                assert_ne!(x.icon, y.icon, "{a} and {b} share an icon");
                assert_ne!(x.words, y.words, "{a} and {b} share words");
            }
        }
        // Every status has words of its own.
        let words: std::collections::HashSet<_> = ALL.iter().map(|s| Badge::of(s).words).collect();
        assert_eq!(words.len(), ALL.len());
    }

    #[test]
    fn the_icon_is_hidden_from_screen_readers_and_the_words_are_read() {
        let html = Badge::of("failed").render().unwrap();
        assert!(html.contains(r#"aria-hidden="true">✕</span>"#), "{html}");
        assert!(html.contains("Failed"), "{html}");
        assert!(html.contains("badge-err"), "{html}");
        assert_eq!(Badge::of("completed").words, "Completed");
    }
}
