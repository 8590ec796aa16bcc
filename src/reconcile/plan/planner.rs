//! The per-row work: match, refuse, claim identifiers, create or update; then the sweep of
//! missing users.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};

use compact_str::CompactString;
use uuid::Uuid;

use crate::auth::MIN_PASSWORD_CHARS;
use crate::domain::fold::username_key;
pub use crate::domain::windows::Mark;
use crate::domain::{CurrentUser, CurrentUsers, Field, Grade, IncomingUser, Scope, Source};

use super::index::{Index, fold_case, nonblank};
use super::merge::{explicit_username, merge, overridden, ownership, school_set, sync_label};
use super::username;
use super::{Elsewhere, MatchedBy, NewUser, Outcome, RowExtra, RowFail, RowPlan, Rules, Secrets};

impl Mark {
    pub(super) fn claimed(line: u64) -> Mark {
        Mark::Claimed(u32::try_from(line).unwrap_or(u32::MAX))
    }
}

/// The three values that must stay unique in a district.
#[derive(Debug, Clone, Copy)]
enum Ident {
    CustomId,
    Email,
    Username,
}

impl Ident {
    fn name(self) -> &'static str {
        match self {
            Ident::CustomId => Field::CustomId.name(),
            Ident::Email => Field::Email.name(),
            Ident::Username => Field::Username.name(),
        }
    }
}

/// New identifier values taken by this run (lower-cased for email and username), with the
/// line that took them. Values a user already holds are not repeated here: the index has them;
/// nor are generated usernames: the generator knows which it gave.
///
/// A feed read as a run reads it carries no custom_id, email or explicit username twice (its
/// reader refuses every duplicate; [`super::Mode::distinct`]): then a row can only take the
/// values it carries itself, so custom_ids and emails are not remembered at all; the feed's
/// explicit usernames are known by their keys ([`super::GivenNames::Keys`]) and only the
/// usernames updated rows change to are claimed here. Otherwise (a plan made in tests) the
/// values live in one string arena, found through three hash tables of 12-byte entries.
#[derive(Default)]
pub(super) struct Claims {
    /// Custom IDs and emails are not remembered (see above).
    distinct: bool,
    hasher: DefaultHashBuilder,
    text: String,
    custom_id: HashTable<Claim>,
    email: HashTable<Claim>,
    username: HashTable<Claim>,
}

/// A claimed value: `text[start..start + len]`, taken by `line`.
#[derive(Clone, Copy)]
struct Claim {
    start: u32,
    len: u32,
    line: u32,
}

impl Claims {
    fn table(&self, what: Ident) -> &HashTable<Claim> {
        match what {
            Ident::CustomId => &self.custom_id,
            Ident::Email => &self.email,
            Ident::Username => &self.username,
        }
    }

    fn value(text: &str, c: Claim) -> &str {
        &text[c.start as usize..(c.start + c.len) as usize]
    }

    /// The line that claimed `key` (already folded as [`key`] folds it).
    fn line(&self, what: Ident, key: &str) -> Option<u64> {
        let hash = self.hasher.hash_one(key);
        self.table(what)
            .find(hash, |c| Self::value(&self.text, *c) == key)
            .map(|c| u64::from(c.line))
    }

    fn take(&mut self, what: Ident, value: &str, line: u64) {
        if self.distinct && !matches!(what, Ident::Username) {
            return;
        }
        let key = key(what, value);
        let hash = self.hasher.hash_one(key.as_ref());
        let (text, hasher) = (&mut self.text, &self.hasher);
        let table = match what {
            Ident::CustomId => &mut self.custom_id,
            Ident::Email => &mut self.email,
            Ident::Username => &mut self.username,
        };
        if table
            .find(hash, |c| Self::value(text, *c) == key.as_ref())
            .is_some()
        {
            return;
        }
        let claim = Claim {
            start: u32::try_from(text.len()).expect("claimed values fit in 4 GiB"),
            len: u32::try_from(key.len()).expect("a value fits in 4 GiB"),
            line: u32::try_from(line).unwrap_or(u32::MAX),
        };
        text.push_str(&key);
        table.insert_unique(hash, claim, |c| {
            hasher.hash_one(&text[c.start as usize..(c.start + c.len) as usize])
        });
    }
}

