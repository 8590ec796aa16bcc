//! Bulk actions on the Users list (issue 16, item 5) in plain Rust: which actions there
//! are, which users each one applies to, and what the confirm step and the result say.
//! The selection is resolved and changed in SQL (`db::bulk`), set-based.

use uuid::Uuid;

/// The most users one selection "on this page" may name (the largest page is 200).
pub const MAX_PAGE_SELECTION: usize = 500;

/// The most temporary passwords one bulk reset issues (each gets a printed login card).
pub const MAX_PASSWORD_RESETS: i64 = 2000;

/// One bulk action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkAction {
    Deactivate,
    Activate,
    Archive,
    Restore,
    ResetPasswords,
    /// Hand the users to another owner (SPEC §4 "Who owns a user": manual or a file source).
    HandTo,
}

pub const ALL: [BulkAction; 6] = [
    BulkAction::Deactivate,
    BulkAction::Activate,
    BulkAction::Archive,
    BulkAction::Restore,
    BulkAction::ResetPasswords,
    BulkAction::HandTo,
];

impl BulkAction {
    pub fn parse(s: &str) -> Option<BulkAction> {
        ALL.into_iter().find(|a| a.as_str() == s.trim())
    }

    /// The form value.
    pub fn as_str(self) -> &'static str {
        match self {
            BulkAction::Deactivate => "deactivate",
            BulkAction::Activate => "activate",
            BulkAction::Archive => "archive",
            BulkAction::Restore => "restore",
            BulkAction::ResetPasswords => "reset_passwords",
            BulkAction::HandTo => "hand_to",
        }
    }

    /// The option's words in the action picker.
    pub fn label(self) -> &'static str {
        match self {
            BulkAction::Deactivate => "Make inactive",
            BulkAction::Activate => "Make active",
            BulkAction::Archive => "Archive",
            BulkAction::Restore => "Restore",
            BulkAction::ResetPasswords => "Reset temporary passwords (print login cards)",
            BulkAction::HandTo => "Hand to owner…",
        }
    }

    /// The audit action each changed user gets: the same code as the one-user button.
    pub fn audit_action(self) -> &'static str {
        match self {
            BulkAction::Deactivate => "user.deactivate",
            BulkAction::Activate => "user.activate",
            BulkAction::Archive => "user.archive",
            BulkAction::Restore => "user.restore",
            BulkAction::ResetPasswords => "user.password_reset",
            BulkAction::HandTo => "user.owner",
        }
    }

    /// Only a district admin may hand users to another owner (as on the user page).
    pub fn district_admins_only(self) -> bool {
        self == BulkAction::HandTo
    }

    /// Whether the action applies to archived users (only Restore does) or to live ones.
    pub fn wants_archived(self) -> bool {
        self == BulkAction::Restore
    }

    /// Whether the admin's own account is left out (nobody locks themselves out, and their
    /// own password is changed on their account page).
    pub fn spares_self(self) -> bool {
        matches!(
            self,
            BulkAction::Deactivate | BulkAction::Archive | BulkAction::ResetPasswords
        )
    }

    /// The confirm step's question, naming the count (`owner`: the new owner's words).
    pub fn question(self, n: i64, owner: Option<&str>) -> String {
        let users = users(n);
        match self {
            BulkAction::Deactivate => format!(
                "Make {users} inactive? They will be signed out and unable to sign in until made active again."
            ),
            BulkAction::Activate => {
                format!("Make {users} active? They will be able to sign in.")
            }
            BulkAction::Archive => format!(
                "Archive {users}? They leave the lists and cannot sign in; their history is kept and they can be restored."
            ),
            BulkAction::Restore => format!("Restore {users} from the archive?"),
            BulkAction::ResetPasswords => format!(
                "Issue {users} a new temporary password? Their current passwords stop working; the login cards are shown once, on the next page."
            ),
            BulkAction::HandTo => format!(
                "Hand {users} to {}? The owner's feed manages them from now on.",
                owner.unwrap_or("another owner")
            ),
        }
    }

    /// The flash after the action.
    pub fn done(self, n: i64, owner: Option<&str>) -> String {
        let users = users(n);
        match self {
            BulkAction::Deactivate => format!("{users} made inactive."),
            BulkAction::Activate => format!("{users} made active."),
            BulkAction::Archive => format!("{users} archived."),
            BulkAction::Restore => format!("{users} restored."),
            BulkAction::ResetPasswords => format!("{users} issued a temporary password."),
            BulkAction::HandTo => {
                format!("{users} handed to {}.", owner.unwrap_or("another owner"))
            }
        }
    }
}

