//! A list kept encoded: each item `postcard`-encoded, one after another, in blocks. A sync's
//! million typed users take ~100 bytes each here, where as values they took 272 bytes plus a
//! heap allocation for each string (~420 MiB at 1M; issue 15). The list grows a block at a
//! time (never copied to a buffer twice its size) and, taken by value, gives each block back
//! as soon as its items are read.
//!
//! **Memory independent of the list's length** (issue 19): once [`KEEP`] bytes of blocks are
//! held, each block that fills is written to an unnamed temporary file (`TMPDIR`, deleted by
//! the system when the list goes) and freed. A list of any length holds at most [`KEEP`] plus
//! one block; the rest is read back from the file — a block at a time when the list is walked,
//! a small window around the item by [`Encoded::get`] (a few windows are kept, so items read
//! in order cost one read per window). When no temporary file can be made or written, blocks
//! stay in memory as before (logged once per list).

use std::collections::VecDeque;
use std::fs::File;
use std::marker::PhantomData;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Bytes the first block is allocated with; each next one twice its predecessor's, up to
/// [`BLOCK`]. An item larger than that gets a block of its own.
const FIRST_BLOCK: usize = 64 << 10;

/// The largest block. Blocks past [`KEEP`] are freed by the thread that filled them, once
/// written out; the few kept in memory may be freed by another thread (rows are typed on the
/// reader's thread, planned on another) and wait in its heap, which [`KEEP`] bounds.
const BLOCK: usize = 8 << 20;

/// Bytes of blocks held in memory before full blocks go to the temporary file.
const KEEP: usize = 16 << 20;

/// Bytes [`Encoded::get`] reads around an item kept in the file.
const WINDOW: usize = 64 << 10;

/// Windows [`Encoded::get`] keeps (items read in order by a few readers at once hit them).
const WINDOWS: usize = 4;

/// How a list's blocks are sized and when they go to the file (tests use small ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Limits {
    first: usize,
    block: usize,
    keep: usize,
    window: usize,
}

const LIMITS: Limits = Limits {
    first: FIRST_BLOCK,
    block: BLOCK,
    keep: KEEP,
    window: WINDOW,
};

/// A block: in memory, or written to the list's file.
#[derive(Clone)]
enum Block {
    Mem(Vec<u8>),
    File { offset: u64, len: usize },
}

impl Block {
    fn len(&self) -> usize {
        match self {
            Block::Mem(b) => b.len(),
            Block::File { len, .. } => *len,
        }
    }
}

/// The file full blocks are written to, shared by a list and its clones (written blocks never
/// change), and what `get` last read from it.
#[derive(Default)]
struct Spill {
    file: Option<Arc<File>>,
    /// Bytes written so far (the next block's offset).
    end: u64,
    /// The file could not be made or written: blocks stay in memory.
    failed: bool,
    windows: Mutex<VecDeque<Window>>,
}

impl Clone for Spill {
    fn clone(&self) -> Self {
        Spill {
            file: self.file.clone(),
            end: self.end,
            failed: self.failed,
            windows: Mutex::default(),
        }
    }
}

/// Bytes `[start, start + bytes.len())` of block `block`, as read from the file.
struct Window {
    block: u32,
    start: usize,
    bytes: Arc<[u8]>,
}

impl Spill {
    /// Write `block` at the end of the file; where it went, or `None` (then it stays).
    fn write(&mut self, block: &[u8]) -> Option<u64> {
        if self.failed {
            return None;
        }
        let written = (|| -> std::io::Result<u64> {
            if self.file.is_none() {
                self.file = Some(Arc::new(tempfile::tempfile()?));
            }
            let file = self.file.as_ref().expect("made above");
            file.write_all_at(block, self.end)?;
            Ok(self.end)
        })();
        match written {
            Ok(offset) => {
                self.end += block.len() as u64;
                Some(offset)
            }
            Err(e) => {
                tracing::warn!(error = %e, "a long list cannot be written to a temporary file; it stays in memory");
                self.failed = true;
                None
            }
        }
    }

    /// `len` bytes at `offset` of the file.
    fn read(&self, offset: u64, len: usize) -> Vec<u8> {
        let mut buf = vec![0; len];
        self.file
            .as_ref()
            .expect("a block in the file has a file")
            .read_exact_at(&mut buf, offset)
            .expect("a list's temporary file reads back what was written to it");
        buf
    }
}

/// Items of type `T`, encoded, in the order pushed.
#[derive(Clone)]
pub struct Encoded<T> {
    blocks: VecDeque<Block>,
    len: usize,
    /// Bytes allocated for the blocks in memory.
    held: usize,
    /// Where the item being pushed is encoded before it is copied into a block.
    scratch: Vec<u8>,
    spill: Spill,
    limits: Limits,
    _items: PhantomData<fn() -> T>,
}

impl<T> Default for Encoded<T> {
    fn default() -> Self {
        Encoded::with_limits(LIMITS)
    }
}