fn key(what: Ident, value: &str) -> Cow<'_, str> {
    match what {
        Ident::CustomId => Cow::Borrowed(value),
        Ident::Email | Ident::Username => fold_case(value),
    }
}

/// Why a row fails, and the user it is about when one was matched.
struct Refusal {
    message: String,
    user: Option<Uuid>,
}

/// What an accepted row does.
enum Step {
    Create,
    Update(usize),
    /// The row matches a portal admin and changes nothing: unchanged, nobody adopted.
    Keep(usize),
    /// A file row about a sync-owned user that changes nothing: skipped, nothing written.
    Skip(usize),
    Delete(usize),
    /// A `to_be_deleted` record for nobody we know.
    Nothing,
}

/// What [`Planner::finish`] found: the users to archive, the users in scope before the run,
/// and per school (external ID) its users in scope and how many of them would be archived
/// (schools with no archive left out).
pub(super) struct Sweep {
    pub(super) archive: Vec<Uuid>,
    pub(super) scope_total: usize,
    pub(super) schools: Vec<SchoolSweep>,
}

/// One school's share of a sweep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SchoolSweep {
    pub(super) external_id: String,
    pub(super) total: usize,
    pub(super) archived: usize,
}

/// What a plan made window by window carries from one window to the next (`super::window`):
/// everything the planner knows that is not about the window's users.
pub(super) struct Carry {
    claims: Claims,
    usernames: username::Generator,
    given_keys: Vec<u64>,
}

impl Carry {
    /// For a feed its reader checked ([`super::Mode::FEED`]), whose rows give the usernames
    /// with these keys.
    pub(super) fn feed(mut given_keys: Vec<u64>) -> Carry {
        given_keys.sort_unstable();
        given_keys.dedup();
        given_keys.shrink_to_fit();
        Carry {
            claims: Claims {
                distinct: true,
                ..Claims::default()
            },
            usernames: username::Generator::default(),
            given_keys,
        }
    }

    /// Every name the generator may try for these bases (one per row that may create a
    /// user, in row order) while `held` names are taken: the names whose holders a window
    /// must know.
    pub(super) fn probes(&self, bases: &[String], held: impl Fn(&str) -> bool) -> Vec<String> {
        let (claims, given) = (&self.claims, &self.given_keys);
        self.usernames.probe(bases, |candidate| {
            held(candidate)
                || claims.line(Ident::Username, candidate).is_some()
                || (!given.is_empty() && given.binary_search(&username_key(candidate)).is_ok())
        })
    }
}

pub(super) struct Planner<'a> {
    users: &'a CurrentUsers,
    index: Index<'a>,
    source: &'a Source,
    scope: Scope,
    sync_names: &'a HashMap<Uuid, String>,
    elsewhere: &'a Elsewhere,
    /// A file for one school (`super::school`).
    school: Option<&'a super::SchoolOnly>,
    marks: Vec<Mark>,
    claims: Claims,
    usernames: username::Generator,
    /// The feed's explicit usernames as [`super::GivenNames::Keys`], sorted.
    given_keys: Vec<u64>,
    /// Users (positions) archived by `to_be_deleted` rows.
    deleted: Vec<usize>,
}

