//! A list kept in fixed-size chunks: it grows a chunk at a time (never copied into a buffer
//! twice its size, which holds both at once) and, taken by value, frees each chunk as soon as
//! its items are taken. A feed's 3,000,000 enrollments are ~300 MiB; held as one `Vec`, a
//! roster plan growing while they were read held them whole, and shrinking the `Vec` on the
//! way held one and a half of it for a moment (issue 15, memory).

use std::ops::{Index, IndexMut};

/// Bytes a full chunk holds: over mimalloc's 16 MiB "huge" threshold. A huge block freed
/// by another thread than the one that made it (the set is read on one thread, planned on
/// another) goes back to the system at once; smaller blocks waited in the idle reader
/// thread's heap, and a first sync at 1M peaked 140 MiB higher with 1.7 MB chunks.
const CHUNK_BYTES: usize = 32 << 20;

/// Items a chunk holds (only the last one may hold fewer).
const fn chunk<T>() -> usize {
    let size = std::mem::size_of::<T>();
    if size == 0 || size >= CHUNK_BYTES {
        1
    } else {
        CHUNK_BYTES / size
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct Chunked<T> {
    chunks: Vec<Vec<T>>,
    len: usize,
}

impl<T> Default for Chunked<T> {
    fn default() -> Self {
        Chunked {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Chunked<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<T> Chunked<T> {
    const CHUNK: usize = chunk::<T>();

    pub fn push(&mut self, item: T) {
        let c = match self.chunks.last_mut() {
            Some(c) if c.len() < Self::CHUNK => c,
            _ => {
                self.chunks.push(Vec::new());
                self.chunks.last_mut().expect("a chunk was just added")
            }
        };
        // The last chunk doubles as a `Vec` does, but never past a full chunk: a short list
        // stays small.
        if c.len() == c.capacity() {
            let want = (c.capacity() * 2).max(4).min(Self::CHUNK);
            c.reserve_exact(want - c.len());
        }
        c.push(item);
        self.len += 1;
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn get(&self, i: usize) -> Option<&T> {
        (i < self.len).then(|| &self.chunks[i / Self::CHUNK][i % Self::CHUNK])
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> {
        self.chunks.iter().flatten()
    }

    pub fn iter_mut(&mut self) -> impl DoubleEndedIterator<Item = &mut T> {
        self.chunks.iter_mut().flatten()
    }

    pub fn pop(&mut self) -> Option<T> {
        let last = self.chunks.last_mut()?;
        let item = last.pop();
        if last.is_empty() {
            self.chunks.pop();
        }
        self.len -= usize::from(item.is_some());
        item
    }

    pub fn first(&self) -> Option<&T> {
        self.get(0)
    }

    pub fn last(&self) -> Option<&T> {
        self.chunks.last().and_then(|c| c.last())
    }

    /// Keep the first `len` items; the chunks past them are freed.
    pub fn truncate(&mut self, len: usize) {
        if len >= self.len {
            return;
        }
        let chunks = len.div_ceil(Self::CHUNK);
        self.chunks.truncate(chunks);
        if let Some(last) = self.chunks.last_mut() {
            last.truncate(len - (chunks - 1) * Self::CHUNK);
        }
        self.len = len;
    }

    /// Keep the items `keep` says yes to, in order. The list is rebuilt chunk by chunk, each
    /// old chunk freed once read, so it never takes twice its memory.
    pub fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        let old = std::mem::take(self);
        for item in old {
            if keep(&item) {
                self.push(item);
            }
        }
    }
}

impl<T> Index<usize> for Chunked<T> {
    type Output = T;
    fn index(&self, i: usize) -> &T {
        assert!(i < self.len, "index {i} out of a list of {}", self.len);
        &self.chunks[i / Self::CHUNK][i % Self::CHUNK]
    }
}

impl<T> IndexMut<usize> for Chunked<T> {
    fn index_mut(&mut self, i: usize) -> &mut T {
        assert!(i < self.len, "index {i} out of a list of {}", self.len);
        &mut self.chunks[i / Self::CHUNK][i % Self::CHUNK]
    }
}

impl<T> IntoIterator for Chunked<T> {
    type Item = T;
    type IntoIter = std::iter::Flatten<std::vec::IntoIter<Vec<T>>>;

    /// The items in order; each chunk is freed once its items are taken.
    fn into_iter(self) -> Self::IntoIter {
        self.chunks.into_iter().flatten()
    }
}

impl<'a, T> IntoIterator for &'a Chunked<T> {
    type Item = &'a T;
    type IntoIter = std::iter::Flatten<std::slice::Iter<'a, Vec<T>>>;

    fn into_iter(self) -> Self::IntoIter {
        self.chunks.iter().flatten()
    }
}

impl<T> Extend<T> for Chunked<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, items: I) {
        for item in items {
            self.push(item);
        }
    }
}

impl<T> FromIterator<T> for Chunked<T> {
    fn from_iter<I: IntoIterator<Item = T>>(items: I) -> Self {
        let mut list = Chunked::default();
        list.extend(items);
        list
    }
}

impl<T> From<Vec<T>> for Chunked<T> {
    fn from(items: Vec<T>) -> Self {
        items.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_over_many_chunks_keeps_its_order_and_positions() {
        const CHUNK: usize = Chunked::<usize>::CHUNK;
        let n = CHUNK * 3 + 17;
        let mut list: Chunked<usize> = (0..n).collect();
        assert_eq!(list.len(), n);
        assert_eq!(list.chunks.len(), 4);
        assert_eq!(list[CHUNK + 5], CHUNK + 5);
        assert_eq!(list.get(n), None);
        assert_eq!(list.last(), Some(&(n - 1)));
        list[CHUNK * 2] = 7;
        assert_eq!(list.get(CHUNK * 2), Some(&7));
        list[CHUNK * 2] = CHUNK * 2;
        assert!(list.iter().copied().eq(0..n));
        assert_eq!(list.pop(), Some(n - 1));
        list.push(n - 1);
        assert!(list.iter().rev().copied().eq((0..n).rev()));
        list.retain(|i| i % 3 == 0);
        assert_eq!(list.len(), n.div_ceil(3));
        assert_eq!(list.chunks.len(), list.len().div_ceil(CHUNK));
        assert_eq!(list[CHUNK], CHUNK * 3);
        assert!(list.clone().into_iter().eq((0..n).step_by(3)));
        let kept = list.len();
        list.truncate(CHUNK + 1);
        assert_eq!((list.len(), list.chunks.len()), (CHUNK + 1, 2));
        assert_eq!(list.last(), Some(&(CHUNK * 3)));
        list.truncate(kept);
        assert_eq!(list.len(), CHUNK + 1, "never longer");
        list.truncate(0);
        assert!(list.is_empty() && list.chunks.is_empty());
    }

    #[test]
    fn taken_by_value_it_frees_what_was_taken() {
        const CHUNK: usize = Chunked::<u64>::CHUNK;
        let list: Chunked<u64> = (0..(CHUNK as u64) * 4).collect();
        let mut items = list.into_iter();
        assert!(
            items
                .by_ref()
                .take(CHUNK * 2 + 1)
                .eq(0..(CHUNK as u64) * 2 + 1)
        );
        // What is left: the rest of the third chunk, then the fourth.
        assert_eq!(items.size_hint().0, CHUNK - 1);
        assert_eq!(items.count(), CHUNK * 2 - 1);
    }

    #[test]
    fn a_chunk_is_over_16_mib_and_a_short_list_is_small() {
        assert_eq!(Chunked::<[u8; 104]>::CHUNK, (32 << 20) / 104);
        const { assert!(Chunked::<u64>::CHUNK * 8 > 16 << 20) };
        let list: Chunked<u64> = (0..10).collect();
        assert!(list.chunks[0].capacity() < 64);
        assert_eq!(Chunked::<[u8; 64 << 20]>::CHUNK, 1);
    }

    #[test]
    fn an_empty_list() {
        let list: Chunked<String> = Chunked::default();
        assert!(list.is_empty());
        assert_eq!(list.first(), None);
        assert_eq!(list.iter().count(), 0);
        assert_eq!(Chunked::from(Vec::<u8>::new()).len(), 0);
    }
}
