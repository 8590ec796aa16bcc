//! The district's enrollments as a run reads them, packed: 20 bytes an enrollment, where a
//! [`CurrentEnrollment`] takes 44 (issue 19, memory: a district of 3,000,000 enrollments held
//! 132 MB of them through roster planning). Each class and user id is kept once, numbered
//! (3,000,000 enrollments name some 40,000 classes and 1,000,000 users); an enrollment keeps
//! the two numbers, its dates, role and primary flag. Enrollments come back as values, by
//! position, in the order pushed.

use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};
use time::Date;
use uuid::Uuid;

use super::{CurrentEnrollment, EnrollmentRole};

const TEACHER: u8 = 1;
const PRIMARY: u8 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Packed {
    /// Numbers in [`CurrentEnrollments::ids`].
    class: u32,
    user: u32,
    begin: Option<Date>,
    end: Option<Date>,
    flags: u8,
}

/// The district's enrollments, packed (see the module's documentation).
#[derive(Clone, Default)]
pub struct CurrentEnrollments {
    rows: Vec<Packed>,
    /// Class and user ids, each once.
    ids: Vec<Uuid>,
    /// Positions in `ids` by id, while enrollments are pushed ([`CurrentEnrollments::seal`]
    /// lets it go; a later push makes it again).
    numbers: HashTable<u32>,
    hasher: DefaultHashBuilder,
}

impl CurrentEnrollments {
    /// Room for `n` enrollments, reserved once (growing three million by doubling held the
    /// old and the new buffer at once).
    pub fn with_capacity(n: usize) -> Self {
        CurrentEnrollments {
            rows: Vec::with_capacity(n),
            ..CurrentEnrollments::default()
        }
    }

    pub fn push(&mut self, e: CurrentEnrollment) {
        let class = self.number(e.class_id);
        let user = self.number(e.user_id);
        let flag = |on: bool, f: u8| if on { f } else { 0 };
        self.rows.push(Packed {
            class,
            user,
            begin: e.begin,
            end: e.end,
            flags: flag(e.role == EnrollmentRole::Teacher, TEACHER) | flag(e.primary, PRIMARY),
        });
    }

    /// Reading is done: give back the table that numbers ids as enrollments come in, and
    /// the spare room.
    pub fn seal(&mut self) {
        self.numbers = HashTable::new();
        self.rows.shrink_to_fit();
        self.ids.shrink_to_fit();
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The enrollment at position `i`. Panics past the end, as indexing does.
    pub fn get(&self, i: usize) -> CurrentEnrollment {
        let p = &self.rows[i];
        CurrentEnrollment {
            class_id: self.ids[p.class as usize],
            user_id: self.ids[p.user as usize],
            role: EnrollmentRole::teacher_if(p.flags & TEACHER != 0),
            primary: p.flags & PRIMARY != 0,
            begin: p.begin,
            end: p.end,
        }
    }

    /// The class and user of the enrollment at position `i`.
    pub fn key(&self, i: usize) -> (Uuid, Uuid) {
        let p = &self.rows[i];
        (self.ids[p.class as usize], self.ids[p.user as usize])
    }

    /// Every enrollment, as values, in order.
    pub fn iter(&self) -> impl Iterator<Item = CurrentEnrollment> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    fn number(&mut self, id: Uuid) -> u32 {
        if self.numbers.len() != self.ids.len() {
            // Sealed: number the ids again.
            let (ids, hasher) = (&self.ids, &self.hasher);
            let mut numbers = HashTable::with_capacity(ids.len());
            for (n, id) in ids.iter().enumerate() {
                numbers.insert_unique(hasher.hash_one(id), n as u32, |&m| {
                    hasher.hash_one(ids[m as usize])
                });
            }
            self.numbers = numbers;
        }
        let hash = self.hasher.hash_one(id);
        if let Some(&n) = self.numbers.find(hash, |&n| self.ids[n as usize] == id) {
            return n;
        }
        let n = u32::try_from(self.ids.len()).expect("fewer than 4,294,967,296 ids");
        let (ids, hasher) = (&self.ids, &self.hasher);
        self.numbers
            .insert_unique(hash, n, |&m| hasher.hash_one(ids[m as usize]));
        self.ids.push(id);
        n
    }
}

impl FromIterator<CurrentEnrollment> for CurrentEnrollments {
    fn from_iter<I: IntoIterator<Item = CurrentEnrollment>>(items: I) -> Self {
        let mut list = CurrentEnrollments::default();
        for e in items {
            list.push(e);
        }
        list
    }
}

impl From<Vec<CurrentEnrollment>> for CurrentEnrollments {
    fn from(items: Vec<CurrentEnrollment>) -> Self {
        items.into_iter().collect()
    }
}

impl PartialEq for CurrentEnrollments {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for CurrentEnrollments {}

impl std::fmt::Debug for CurrentEnrollments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(class: u128, user: u128) -> CurrentEnrollment {
        CurrentEnrollment {
            class_id: Uuid::from_u128(class),
            user_id: Uuid::from_u128(user),
            role: EnrollmentRole::Student,
            primary: false,
            begin: None,
            end: None,
        }
    }

    /// Three million enrollments: 20 bytes each, not 44.
    #[test]
    fn a_packed_enrollment_takes_20_bytes() {
        assert_eq!(std::mem::size_of::<Packed>(), 20);
        assert_eq!(std::mem::size_of::<CurrentEnrollment>(), 44);
    }

    #[test]
    fn enrollments_come_back_as_they_were_pushed() {
        let d = |s| {
            Some(Date::parse(s, time::macros::format_description!("[year]-[month]-[day]")).unwrap())
        };
        let mut teacher = e(1, 100);
        teacher.role = EnrollmentRole::Teacher;
        teacher.primary = true;
        teacher.begin = d("2026-08-20");
        teacher.end = d("2027-06-01");
        let mut ended_early = e(2, 101);
        ended_early.end = d("2026-12-01");
        let all = vec![teacher, e(1, 101), ended_early, e(2, 100), e(1, 100)];
        let mut list = CurrentEnrollments::with_capacity(all.len());
        for x in &all {
            list.push(*x);
        }
        assert_eq!(list.len(), 5);
        assert_eq!(list.ids.len(), 4, "two classes and two users, each once");
        assert!(list.iter().eq(all.iter().copied()));
        assert_eq!(list.get(2), ended_early);
        assert_eq!(list.key(3), (Uuid::from_u128(2), Uuid::from_u128(100)));
        list.seal();
        assert!(list.numbers.is_empty(), "the numbering table let go");
        list.push(e(3, 101));
        assert_eq!(list.ids.len(), 5, "numbered again after sealing, not twice");
        assert_eq!(list.get(5), e(3, 101));
        assert_eq!(list.get(0), teacher);
        let mut again = all.clone();
        again.push(e(3, 101));
        assert_eq!(list, CurrentEnrollments::from(again));
        assert!(CurrentEnrollments::default().is_empty());
    }
}