impl<'a> Planner<'a> {
    pub(super) fn new(
        users: &'a CurrentUsers,
        source: &'a Source,
        rules: &'a Rules,
        distinct: bool,
    ) -> Planner<'a> {
        Planner {
            users,
            index: Index::new(users),
            source,
            scope: rules.scope,
            sync_names: &rules.names.syncs,
            elsewhere: &rules.elsewhere,
            school: rules.school.as_ref(),
            marks: vec![Mark::Free; users.len()],
            claims: Claims {
                distinct,
                ..Claims::default()
            },
            usernames: username::Generator::default(),
            given_keys: Vec::new(),
            deleted: Vec::new(),
        }
    }

    /// A planner for one window of a feed: `marks` are what earlier windows did to its users.
    pub(super) fn resume(
        users: &'a CurrentUsers,
        source: &'a Source,
        rules: &'a Rules,
        carry: Carry,
        marks: Vec<Mark>,
    ) -> Planner<'a> {
        assert_eq!(
            marks.len(),
            users.len(),
            "a mark for every user of the window"
        );
        let mut planner = Planner::new(users, source, rules, true);
        planner.marks = marks;
        planner.claims = carry.claims;
        planner.usernames = carry.usernames;
        planner.given_keys = carry.given_keys;
        planner
    }

    /// The window done: what goes on to the next window, the marks of the window's users,
    /// and the users (positions) its `to_be_deleted` rows archive.
    pub(super) fn suspend(self) -> (Carry, Vec<Mark>, Vec<usize>) {
        let carry = Carry {
            claims: self.claims,
            usernames: self.usernames,
            given_keys: self.given_keys,
        };
        (carry, self.marks, self.deleted)
    }

    /// Usernames the feed gives explicitly and nobody holds yet belong to their rows before
    /// any username is generated, so `john.smith` generated on line 2 cannot take the
    /// `john.smith` that line 90 asks for.
    pub(super) fn reserve_usernames(&mut self, given: super::GivenNames) {
        match given {
            super::GivenNames::Lines(names) => {
                for (line, name) in names {
                    if self.index.by_username(&name).is_none() {
                        self.claims.take(Ident::Username, &name, line);
                    }
                }
            }
            super::GivenNames::Keys(mut keys) => {
                keys.sort_unstable();
                keys.dedup();
                keys.shrink_to_fit();
                self.given_keys = keys;
            }
        }
    }

    /// The user a row refers to, by the matching order, and how it was found. `Ok(None)`:
    /// nobody (a new user).
    fn find(
        &self,
        guid: Option<Uuid>,
        custom_id: Option<&str>,
        email: Option<&str>,
    ) -> Result<Option<(usize, MatchedBy)>, String> {
        if let Some(guid) = guid {
            return match self.index.by_guid(guid) {
                Some(i) => Ok(Some((i, MatchedBy::Guid))),
                None => Err(format!("user_guid {guid} is not a user of this district")),
            };
        }
        if let Some(custom_id) = custom_id {
            return Ok(self
                .index
                .by_custom_id(custom_id)
                .map(|i| (i, MatchedBy::CustomId)));
        }
        if let Some(email) = email {
            return Ok(self.index.by_email(email).map(|i| (i, MatchedBy::Email)));
        }
        Err("the row has no user_guid, custom_id or email to identify the user".to_string())
    }

    /// Keep every user these identifiers resolve to from being archived as missing.
    fn protect(&mut self, guid: Option<Uuid>, custom_id: Option<&str>, email: Option<&str>) {
        let found = [
            guid.and_then(|g| self.index.by_guid(g)),
            custom_id.and_then(|c| self.index.by_custom_id(c)),
            email.and_then(|e| self.index.by_email(e)),
        ];
        for i in found.into_iter().flatten() {
            if self.marks[i] == Mark::Free {
                self.marks[i] = Mark::Protected;
            }
        }
    }

    /// A row validation refused: passed through, its user protected.
    pub(super) fn failed(&mut self, fail: RowFail) -> RowPlan {
        let (custom_id, email) = (nonblank(&fail.custom_id), nonblank(&fail.email));
        let user = self
            .find(fail.user_guid, custom_id, email)
            .ok()
            .flatten()
            .map(|(i, _)| self.users.guid(i));
        self.protect(fail.user_guid, custom_id, email);
        RowPlan::error(fail.line, fail.message, user)
    }

    pub(super) fn row(&mut self, inc: IncomingUser, secrets: &mut dyn Secrets) -> RowPlan {
        let (custom_id, email) = (nonblank(&inc.custom_id), nonblank(&inc.email));
        let matched = match self.find(inc.user_guid, custom_id, email) {
            Ok(Some((_, by))) => Some(by),
            Ok(None) => Some(MatchedBy::New),
            Err(_) => None,
        };
        let checked = self.check(&inc).and_then(|step| {
            let password = match &step {
                Step::Update(i) | Step::Keep(i) | Step::Skip(i) => {
                    self.given_password(&inc, *i, &*secrets)?
                }
                _ => None,
            };
            Ok((step, password))
        });
        let mut plan = match checked {
            Ok((Step::Create, _)) => self.create(inc, secrets),
            Ok((Step::Update(i), password)) => {
                // A row that names its user by user_guid (the master CSV, edited and sent
                // back), or any row of a district-scope file, edits that user in place: it
                // never moves them between feeds.
                let keep_source = self.keeps_source(&inc, i);
                self.update(i, inc, keep_source, password)
            }
            // A portal admin's row that changes nothing (a new password for them is refused).
            Ok((Step::Keep(i), _)) => self.quiet(i, inc.line, Outcome::Unchanged),
            Ok((Step::Skip(i), _)) => self.quiet(i, inc.line, Outcome::Skipped),
            Ok((Step::Delete(i), _)) => self.delete(i, inc.line),
            Ok((Step::Nothing, _)) => {
                return RowPlan::quiet(inc.line, Outcome::Unchanged, None, None);
            }
            Err(refusal) => {
                self.protect(
                    inc.user_guid,
                    nonblank(&inc.custom_id),
                    nonblank(&inc.email),
                );
                return RowPlan::error(inc.line, refusal.message, refusal.user);
            }
        };
        plan.matched_by = matched;
        plan
    }

    /// A row that matched user `i` and writes nothing.
    fn quiet(&mut self, i: usize, line: u64, outcome: Outcome) -> RowPlan {
        self.marks[i] = Mark::claimed(line);
        let user = &self.users.get(i);
        RowPlan::quiet(line, outcome, Some(user.user_guid), Some(&user.username))
    }

    /// Every reason to refuse a row, decided before anything is claimed or generated.
    fn check(&self, inc: &IncomingUser) -> Result<Step, Refusal> {
        if let Some(message) = self.school.and_then(|s| s.refuse_row(inc)) {
            return Err(Refusal {
                message,
                user: None,
            });
        }
        let (custom_id, email) = (nonblank(&inc.custom_id), nonblank(&inc.email));
        let found = self
            .find(inc.user_guid, custom_id, email)
            .map_err(|message| Refusal {
                message,
                user: None,
            })?;
        let Some((i, _)) = found else {
            if inc.to_be_deleted {
                return Ok(Step::Nothing);
            }
            if let Some(p) = inc.password.as_deref()
                && !p.is_empty()
                && p.chars().count() < MIN_PASSWORD_CHARS
            {
                return Err(Refusal {
                    message: short_password(
                        inc.line,
                        ", or leave it blank for a temporary password",
                    ),
                    user: None,
                });
            }
            if let Some(c) = custom_id {
                self.free(Ident::CustomId, c, None, inc.line)?;
            }
            if let Some(e) = email {
                self.free(Ident::Email, e, None, inc.line)?;
            }
            if let Some(name) = explicit_username(inc) {
                self.free(Ident::Username, name, None, inc.line)?;
            }
            return Ok(Step::Create);
        };

        let user = &self.users.get(i);
        let refuse = |message: String| Refusal {
            message,
            user: Some(user.user_guid),
        };
        if let Mark::Claimed(first) = self.marks[i] {
            return Err(refuse(format!("matches the same user as line {first}")));
        }
        if let Some(message) = self.school.and_then(|s| s.refuse_user(inc.line, user)) {
            return Err(refuse(message));
        }
        if inc.to_be_deleted {
            if user.portal_role.is_admin() && self.would_archive(user) {
                return Err(refuse(admin_refusal(
                    inc.line,
                    user,
                    Field::Status.name(),
                    "a feed cannot archive them",
                )));
            }
            return Ok(Step::Delete(i));
        }
        if user.portal_role.is_admin() {
            match self.admin_row(inc, i) {
                Ok(None) => {}
                Ok(Some(step)) => return Ok(step),
                Err(message) => return Err(refuse(message)),
            }
        }
        if let Source::Sync(id) = user.source
            && !self.source.is_sync()
        {
            // A file row about a sync-owned user: not the file's to change. Unchanged (the
            // master CSV sent back), it is skipped; anything else is refused.
            if !user.archived && merge(user, inc.clone(), &user.source).1.is_empty() {
                return Ok(Step::Skip(i));
            }
            return Err(refuse(format!(
                "user is provisioned by roster sync {}; remove them from this file or change them in the sync",
                sync_label(id, self.sync_names)
            )));
        }
        ownership(user, self.source, self.sync_names).map_err(refuse)?;

        // Kept fields are not written (rule 6), so their values are not claimed either.
        let present = inc.present.without(user.kept);
        if present.contains(Field::CustomId)
            && let Some(c) = custom_id
            && user.custom_id.as_deref() != Some(c)
        {
            self.free(Ident::CustomId, c, Some(i), inc.line)?;
        }
        if present.contains(Field::Email)
            && let Some(e) = email
            && user.email.as_deref() != Some(e)
        {
            self.free(Ident::Email, e, Some(i), inc.line)?;
        }
        if let Some(name) = explicit_username(inc)
            && present.contains(Field::Username)
            && name != user.username
        {
            self.free(Ident::Username, name, Some(i), inc.line)?;
        }
        Ok(Step::Update(i))
    }

    /// Rule 4a: a row about a portal admin. `Ok(Some(Keep))` when it changes nothing (their
    /// source is never taken over), `Ok(None)` when it may go on as an ordinary update (it
    /// only changes names, custom_id, schools, grade or position of an admin this feed
    /// already owns, or edits them in place by user_guid), `Err` otherwise.
    fn admin_row(&self, inc: &IncomingUser, i: usize) -> Result<Option<Step>, String> {
        let user = &self.users.get(i);
        if user.archived {
            return Err(admin_refusal(
                inc.line,
                user,
                Field::Status.name(),
                "a feed cannot restore an archived administrator",
            ));
        }
        let (_, changed) = merge(user, inc.clone(), &user.source);
        let changed: Vec<&str> = changed.into_iter().filter(|c| *c != "source_key").collect();
        if changed.is_empty() {
            return Ok(Some(Step::Keep(i)));
        }
        if let Some(column) = ADMIN_LOCKED
            .iter()
            .map(|f| f.name())
            .find(|name| changed.contains(name))
        {
            return Err(admin_refusal(
                inc.line,
                user,
                column,
                &format!("this row would change their {column}"),
            ));
        }
        if user.source != *self.source && !self.keeps_source(inc, i) {
            return Err(admin_refusal(
                inc.line,
                user,
                changed[0],
                &format!("this row would make {} their owner", self.source),
            ));
        }
        Ok(None)
    }

    /// Rule 6a: the password row `inc` gives user `i`, with its fingerprint, when it is to be
    /// set; `None` when the row gives none or the same one as last time.
    fn given_password(
        &self,
        inc: &IncomingUser,
        i: usize,
        secrets: &dyn Secrets,
    ) -> Result<Option<(String, [u8; 32])>, Refusal> {
        let Some(password) = inc.password.as_deref().filter(|p| !p.is_empty()) else {
            return Ok(None);
        };
        let user = &self.users.get(i);
        let fingerprint = secrets.password_fingerprint(user.user_guid, password);
        if user.feed_password_mac.as_deref() == Some(&fingerprint) {
            return Ok(None);
        }
        let refuse = |message: String| Refusal {
            message,
            user: Some(user.user_guid),
        };
        let column = Field::Password.name();
        if user.portal_role.is_admin() {
            return Err(refuse(admin_refusal(
                inc.line,
                user,
                column,
                "a file cannot set their password",
            )));
        }
        if let Source::Sync(id) = user.source
            && !self.source.is_sync()
        {
            return Err(refuse(format!(
                "user is provisioned by roster sync {}; remove them from this file or change them in the sync",
                sync_label(id, self.sync_names)
            )));
        }
        if password.chars().count() < MIN_PASSWORD_CHARS {
            return Err(refuse(short_password(
                inc.line,
                ", or leave it blank to keep their current password",
            )));
        }
        Ok(Some((password.to_string(), fingerprint)))
    }

    /// Would a `to_be_deleted` record of this feed archive `user`?
    fn would_archive(&self, user: &CurrentUser) -> bool {
        user.source == *self.source && !user.archived && !user.prevent_archiving
    }

    /// `value` may become the identifier of user `me` (`None`: a new user) on `line`.
    fn free(&self, what: Ident, value: &str, me: Option<usize>, line: u64) -> Result<(), Refusal> {
        let user = me.map(|i| self.users.guid(i));
        let holder = match what {
            Ident::CustomId => self.index.by_custom_id(value),
            Ident::Email => self.index.by_email(value),
            Ident::Username => self.index.by_username(value),
        };
        if let Some(h) = holder
            && Some(h) != me
        {
            let other = &self.users.get(h);
            let mut notes = Vec::new();
            if !matches!(what, Ident::CustomId)
                && let Some(c) = &other.custom_id
            {
                notes.push(format!("custom_id {c}"));
            }
            if other.archived {
                notes.push("archived".to_string());
            }
            let notes = if notes.is_empty() {
                String::new()
            } else {
                format!(" ({})", notes.join(", "))
            };
            return Err(Refusal {
                message: format!(
                    "{} \"{value}\" is already used by another user{notes}",
                    what.name()
                ),
                user,
            });
        }
        if let Some(other_line) = self.claims.line(what, key(what, value).as_ref())
            && other_line != line
        {
            return Err(Refusal {
                message: format!(
                    "{} \"{value}\" is already used by line {other_line}",
                    what.name()
                ),
                user,
            });
        }
        Ok(())
    }

    fn create(&mut self, inc: IncomingUser, secrets: &mut dyn Secrets) -> RowPlan {
        let line = inc.line;
        let user_guid = secrets.new_guid();
        let username = match explicit_username(&inc) {
            Some(name) => name.to_string(),
            None => {
                let (index, claims, given) = (&self.index, &self.claims, &self.given_keys);
                let base = username::base(&inc.first_name, &inc.last_name);
                self.usernames.generate(base, |candidate| {
                    index.by_username(candidate).is_some()
                        || claims.line(Ident::Username, candidate).is_some()
                        || (!given.is_empty()
                            && given.binary_search(&username_key(candidate)).is_ok())
                })
            }
        };
        let custom_id = inc.custom_id.filter(|c| !c.trim().is_empty());
        let email = inc.email.filter(|e| !e.trim().is_empty());
        // The username is not claimed: an explicit one was reserved for this row before any
        // was generated, and the generator remembers the ones it gives.
        for (what, value) in [
            (Ident::CustomId, custom_id.as_deref()),
            (Ident::Email, email.as_deref()),
        ] {
            if let Some(value) = value {
                self.claims.take(what, value, line);
            }
        }
        let password = inc.password.filter(|p| !p.is_empty());
        let password_mac = password
            .as_deref()
            .map(|p| secrets.password_fingerprint(user_guid, p));
        let temp_password = password.is_none().then(|| secrets.temp_password());
        let student = inc.role.is_student();
        let write = NewUser {
            user_guid,
            custom_id: custom_id.map(CompactString::from),
            email: email.map(CompactString::from),
            username: CompactString::from(username.as_str()),
            first_name: inc.first_name.into(),
            middle_name: inc.middle_name.into(),
            last_name: inc.last_name.into(),
            role: inc.role,
            schools: school_set(inc.schools.into_iter().map(CompactString::from).collect()),
            grade: if student {
                inc.grade
            } else {
                Grade::UNSPECIFIED
            },
            position: if student {
                CompactString::default()
            } else {
                inc.position.into()
            },
            status: inc.status,
            source: self.source.clone(),
            source_key: inc.source_key.map(CompactString::from),
            prevent_archiving: false,
        };
        RowPlan {
            line,
            matched_by: None,
            outcome: Outcome::Created,
            user_guid: Some(user_guid),
            username: Some(username.into()),
            temp_password: temp_password.map(CompactString::from),
            write: Some(Box::new(write)),
            extra: RowExtra {
                password,
                password_mac,
                ..RowExtra::default()
            }
            .boxed(),
        }
    }

    /// Does this file row edit user `i` in place, leaving them their owner? So it does when
    /// it names a live user of another source by user_guid (the master CSV sent back), and
    /// always in a file of scope [`Scope::District`] (it lists everyone: it owns nobody).
    fn keeps_source(&self, inc: &IncomingUser, i: usize) -> bool {
        let user = &self.users.get(i);
        matches!(self.source, Source::File(_))
            && user.source != *self.source
            && (self.scope == Scope::District
                || (inc.user_guid == Some(user.user_guid) && !user.archived))
    }

    fn update(
        &mut self,
        i: usize,
        inc: IncomingUser,
        keep_source: bool,
        password: Option<(String, [u8; 32])>,
    ) -> RowPlan {
        let line = inc.line;
        let user = &self.users.get(i);
        self.marks[i] = Mark::claimed(line);
        let source = if keep_source {
            &user.source
        } else {
            self.source
        };
        let kept_inc = (!user.kept.is_empty()).then(|| inc.clone());
        let (target, mut changed) = merge(user, inc, source);
        let previous_source = (target.source != user.source).then(|| user.source.clone());
        let kept = kept_inc.map_or_else(Vec::new, |inc| overridden(user, &inc, source, &changed));
        if password.is_some() {
            // In column order: before `source_key`.
            let at = changed
                .iter()
                .position(|c| *c == "source_key")
                .unwrap_or(changed.len());
            changed.insert(at, Field::Password.name());
        }
        let (password, password_mac) = password.unzip();
        if target.custom_id.as_deref() != user.custom_id.as_deref()
            && let Some(c) = &target.custom_id
        {
            self.claims.take(Ident::CustomId, c, line);
        }
        if target.email.as_deref() != user.email.as_deref()
            && let Some(e) = &target.email
        {
            self.claims.take(Ident::Email, e, line);
        }
        if target.username != user.username {
            self.claims.take(Ident::Username, &target.username, line);
        }
        let outcome = if user.archived {
            Outcome::Restored { changed }
        } else if changed.is_empty() && previous_source.is_none() {
            let mut row = RowPlan::quiet(
                line,
                Outcome::Unchanged,
                Some(user.user_guid),
                Some(&user.username),
            );
            row.extra = RowExtra {
                kept,
                ..RowExtra::default()
            }
            .boxed();
            return row;
        } else if changed.is_empty() {
            // Only the owner changes: unchanged, marked moved, and the new owner written.
            Outcome::Unchanged
        } else {
            Outcome::Updated { changed }
        };
        RowPlan {
            line,
            matched_by: None,
            outcome,
            user_guid: Some(user.user_guid),
            username: Some(target.username.clone()),
            temp_password: None,
            write: Some(Box::new(target)),
            extra: RowExtra {
                previous_source,
                kept,
                password,
                password_mac,
            }
            .boxed(),
        }
    }

    /// A `to_be_deleted` record: archive the user only when this feed owns them.
    fn delete(&mut self, i: usize, line: u64) -> RowPlan {
        let user = &self.users.get(i);
        self.marks[i] = Mark::claimed(line);
        let outcome = if self.would_archive(user) {
            self.deleted.push(i);
            Outcome::Archived
        } else {
            Outcome::Unchanged
        };
        RowPlan::quiet(line, outcome, Some(user.user_guid), Some(&user.username))
    }

    /// The users to archive (`to_be_deleted` rows, then every unprotected user in scope
    /// nobody matched), the number of non-archived users in scope before the run, and the
    /// schools those archives empty (for the per-school guard; a user in several schools
    /// counts in each).
    pub(super) fn finish(self) -> Sweep {
        let (scope, source) = (self.scope, self.source);
        let mut archived = vec![false; self.users.len()];
        for &i in &self.deleted {
            archived[i] = true;
        }
        let mut scope_total = 0;
        let mut schools: HashMap<&str, (usize, usize)> = HashMap::new();
        let users = self.users;
        for (i, mark) in self.marks.iter().enumerate() {
            if users.archived(i)
                || !in_scope(users.source(i), source, scope)
                || self.school.is_some_and(|s| !s.covers(users.schools(i)))
            {
                continue;
            }
            scope_total += 1;
            // Portal admins are never archived by a feed (rule 7), nor users that a file of
            // another source waiting in the queue lists (it moves them next).
            if scope != Scope::Patch
                && !users.prevent_archiving(i)
                && !users.portal_role(i).is_admin()
                && *mark == Mark::Free
                && !(scope == Scope::Source
                    && self
                        .elsewhere
                        .lists(users.guid(i), users.custom_id(i), users.email(i)))
            {
                archived[i] = true;
            }
            for school in users.schools(i) {
                let entry = schools.entry(school).or_default();
                entry.0 += 1;
                entry.1 += usize::from(archived[i]);
            }
        }
        let archive = archived
            .iter()
            .enumerate()
            .filter(|(_, a)| **a)
            .map(|(i, _)| users.guid(i))
            .collect();
        let mut schools: Vec<SchoolSweep> = schools
            .into_iter()
            .filter(|(_, (_, a))| *a > 0)
            .map(|(id, (total, archived))| SchoolSweep {
                external_id: id.to_string(),
                total,
                archived,
            })
            .collect();
        schools.sort_by(|a, b| a.external_id.cmp(&b.external_id));
        Sweep {
            archive,
            scope_total,
            schools,
        }
    }
}

