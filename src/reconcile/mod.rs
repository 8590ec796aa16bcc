//! The reconcile engine: plan a feed against the district's users, then apply it.

pub mod apply;
pub mod mapping;
pub mod plan;
pub mod report;
pub mod roster;
pub mod run;
pub mod undo;
pub mod undo_run;

/// The items of `items` in order, each given up as it is taken: taken from the end of the
/// reversed list, which is shrunk as it empties, so a million rows read earlier give their
/// memory back while the plan made from them grows.
pub(crate) fn drain_shrinking<T>(mut items: Vec<T>) -> impl Iterator<Item = T> {
    items.reverse();
    std::iter::from_fn(move || {
        let next = items.pop();
        if items.capacity() > 4096 && items.len() < items.capacity() / 2 {
            items.shrink_to_fit();
        }
        next
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn drain_shrinking_keeps_the_order_and_gives_memory_back() {
        let items: Vec<u32> = (0..100_000).collect();
        let mut drained = super::drain_shrinking(items);
        assert!(drained.by_ref().take(90_000).eq(0..90_000));
        assert!(drained.eq(90_000..100_000));
    }
}
