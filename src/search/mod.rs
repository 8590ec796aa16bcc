//! The Users screen's search at district scale: an in-memory index of one district's live
//! (not archived) users in name order, beside PostgreSQL.
//!
//! Why: a search must show the first matches *in name order*. PostgreSQL can either walk the
//! name order testing each user (cheap when matches are dense near the start, ~8,000 entries
//! for a page of "ander") or fetch every match through the trigram index and sort them
//! (~5 µs a match: "williams" is ~4,300 of them). On a 1,000,000-user district neither keeps
//! a search page within a couple of milliseconds. Here each user's position in name order
//! (its rank) is the key of every posting list, so the term's trigram lists intersected are
//! already in name order: a page is the first ranks after the cursor that really contain the
//! term (checked on the user's text), whatever the term.
//!
//! The index is plain data: built from rows in name order (PostgreSQL's order, so the
//! collation is never second-guessed here), then read-only. Whether it is still current is
//! the database's business (`db::search_index`); this module knows nothing of SQL or HTTP.

pub mod registry;

use memchr::memmem;
use roaring::RoaringBitmap;
use std::collections::HashMap;
use uuid::Uuid;

pub use registry::Registry;

use crate::db::user_filter::{StatusFilter, UserFilter};
use crate::db::user_list::Sort;

/// Whether an index can answer a Users page: a search in name order among live users, with
/// no filter but the status, for a district admin (it knows neither schools, roles, grades
/// nor sources).
pub fn serves(filter: &UserFilter, scope: Option<&[Uuid]>, sort: Sort) -> bool {
    filter.search_term().is_some()
        && sort == Sort::Name
        && filter.status != StatusFilter::Archived
        && filter.role.is_none()
        && filter.grade.is_none()
        && filter.school.is_none()
        && filter.source.is_none()
        && scope.is_none()
}

/// The index's view of a status filter that it serves.
pub fn which(status: StatusFilter) -> Which {
    match status {
        StatusFilter::Active => Which::Active,
        StatusFilter::Inactive => Which::Inactive,
        StatusFilter::Live | StatusFilter::Archived => Which::Live,
    }
}

/// A live user's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Active,
    Inactive,
}

/// Which live users a search looks at (the Status filter without Archived).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Live,
    Active,
    Inactive,
}

/// Byte classes that make up indexed trigrams: digits, letters (either case, though the
/// search text is lower-cased), and every byte of a non-ASCII character as one class. Other
/// bytes (spaces, `@`, `.`, `-`) start no trigram; a term's trigrams across them are simply
/// not used to narrow the candidates, and every candidate is checked on its text anyway.
const CLASSES: usize = 37;

fn class(b: u8) -> Option<usize> {
    match b {
        b'0'..=b'9' => Some((b - b'0') as usize),
        b'a'..=b'z' => Some((b - b'a') as usize + 10),
        b'A'..=b'Z' => Some((b - b'A') as usize + 10),
        0x80.. => Some(36),
        _ => None,
    }
}

/// The distinct trigram slots of `bytes`.
fn grams(bytes: &[u8]) -> impl Iterator<Item = usize> + '_ {
    bytes
        .windows(3)
        .filter_map(|w| Some((class(w[0])? * CLASSES + class(w[1])?) * CLASSES + class(w[2])?))
}

const SEPARATOR: u8 = 0xFF;

/// Collects users in name order; `finish` makes the index.
pub struct NameIndexBuilder {
    snapshot: String,
    ids: Vec<Uuid>,
    text: Vec<u8>,
    ends: Vec<usize>,
    active: RoaringBitmap,
    inactive: RoaringBitmap,
    grams: Vec<RoaringBitmap>,
}

impl NameIndexBuilder {
    /// `snapshot`: the database snapshot the rows are read in (kept for freshness checks).
    pub fn new(snapshot: String) -> NameIndexBuilder {
        NameIndexBuilder {
            snapshot,
            ids: Vec::new(),
            text: Vec::new(),
            ends: Vec::new(),
            active: RoaringBitmap::new(),
            inactive: RoaringBitmap::new(),
            grams: vec![RoaringBitmap::new(); CLASSES * CLASSES * CLASSES],
        }
    }

