//! The `rollcall` binary: parse the command line and hand it to `cli`.

/// A million-row run holds millions of short strings (names, IDs, emails); mimalloc packs
/// them in small size classes where the system allocator rounds each up to 32 bytes.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc v3's `mi_option_purge_delay` (its position in `mi_option_e` of the v3 header
/// that `libmimalloc-sys` 0.1.49 builds; the crate names no constant for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Give memory a large run frees back to the system at once, not after mimalloc's default
/// delay of a second. A roster sync frees its feed 32 MiB at a time while its plan grows on
/// another thread; with the delay, what was freed and what was allocated overlap, and a
/// 1,000,000-user first sync peaked 40-400 MiB higher from one run to the next (issue 15).
/// An operator who sets `MIMALLOC_PURGE_DELAY` keeps their value: mimalloc has read it
/// before `main` runs, and this does not override it.
fn purge_freed_memory_at_once() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: sets one of mimalloc's global options to a value it documents (0: purge
    // immediately); called once at start-up, before any other thread exists.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
}

/// Keep the heap in 4 KiB pages, not transparent huge pages. mimalloc asks the kernel for
/// huge pages over its whole 1 GiB arena (`MADV_HUGEPAGE`), so each first touch of a 2 MiB
/// stretch faults and zeroes all 2 MiB, and a stretch counts in full towards RSS while a
/// few KiB of it are used. Measured (issue 19): a 10,000-row no-op spent up to two thirds of
/// its CPU in the kernel zeroing huge pages; `bench/reconcile 100000` peaked at 56-57 MiB
/// with them and 41-45 MiB without. An operator who sets `MIMALLOC_ALLOW_THP` decides.
#[cfg(target_os = "linux")]
fn small_pages_only() {
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_some() {
        return;
    }
    // The whole process, whatever the system's THP mode ("always" too); a failure (an old
    // kernel) leaves the default.
    let _ = nix::sys::prctl::set_thp_disable(true);
}

fn main() -> std::process::ExitCode {
    purge_freed_memory_at_once();
    #[cfg(target_os = "linux")]
    small_pages_only();
    let cli = rollcall::cli::parse();
    rollcall::telemetry::init(cli.config.log_json);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(rollcall::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The constant is mimalloc's purge delay: its documented default (1,000 ms) before,
    /// 0 after. A `libmimalloc-sys` upgrade that moves the option fails here. With
    /// `MIMALLOC_PURGE_DELAY` in the environment, the operator's value stays.
    #[test]
    fn the_purge_delay_is_set_to_zero_unless_the_operator_chose_one() {
        // SAFETY: reads a global option.
        let before = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        let chosen = std::env::var("MIMALLOC_PURGE_DELAY").ok();
        if chosen.is_none() {
            assert_eq!(before, 1000);
        }
        purge_freed_memory_at_once();
        // SAFETY: as above.
        let after = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        match chosen.and_then(|v| v.parse::<std::ffi::c_long>().ok()) {
            Some(value) => assert_eq!(after, value),
            None => assert_eq!(after, 0),
        }
    }

    /// Transparent huge pages are off for the process unless the operator chose.
    #[cfg(target_os = "linux")]
    #[test]
    fn huge_pages_are_off_unless_the_operator_chose() {
        small_pages_only();
        let off = nix::sys::prctl::get_thp_disable().expect("PR_GET_THP_DISABLE");
        assert_eq!(off, std::env::var_os("MIMALLOC_ALLOW_THP").is_none());
    }
}