impl<T> std::fmt::Debug for Encoded<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoded")
            .field("len", &self.len)
            .field("bytes", &self.bytes())
            .field("in_file", &self.spill.end)
            .finish()
    }
}

/// Two lists are equal when they hold the same items (wherever their blocks are kept).
impl<T> PartialEq for Encoded<T> {
    fn eq(&self, other: &Self) -> bool {
        let bytes = |list: &Self| {
            list.raw()
                .flat_map(|b| b.into_owned().into_iter())
                .collect::<Vec<u8>>()
        };
        self.len == other.len && bytes(self) == bytes(other)
    }
}

impl<T> Eq for Encoded<T> {}

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
        let room = match self.blocks.back() {
            Some(Block::Mem(b)) => b.capacity() - b.len() >= need,
            _ => false,
        };
        if !room {
            self.spill_back();
            let next = match self.blocks.back() {
                None => self.limits.first,
                Some(Block::Mem(b)) => (b.capacity() * 2).min(self.limits.block),
                Some(Block::File { .. }) => self.limits.block,
            };
            let block = Vec::with_capacity(next.max(need));
            self.held += block.capacity();
            self.blocks.push_back(Block::Mem(block));
        }
        let at = At {
            block: u32::try_from(self.blocks.len() - 1).expect("fewer than 2^32 blocks"),
            start: u32::try_from(self.blocks.back().map_or(0, Block::len))
                .expect("a block is under 4 GiB"),
        };
        let Some(Block::Mem(block)) = self.blocks.back_mut() else {
            unreachable!("the last block is in memory with room for the item")
        };
        block.extend_from_slice(&self.scratch);
        self.len += 1;
        at
    }

    /// The item kept at `at` (by this list's [`Encoded::push`]), decoded.
    pub fn get(&self, at: At) -> T {
        match &self.blocks[at.block as usize] {
            Block::Mem(block) => decode(&block[at.start as usize..]).0,
            Block::File { offset, len } => self.get_from_file(at, *offset, *len),
        }
    }

    /// Every item, decoded, in order (the list is kept).
    pub fn iter(&self) -> impl Iterator<Item = T> + '_ {
        self.raw().flat_map(Decode::<T>::new)
    }
}

impl<T> Encoded<T> {
    fn with_limits(limits: Limits) -> Self {
        Encoded {
            blocks: VecDeque::new(),
            len: 0,
            held: 0,
            scratch: Vec::new(),
            spill: Spill::default(),
            limits,
            _items: PhantomData,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes the blocks in memory hold (allocated).
    pub fn bytes(&self) -> usize {
        self.held
    }

    /// The bytes written to the temporary file.
    pub fn bytes_in_file(&self) -> u64 {
        self.spill.end
    }

    /// The last block is full: once the blocks in memory pass [`Limits::keep`], it goes to
    /// the file.
    fn spill_back(&mut self) {
        if self.held <= self.limits.keep {
            return;
        }
        let Some(Block::Mem(block)) = self.blocks.back() else {
            return;
        };
        if let Some(offset) = self.spill.write(block) {
            let (len, capacity) = (block.len(), block.capacity());
            *self.blocks.back_mut().expect("there is a last block") = Block::File { offset, len };
            self.held -= capacity;
        }
    }

    /// Each block's bytes, in order (a block in the file is read whole).
    fn raw(&self) -> impl Iterator<Item = std::borrow::Cow<'_, [u8]>> + '_ {
        self.blocks.iter().map(|b| match b {
            Block::Mem(bytes) => std::borrow::Cow::Borrowed(bytes.as_slice()),
            Block::File { offset, len } => std::borrow::Cow::Owned(self.spill.read(*offset, *len)),
        })
    }
}

impl<T: DeserializeOwned> Encoded<T> {
    /// An item of a block in the file: from a window read before, or a window read now (made
    /// larger until the item fits in it).
    fn get_from_file(&self, at: At, offset: u64, len: usize) -> T {
        let start = at.start as usize;
        let mut windows = self
            .spill
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let hit = windows.iter().position(|w| {
            w.block == at.block && w.start <= start && start < w.start + w.bytes.len()
        });
        if let Some(i) = hit {
            let w = &windows[i];
            if let Some(item) = try_decode(&w.bytes[start - w.start..]) {
                if i > 0 {
                    let w = windows.remove(i).expect("found above");
                    windows.push_front(w);
                }
                return item;
            }
        }
        let mut want = self.limits.window;
        loop {
            let n = want.min(len - start);
            let bytes: Arc<[u8]> = self.spill.read(offset + start as u64, n).into();
            match try_decode(&bytes) {
                Some(item) => {
                    windows.push_front(Window {
                        block: at.block,
                        start,
                        bytes,
                    });
                    windows.truncate(WINDOWS);
                    return item;
                }
                None if n < len - start => want *= 2,
                None => panic!("an item kept in a list's file runs past its block"),
            }
        }
    }
}

/// The item at the start of `bytes` and the bytes after it.
fn decode<T: DeserializeOwned>(bytes: &[u8]) -> (T, &[u8]) {
    postcard::take_from_bytes(bytes).expect("an item decodes as it was encoded in this process")
}

/// The item at the start of `bytes`, or `None` when `bytes` end before it does.
fn try_decode<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    match postcard::take_from_bytes(bytes) {
        Ok((item, _)) => Some(item),
        Err(postcard::Error::DeserializeUnexpectedEnd) => None,
        Err(e) => panic!("an item decodes as it was encoded in this process: {e}"),
    }
}

impl<T: DeserializeOwned> IntoIterator for Encoded<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;