    /// The next user in name order, with its (folded) search text.
    pub fn push(&mut self, id: Uuid, search_text: &str, status: Status) {
        let rank = u32::try_from(self.ids.len()).expect("fewer than 2^32 users");
        self.ids.push(id);
        let bytes = search_text.as_bytes();
        self.text.extend_from_slice(bytes);
        self.ends.push(self.text.len());
        // Between users a byte no UTF-8 text has, so no match of a term runs across two.
        self.text.push(SEPARATOR);
        let set = match status {
            Status::Active => &mut self.active,
            Status::Inactive => &mut self.inactive,
        };
        let _ = set.try_push(rank);
        for g in grams(bytes) {
            // A trigram seen twice in one user: already there.
            let _ = self.grams[g].try_push(rank);
        }
    }

    pub fn finish(mut self) -> NameIndex {
        self.ids.shrink_to_fit();
        self.text.shrink_to_fit();
        self.ends.shrink_to_fit();
        let mut grams = HashMap::new();
        for (g, mut set) in self.grams.into_iter().enumerate() {
            if !set.is_empty() {
                set.optimize();
                grams.insert(g, set);
            }
        }
        let rank = self
            .ids
            .iter()
            .enumerate()
            .map(|(r, id)| (*id, r as u32))
            .collect();
        let mut index = NameIndex {
            snapshot: self.snapshot,
            ids: self.ids,
            rank,
            text: self.text,
            ends: self.ends,
            active: self.active,
            inactive: self.inactive,
            grams,
            bytes: 0,
        };
        index.bytes = index.measure();
        index
    }
}

/// One district's live users in name order, searchable by substring of their search text.
pub struct NameIndex {
    snapshot: String,
    ids: Vec<Uuid>,
    rank: HashMap<Uuid, u32>,
    text: Vec<u8>,
    ends: Vec<usize>,
    active: RoaringBitmap,
    inactive: RoaringBitmap,
    grams: HashMap<usize, RoaringBitmap>,
    /// `measure()`, once.
    bytes: usize,
}

/// A page to find: users whose text contains `needle` (already folded as the search text
/// is: `domain::fold`), among `which`, in name order (`desc`: reversed), strictly beyond the user
/// `after` in that direction, at most `want` of them.
#[derive(Debug, Clone)]
pub struct Query<'a> {
    pub needle: &'a str,
    pub which: Which,
    pub after: Option<Uuid>,
    pub desc: bool,
    pub want: usize,
}

