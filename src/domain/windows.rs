//! What a feed planned window by window (`reconcile::plan::Windows`, issue 19) and the
//! database tell each other: plain data, so that the SQL layer needs nothing of the planner.

use std::collections::HashMap;

use uuid::Uuid;

/// What the run knows about each current user: 8 bytes, one for every user of the district
/// (of the window's users, when a run plans window by window).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    Free,
    /// A failed row identifies them: never archive them as missing.
    Protected,
    /// An accepted row (at this line; a line past `u32::MAX` as that) matched them.
    Claimed(u32),
}

/// The identifiers a window's rows name: its users are those these find.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WindowKeys {
    pub guids: Vec<Uuid>,
    pub custom_ids: Vec<String>,
    /// Case-folded.
    pub emails: Vec<String>,
    /// The usernames rows give, case-folded.
    pub usernames: Vec<String>,
}

/// What the database found for the sweep once every window was planned: the users in
/// scope before the run (not archived; of the source, or every file and manual user for
/// [`crate::domain::Scope::District`]; of the school, for a one-school file).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepFound {
    pub scope_total: usize,
    /// Users in scope per school (external ID).
    pub school_totals: HashMap<String, usize>,
    /// The users in scope the run archives: those the planner's windows said the sweep takes
    /// (`plan::Windows::archives`), and those `to_be_deleted` rows archive.
    pub archived: Vec<Uuid>,
    /// How many of [`SweepFound::archived`] each school has (external ID).
    pub school_archived: HashMap<String, usize>,
}