/// "1 user", "125 users".
pub fn users(n: i64) -> String {
    if n == 1 {
        "1 user".to_string()
    } else {
        format!("{n} users")
    }
}

/// What a bulk form selected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// The users ticked on the page.
    Ids(Vec<Uuid>),
    /// Every user the list's search and filters select.
    AllMatching,
}

/// Read the form's selection: `all` (`"1"`: every user matching) or the ticked ids. Ids that
/// are not UUIDs are refused, as is an empty or oversized selection.
pub fn selection(all: bool, ids: &[String]) -> Result<Selection, String> {
    if all {
        return Ok(Selection::AllMatching);
    }
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let id = Uuid::parse_str(id.trim()).map_err(|_| format!("{id:?} is not a user id"))?;
        if !out.contains(&id) {
            out.push(id);
        }
    }
    if out.is_empty() {
        return Err("select at least one user (tick them, or choose all matching)".into());
    }
    if out.len() > MAX_PAGE_SELECTION {
        return Err(format!(
            "at most {MAX_PAGE_SELECTION} users can be ticked; choose \"all matching\" instead"
        ));
    }
    Ok(Selection::Ids(out))
}

/// How the selection's users split for an action: how many it changes, and how many it
/// leaves (already in that state, an admin account a school admin cannot change, a user a
/// live sync owns for a hand-over, the admin's own account).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Split {
    pub selected: i64,
    pub eligible: i64,
}

impl Split {
    pub fn left(&self) -> i64 {
        self.selected - self.eligible
    }

    /// "5 of the 130 selected are left as they are (already in that state, or not yours to change)."
    pub fn left_note(&self) -> Option<String> {
        (self.left() > 0).then(|| {
            format!(
                "{} of the {} selected {} left as they are (already so, or not yours to change).",
                self.left(),
                self.selected,
                if self.left() == 1 { "is" } else { "are" },
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_round_trip_through_their_form_values() {
        for a in ALL {
            assert_eq!(BulkAction::parse(a.as_str()), Some(a));
        }
        assert_eq!(BulkAction::parse("delete"), None);
    }

    #[test]
    fn the_question_names_the_count() {
        assert!(
            BulkAction::Archive
                .question(125, None)
                .starts_with("Archive 125 users?")
        );
        assert!(
            BulkAction::Restore
                .question(1, None)
                .starts_with("Restore 1 user ")
        );
        assert!(
            BulkAction::HandTo
                .question(3, Some("manual"))
                .contains("Hand 3 users to manual?")
        );
        assert_eq!(
            BulkAction::Deactivate.done(2, None),
            "2 users made inactive."
        );
    }

    #[test]
    fn selections_are_checked() {
        let a = Uuid::now_v7().to_string();
        assert_eq!(selection(true, &[]), Ok(Selection::AllMatching));
        assert!(selection(false, &[]).is_err());
        assert!(selection(false, &["nope".into()]).is_err());
        assert_eq!(
            selection(false, &[a.clone(), a.clone()]),
            Ok(Selection::Ids(vec![Uuid::parse_str(&a).unwrap()]))
        );
        let many: Vec<String> = (0..=MAX_PAGE_SELECTION)
            .map(|_| Uuid::now_v7().to_string())
            .collect();
        assert!(selection(false, &many).is_err());
    }

    #[test]
    fn the_users_left_are_said() {
        let s = Split {
            selected: 130,
            eligible: 125,
        };
        assert_eq!(s.left(), 5);
        assert!(
            s.left_note()
                .unwrap()
                .starts_with("5 of the 130 selected are")
        );
        assert_eq!(
            Split {
                selected: 3,
                eligible: 3
            }
            .left_note(),
            None
        );
    }
}