impl NameIndex {
    /// The database snapshot the index was read in.
    pub fn snapshot(&self) -> &str {
        &self.snapshot
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Roughly how much memory the index holds.
    pub fn approx_bytes(&self) -> usize {
        self.bytes
    }

    fn measure(&self) -> usize {
        self.ids.capacity() * 16
            + self.rank.capacity() * 21
            + self.text.capacity()
            + self.ends.capacity() * 8
            + self.active.serialized_size()
            + self.inactive.serialized_size()
            + self
                .grams
                .values()
                .map(|g| g.serialized_size() + 48)
                .sum::<usize>()
    }

    fn start_of(&self, rank: u32) -> usize {
        match rank as usize {
            0 => 0,
            r => self.ends[r - 1] + 1,
        }
    }

    fn text_of(&self, rank: u32) -> &[u8] {
        &self.text[self.start_of(rank)..self.ends[rank as usize]]
    }

    /// The ranks in `lo..hi` (descending if `desc`) whose text contains `needle`, found by
    /// scanning the users' texts as one buffer: for a term without trigrams, every user is a
    /// candidate, and one vectorised pass beats a search per user.
    fn scan<'s>(
        &'s self,
        needle: &'s [u8],
        lo: u32,
        hi: u32,
        desc: bool,
    ) -> Box<dyn Iterator<Item = u32> + 's> {
        if lo >= hi {
            return Box::new(std::iter::empty());
        }
        let start = self.start_of(lo);
        let slice = &self.text[start..self.ends[hi as usize - 1]];
        let rank = move |at: usize| self.ends.partition_point(|&e| e <= start + at) as u32;
        let mut last = None;
        let mut once = move |r: &u32| last.replace(*r) != Some(*r);
        if desc {
            Box::new(
                memmem::rfind_iter(slice, needle)
                    .map(rank)
                    .filter(move |r| once(r)),
            )
        } else {
            Box::new(
                memmem::find_iter(slice, needle)
                    .map(rank)
                    .filter(move |r| once(r)),
            )
        }
    }

    fn has(&self, which: Which, rank: u32) -> bool {
        match which {
            Which::Live => true,
            Which::Active => self.active.contains(rank),
            Which::Inactive => self.inactive.contains(rank),
        }
    }

    /// The users among `which` whose text may contain `needle`: those that have all its
    /// trigrams (every one of them, when it has none).
    fn candidates(&self, needle: &[u8], which: Which) -> RoaringBitmap {
        // The term's trigram lists, smallest first; a trigram no user has: no match.
        let mut lists = Vec::new();
        for g in grams(needle) {
            match self.grams.get(&g) {
                Some(set) => lists.push(set),
                None => return RoaringBitmap::new(),
            }
        }
        lists.sort_by_key(|s| s.len());
        lists.dedup_by(|a, b| std::ptr::eq(*a, *b));
        let status = match which {
            Which::Live => None,
            Which::Active => Some(&self.active),
            Which::Inactive => Some(&self.inactive),
        };
        let mut candidates = match (lists.first(), status) {
            (Some(first), _) => (*first).clone(),
            (None, Some(s)) => s.clone(),
            (None, None) => {
                let mut all = RoaringBitmap::new();
                all.insert_range(0..self.ids.len() as u32);
                all
            }
        };
        for set in lists.iter().skip(1) {
            candidates &= *set;
        }
        if let (Some(s), false) = (status, lists.is_empty()) {
            candidates &= s;
        }
        candidates
    }

    /// The page's user ids in order, or `None` when `after` is not a user of the index (a
    /// page link from another time: the caller asks the database instead).
    pub fn find(&self, q: &Query<'_>) -> Option<Vec<Uuid>> {
        let bound = match q.after {
            Some(id) => Some(*self.rank.get(&id)?),
            None => None,
        };
        let needle = q.needle.as_bytes();
        if !needle.is_empty() && grams(needle).next().is_none() {
            let n = self.ids.len() as u32;
            let (lo, hi) = match (q.desc, bound) {
                (false, Some(b)) => (b + 1, n),
                (true, Some(b)) => (0, b),
                (_, None) => (0, n),
            };
            return Some(
                self.scan(needle, lo, hi, q.desc)
                    .filter(|r| self.has(q.which, *r))
                    .take(q.want)
                    .map(|r| self.ids[r as usize])
                    .collect(),
            );
        }
        let candidates = self.candidates(needle, q.which);
        let ranks: Box<dyn Iterator<Item = u32>> = match (q.desc, bound) {
            (false, None) => Box::new(candidates.iter()),
            (false, Some(b)) => Box::new(candidates.range(b + 1..)),
            (true, None) => Box::new(candidates.iter().rev()),
            (true, Some(b)) => Box::new(candidates.range(..b).rev()),
        };
        let finder = memmem::Finder::new(needle);
        Some(
            ranks
                .filter(|r| finder.find(self.text_of(*r)).is_some())
                .take(q.want)
                .map(|r| self.ids[r as usize])
                .collect(),
        )
    }

    /// How many users among `which` contain `needle`, counting no further than `cap` + 1
    /// (as the Users screen's capped counts do).
    pub fn count(&self, needle: &str, which: Which, cap: usize) -> usize {
        if !needle.is_empty() && grams(needle.as_bytes()).next().is_none() {
            return self
                .scan(needle.as_bytes(), 0, self.ids.len() as u32, false)
                .filter(|r| self.has(which, *r))
                .take(cap.saturating_add(1))
                .count();
        }
        let finder = memmem::Finder::new(needle.as_bytes());
        self.candidates(needle.as_bytes(), which)
            .iter()
            .filter(|r| finder.find(self.text_of(*r)).is_some())
            .take(cap.saturating_add(1))
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::seq::SliceRandom;
    use rand::{Rng, SeedableRng};

    struct User {
        id: Uuid,
        text: String,
        status: Status,
    }

    fn users(n: usize, seed: u64) -> Vec<User> {
        let mut rng = StdRng::seed_from_u64(seed);
        let firsts = [
            "alexander",
            "ana",
            "william",
            "liam",
            "zoë",
            "søren",
            "an",
            "mia",
        ];
        let lasts = [
            "anderson", "williams", "adams", "o'neil", "núñez", "li", "sanders",
        ];
        (0..n)
            .map(|i| {
                let f = firsts.choose(&mut rng).unwrap();
                let l = lasts.choose(&mut rng).unwrap();
                User {
                    id: Uuid::from_u128(rng.r#gen::<u128>() | 1),
                    text: format!("{f} {l} {f}.{l}{i}@d.org {f}{i} s{i:07}"),
                    status: if rng.gen_bool(0.2) {
                        Status::Inactive
                    } else {
                        Status::Active
                    },
                }
            })
            .collect()
    }

    fn index(users: &[User]) -> NameIndex {
        let mut b = NameIndexBuilder::new("1:1:".into());
        for u in users {
            b.push(u.id, &u.text, u.status);
        }
        b.finish()
    }

    /// What a page must be: the plain reading of the rule.
    fn expected(users: &[User], q: &Query<'_>) -> Vec<Uuid> {
        let order: Vec<&User> = if q.desc {
            users.iter().rev().collect()
        } else {
            users.iter().collect()
        };
        let start = match q.after {
            Some(id) => order.iter().position(|u| u.id == id).unwrap() + 1,
            None => 0,
        };
        order[start..]
            .iter()
            .filter(|u| u.text.contains(q.needle))
            .filter(|u| match q.which {
                Which::Live => true,
                Which::Active => u.status == Status::Active,
                Which::Inactive => u.status == Status::Inactive,
            })
            .take(q.want)
            .map(|u| u.id)
            .collect()
    }

    #[test]
    fn pages_match_the_plain_rule_for_every_term_filter_and_direction() {
        let users = users(3_000, 7);
        let ix = index(&users);
        assert_eq!(ix.len(), 3_000);
        let needles = [
            "ander",
            "williams",
            "liam",
            "ams",
            "a",
            "an",
            "zoë",
            "ø",
            "núñez",
            "o'n",
            "@d.or",
            "s000123",
            "1",
            "xyz",
            "exander sand",
            " ",
            "nd",
            "søren li",
        ];
        let mut rng = StdRng::seed_from_u64(11);
        let mut nonempty = 0;
        for needle in needles {
            for which in [Which::Live, Which::Active, Which::Inactive] {
                for desc in [false, true] {
                    for after in [None, Some(users[rng.gen_range(0..users.len())].id)] {
                        for want in [1, 51, 5_000] {
                            let q = Query {
                                needle,
                                which,
                                after,
                                desc,
                                want,
                            };
                            let got = ix.find(&q).unwrap();
                            assert_eq!(got, expected(&users, &q), "{q:?}");
                            if after.is_none() && !desc {
                                let all = Query {
                                    want: usize::MAX,
                                    ..q.clone()
                                };
                                let n = expected(&users, &all).len();
                                assert_eq!(ix.count(needle, which, want), n.min(want + 1), "{q:?}");
                            }
                            nonempty += usize::from(!got.is_empty());
                        }
                    }
                }
            }
        }
        // The terms are not all misses.
        assert!(nonempty > 400, "{nonempty}");
    }

    #[test]
    fn paging_through_a_term_visits_each_match_once() {
        let users = users(2_000, 3);
        let ix = index(&users);
        let all: Vec<Uuid> = expected(
            &users,
            &Query {
                needle: "ams",
                which: Which::Live,
                after: None,
                desc: false,
                want: usize::MAX,
            },
        );
        assert!(all.len() > 200);
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = ix
                .find(&Query {
                    needle: "ams",
                    which: Which::Live,
                    after,
                    desc: false,
                    want: 50,
                })
                .unwrap();
            if page.is_empty() {
                break;
            }
            after = page.last().copied();
            seen.extend(page);
        }
        assert_eq!(seen, all);
    }

    #[test]
    fn a_page_link_from_another_time_is_not_guessed() {
        let users = users(10, 1);
        let ix = index(&users);
        let q = Query {
            needle: "a",
            which: Which::Live,
            after: Some(Uuid::from_u128(2)),
            desc: false,
            want: 5,
        };
        assert_eq!(ix.find(&q), None);
    }

    #[test]
    fn an_empty_district_finds_nothing() {
        let ix = NameIndexBuilder::new(String::new()).finish();
        assert!(ix.is_empty());
        let q = Query {
            needle: "ab",
            which: Which::Live,
            after: None,
            desc: true,
            want: 5,
        };
        assert_eq!(ix.find(&q), Some(vec![]));
    }
}
