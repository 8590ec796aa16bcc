//! What a teacher may see and do for the students of their classes: a student's sign-in
//! state and whether the teacher may issue them a new temporary password. Plain Rust.

use super::{PortalRole, Role, UserStatus};
use time::{Duration, OffsetDateTime};

/// A student's password as their teacher sees it (never the password itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInState {
    /// No password was ever issued: they cannot sign in yet.
    NoPassword,
    /// A temporary password waits for its one sign-in.
    TemporaryPending,
    /// The temporary password was used to sign in, and no own password chosen yet.
    TemporaryUsed,
    /// The temporary password went unused past its expiry.
    TemporaryExpired,
    /// They chose their own password.
    OwnPassword,
}

impl SignInState {
    pub fn of(
        has_password: bool,
        temporary: bool,
        set_at: Option<OffsetDateTime>,
        used_at: Option<OffsetDateTime>,
        now: OffsetDateTime,
        expiry: Duration,
    ) -> SignInState {
        if !has_password {
            SignInState::NoPassword
        } else if !temporary {
            SignInState::OwnPassword
        } else if used_at.is_some() {
            SignInState::TemporaryUsed
        } else if set_at.is_none_or(|at| now - at > expiry) {
            // The same rule sign-in applies (`web::login`): no date counts as expired.
            SignInState::TemporaryExpired
        } else {
            SignInState::TemporaryPending
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            SignInState::NoPassword => "No password yet",
            SignInState::TemporaryPending => "Temporary password pending",
            SignInState::TemporaryUsed => "Temporary password used, own password not chosen",
            SignInState::TemporaryExpired => "Temporary password expired",
            SignInState::OwnPassword => "Own password",
        }
    }

    /// Whether a teacher may issue a new temporary password: only while the student has
    /// none of their own (an own password is theirs; only an administrator resets it).
    pub fn teacher_may_reset(self) -> bool {
        self != SignInState::OwnPassword
    }
}

/// Whether an account is a student a teacher may help at all: a plain (non-admin) account
/// with the Student role that teaches no class. Anyone else is not the teacher's to touch,
/// and is answered as if not there.
pub fn is_helpable_student(role: Role, portal_role: PortalRole, teaches: bool) -> bool {
    role == Role::Student && portal_role == PortalRole::User && !teaches
}

/// Why a teacher's reset is refused for a student they may otherwise help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetRefusal {
    Inactive,
    OwnPassword,
}

/// A teacher's reset of a helpable student's temporary password: allowed, or why not.
pub fn may_reset(status: UserStatus, state: SignInState) -> Result<(), ResetRefusal> {
    if status != UserStatus::Active {
        Err(ResetRefusal::Inactive)
    } else if !state.teacher_may_reset() {
        Err(ResetRefusal::OwnPassword)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAYS: Duration = Duration::days(90);

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
    }

    #[test]
    fn sign_in_states_follow_the_stored_columns() {
        let n = now();
        let recent = Some(n - Duration::days(3));
        let old = Some(n - Duration::days(91));
        let s = |has, temp, set, used| SignInState::of(has, temp, set, used, n, DAYS);
        assert_eq!(s(false, false, None, None), SignInState::NoPassword);
        assert_eq!(s(true, false, old, None), SignInState::OwnPassword);
        assert_eq!(s(true, true, recent, None), SignInState::TemporaryPending);
        assert_eq!(s(true, true, old, None), SignInState::TemporaryExpired);
        assert_eq!(s(true, true, None, None), SignInState::TemporaryExpired);
        assert_eq!(s(true, true, recent, recent), SignInState::TemporaryUsed);
        // Exactly 90 days is not yet past the expiry (sign-in uses `>` too).
        assert_eq!(
            s(true, true, Some(n - DAYS), None),
            SignInState::TemporaryPending
        );
    }

    #[test]
    fn a_teacher_resets_only_temporary_or_missing_passwords_of_active_students() {
        for st in [
            SignInState::NoPassword,
            SignInState::TemporaryPending,
            SignInState::TemporaryUsed,
            SignInState::TemporaryExpired,
        ] {
            assert_eq!(may_reset(UserStatus::Active, st), Ok(()), "{st:?}");
            assert_eq!(
                may_reset(UserStatus::Inactive, st),
                Err(ResetRefusal::Inactive)
            );
        }
        assert_eq!(
            may_reset(UserStatus::Active, SignInState::OwnPassword),
            Err(ResetRefusal::OwnPassword)
        );
    }

    #[test]
    fn only_plain_students_who_teach_nothing_are_helpable() {
        assert!(is_helpable_student(Role::Student, PortalRole::User, false));
        assert!(!is_helpable_student(Role::Student, PortalRole::User, true));
        assert!(!is_helpable_student(Role::Teacher, PortalRole::User, false));
        assert!(!is_helpable_student(Role::Staff, PortalRole::User, false));
        assert!(!is_helpable_student(
            Role::Student,
            PortalRole::SchoolAdmin,
            false
        ));
        assert!(!is_helpable_student(
            Role::Student,
            PortalRole::DistrictAdmin,
            false
        ));
    }
}
