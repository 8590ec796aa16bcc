//! A list kept encoded: each item `postcard`-encoded, one after another, in blocks. A sync's
//! million typed users take ~100 bytes each here, where as values they took 272 bytes plus a
//! heap allocation for each string (~420 MiB at 1M; issue 15). The list grows a block at a
//! time (never copied to a buffer twice its size) and, taken by value, gives each block back
//! as soon as its items are read.

use std::collections::VecDeque;
use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Bytes the first block is allocated with; each next one twice its predecessor's, up to
/// [`BLOCK`]. An item larger than that gets a block of its own.
const FIRST_BLOCK: usize = 64 << 10;

/// The largest block: over mimalloc's 16 MiB "huge" threshold, because a huge block freed by
/// another thread than the one that made it (rows are typed on the reader's thread, planned
/// on another) goes back to the system at once, where a smaller one waits in the idle
/// reader's heap ([`super::chunked`] says the same of its chunks).
const BLOCK: usize = 32 << 20;

/// Items of type `T`, encoded, in the order pushed.
#[derive(Clone, PartialEq, Eq)]
pub struct Encoded<T> {
    blocks: VecDeque<Vec<u8>>,
    len: usize,
    /// Where the item being pushed is encoded before it is copied into a block.
    scratch: Vec<u8>,
    _items: PhantomData<fn() -> T>,
}

impl<T> Default for Encoded<T> {
    fn default() -> Self {
        Encoded {
            blocks: VecDeque::new(),
            len: 0,
            scratch: Vec::new(),
            _items: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for Encoded<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoded")
            .field("len", &self.len)
            .field("bytes", &self.bytes())
            .finish()
    }
}

/// Where an item is kept ([`Encoded::push`] tells, [`Encoded::get`] reads): 8 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct At {
    block: u32,
    start: u32,
}

impl<T: Serialize + DeserializeOwned> Encoded<T> {
    /// Append `item`; where it is kept.
    pub fn push(&mut self, item: &T) -> At {
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        self.scratch = postcard::to_extend(item, scratch).expect("an item encodes into memory");
        let need = self.scratch.len();
        if self
            .blocks
            .back()
            .is_none_or(|b| b.capacity() - b.len() < need)
        {
            let next = self
                .blocks
                .back()
                .map_or(FIRST_BLOCK, |b| (b.capacity() * 2).min(BLOCK));
            self.blocks.push_back(Vec::with_capacity(next.max(need)));
        }
        let at = At {
            block: u32::try_from(self.blocks.len() - 1).expect("fewer than 2^32 blocks"),
            start: u32::try_from(self.blocks.back().map_or(0, Vec::len))
                .expect("a block is under 4 GiB"),
        };
        let block = self.blocks.back_mut().expect("a block was just made");
        block.extend_from_slice(&self.scratch);
        self.len += 1;
        at
    }

    /// The item kept at `at` (by this list's [`Encoded::push`]), decoded.
    pub fn get(&self, at: At) -> T {
        let block = &self.blocks[at.block as usize];
        postcard::take_from_bytes(&block[at.start as usize..])
            .expect("an item decodes as it was encoded in this process")
            .0
    }

    /// Every item, decoded, in order (the list is kept).
    pub fn iter(&self) -> impl Iterator<Item = T> + '_ {
        self.blocks.iter().flat_map(|b| Decode::<T>::new(b))
    }
}

impl<T> Encoded<T> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes the blocks hold (allocated).
    pub fn bytes(&self) -> usize {
        self.blocks.iter().map(Vec::capacity).sum()
    }
}

impl<T: DeserializeOwned> IntoIterator for Encoded<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;

    /// Every item, decoded, in order; each block is freed once its items are read.
    fn into_iter(self) -> IntoIter<T> {
        IntoIter {
            blocks: self.blocks,
            at: 0,
            _items: PhantomData,
        }
    }
}

/// The items of one block.
struct Decode<'a, T> {
    rest: &'a [u8],
    _items: PhantomData<fn() -> T>,
}

impl<'a, T> Decode<'a, T> {
    fn new(block: &'a [u8]) -> Self {
        Decode {
            rest: block,
            _items: PhantomData,
        }
    }
}

impl<T: DeserializeOwned> Iterator for Decode<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        if self.rest.is_empty() {
            return None;
        }
        let (item, rest) = postcard::take_from_bytes(self.rest)
            .expect("an item decodes as it was encoded in this process");
        self.rest = rest;
        Some(item)
    }
}

/// [`Encoded`] taken by value.
pub struct IntoIter<T> {
    blocks: VecDeque<Vec<u8>>,
    /// Where the next item starts in the front block.
    at: usize,
    _items: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> Iterator for IntoIter<T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        loop {
            let block = self.blocks.front()?;
            if self.at < block.len() {
                let (item, rest) = postcard::take_from_bytes::<T>(&block[self.at..])
                    .expect("an item decodes as it was encoded in this process");
                self.at = block.len() - rest.len();
                return Some(item);
            }
            self.blocks.pop_front();
            self.at = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_come_back_in_order_across_blocks() {
        let mut list: Encoded<(u64, String)> = Encoded::default();
        // Enough to fill several blocks, and one item bigger than a block.
        let items: Vec<(u64, String)> = (0..60_000u64)
            .map(|i| (i, "x".repeat((i % 50) as usize)))
            .chain([(60_000, "y".repeat(FIRST_BLOCK * 16 + 10))])
            .chain((60_001..60_010).map(|i| (i, format!("after {i}"))))
            .collect();
        for item in &items {
            list.push(item);
        }
        assert_eq!(list.len(), items.len());
        assert!(list.blocks.len() >= 3, "{} blocks", list.blocks.len());
        let mut again: Encoded<(u64, String)> = Encoded::default();
        let at: Vec<At> = items.iter().map(|item| again.push(item)).collect();
        for i in [0, 1, 4_000, 59_999, 60_000, 60_001, 60_009] {
            assert_eq!(again.get(at[i]), items[i]);
        }
        assert!(list.iter().eq(items.iter().cloned()));
        assert!(list.into_iter().eq(items.into_iter()));
    }

    #[test]
    fn read_blocks_are_freed() {
        let mut list: Encoded<u64> = Encoded::default();
        for i in 0..400_000u64 {
            list.push(&(i * 1_000_003));
        }
        let before = list.blocks.len();
        assert!(before >= 2);
        let mut it = list.into_iter();
        assert!(
            it.by_ref()
                .take(300_000)
                .eq((0..300_000u64).map(|i| i * 1_000_003))
        );
        assert!(it.blocks.len() < before);
        assert!(it.eq((300_000..400_000u64).map(|i| i * 1_000_003)));
    }

    #[test]
    fn an_empty_list_yields_nothing() {
        let list: Encoded<String> = Encoded::default();
        assert!(list.is_empty());
        assert_eq!(list.iter().count(), 0);
        assert_eq!(list.into_iter().count(), 0);
    }
}