    /// Every item, decoded, in order; each block is freed once its items are read.
    fn into_iter(self) -> IntoIter<T> {
        IntoIter {
            blocks: self.blocks,
            spill: self.spill,
            at: 0,
            _items: PhantomData,
        }
    }
}

/// The items of one block.
struct Decode<'a, T> {
    block: std::borrow::Cow<'a, [u8]>,
    at: usize,
    _items: PhantomData<fn() -> T>,
}

impl<'a, T> Decode<'a, T> {
    fn new(block: std::borrow::Cow<'a, [u8]>) -> Self {
        Decode {
            block,
            at: 0,
            _items: PhantomData,
        }
    }
}

impl<T: DeserializeOwned> Iterator for Decode<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        if self.at >= self.block.len() {
            return None;
        }
        let (item, rest) = decode(&self.block[self.at..]);
        self.at = self.block.len() - rest.len();
        Some(item)
    }
}

/// [`Encoded`] taken by value.
pub struct IntoIter<T> {
    blocks: VecDeque<Block>,
    spill: Spill,
    /// Where the next item starts in the front block.
    at: usize,
    _items: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> Iterator for IntoIter<T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        loop {
            let block = self.blocks.front_mut()?;
            if let Block::File { offset, len } = *block {
                // Read back whole: its items are read next, and it is freed after them.
                *block = Block::Mem(self.spill.read(offset, len));
            }
            let Block::Mem(bytes) = block else {
                unreachable!("read into memory above")
            };
            if self.at < bytes.len() {
                let (item, rest) = decode::<T>(&bytes[self.at..]);
                self.at = bytes.len() - rest.len();
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

    /// Tiny limits: blocks of 1 KiB, 2 KiB kept in memory, windows of 64 bytes.
    const SMALL: Limits = Limits {
        first: 256,
        block: 1024,
        keep: 2048,
        window: 64,
    };

    fn items() -> Vec<(u64, String)> {
        (0..5_000u64)
            .map(|i| (i, "z".repeat((i % 40) as usize)))
            // Larger than a block, and than a window.
            .chain([(5_000, "big".repeat(700))])
            .chain((5_001..5_200).map(|i| (i, format!("after {i}"))))
            .collect()
    }

    #[test]
    fn a_long_list_holds_a_bounded_part_in_memory_and_the_rest_in_its_file() {
        let items = items();
        let mut list: Encoded<(u64, String)> = Encoded::with_limits(SMALL);
        let mut held = 0;
        let at: Vec<At> = items
            .iter()
            .map(|item| {
                let at = list.push(item);
                held = held.max(list.bytes());
                at
            })
            .collect();
        // ~150 KiB of items: all but the kept part and the block being filled went out.
        assert!(list.bytes_in_file() > 100_000, "{list:?}");
        assert!(held <= SMALL.keep + 2_100 + SMALL.block, "held {held}");
        // By position: in order, backwards (each a window read), and again in order.
        for (i, item) in items.iter().enumerate() {
            assert_eq!(&list.get(at[i]), item, "item {i}");
        }
        for i in (0..items.len()).rev().step_by(7) {
            assert_eq!(list.get(at[i]), items[i], "item {i}");
        }
        assert_eq!(list.get(at[5_000]), items[5_000]);
        // Walked, cloned, compared with the same items kept in memory, taken by value.
        assert!(list.iter().eq(items.iter().cloned()));
        let copy = list.clone();
        let mut in_memory: Encoded<(u64, String)> = Encoded::default();
        for item in &items {
            in_memory.push(item);
        }
        assert_eq!(in_memory.bytes_in_file(), 0);
        assert_eq!(list, in_memory);
        assert!(list.into_iter().eq(items.iter().cloned()));
        assert!(copy.iter().eq(items.iter().cloned()));
        assert!(copy.into_iter().eq(items.into_iter()));
    }

    #[test]
    fn a_list_that_cannot_write_its_file_keeps_its_blocks() {
        let items = items();
        let mut list: Encoded<(u64, String)> = Encoded::with_limits(SMALL);
        list.spill.failed = true;
        let at: Vec<At> = items.iter().map(|item| list.push(item)).collect();
        assert_eq!(list.bytes_in_file(), 0);
        assert!(list.bytes() > 100_000);
        assert_eq!(list.get(at[4_321]), items[4_321]);
        assert!(list.into_iter().eq(items.into_iter()));
    }
}