/// Is `user` covered by a feed of `source` with `scope`? (Patch covers what its source
/// would: the guard still measures against the source.)
pub(super) fn in_scope(owner: &Source, source: &Source, scope: Scope) -> bool {
    match scope {
        Scope::Source | Scope::Patch => owner == source,
        Scope::District => !owner.is_sync(),
    }
}

impl RowPlan {
    fn error(line: u64, message: String, user_guid: Option<Uuid>) -> RowPlan {
        RowPlan {
            line,
            matched_by: None,
            outcome: Outcome::Error { message },
            user_guid,
            username: None,
            temp_password: None,
            write: None,
            extra: None,
        }
    }

    /// A row that writes nothing.
    fn quiet(
        line: u64,
        outcome: Outcome,
        user_guid: Option<Uuid>,
        username: Option<&str>,
    ) -> RowPlan {
        RowPlan {
            line,
            matched_by: None,
            outcome,
            user_guid,
            username: username.map(CompactString::from),
            temp_password: None,
            write: None,
            extra: None,
        }
    }
}

/// What a feed may never change about a portal admin: their status and role, and the names
/// they sign in with.
const ADMIN_LOCKED: [Field; 4] = [Field::Status, Field::Role, Field::Email, Field::Username];

/// The row error for a password shorter than the sign-in rule allows (never echoing it).
fn short_password(line: u64, or: &str) -> String {
    format!(
        "line {line}, column \"{}\": the password is shorter than {MIN_PASSWORD_CHARS} characters; give a longer one{or}",
        Field::Password.name()
    )
}

/// The row error for a row that would change a portal admin, naming the row and the column.
fn admin_refusal(line: u64, user: &CurrentUser, column: &str, why: &str) -> String {
    let who = user.email.as_deref().unwrap_or(&user.username);
    format!(
        "line {line}, column \"{column}\": {who} is a {}; administrators are managed in the portal, not by files or syncs ({why})",
        user.portal_role.label().to_lowercase()
    )
}
