//! The Users list's bulk bar (issue 16, item 5): the actions this admin may take, the owners
//! a district admin may hand users to, and the list's filters that "all matching" carries to
//! the confirm step (`super::bulk`).

use super::Opt;
use crate::db;
use crate::domain::Source;
use crate::domain::bulk;
use crate::web::AppState;
use crate::web::error::AppResult;
use crate::web::session::DistrictScope;

/// The bulk bar on the Users list.
pub struct BulkBar {
    /// The list's filters as hidden fields (what "all matching" means).
    pub filters: Vec<(&'static str, String)>,
    pub actions: Vec<Opt>,
    /// Owners a district admin may hand users to (empty for a school admin).
    pub owners: Vec<Opt>,
    /// "All matching users (1,234)".
    pub all_label: String,
}

/// The bar for a list page showing `count_label` users selected by `filter_pairs`.
pub async fn bar(
    state: &AppState,
    scope: &DistrictScope,
    filter_pairs: &[(&'static str, String)],
    count_label: &str,
) -> AppResult<BulkBar> {
    let actions = bulk::ALL
        .into_iter()
        .filter(|a| scope.is_district_admin() || !a.district_admins_only())
        .map(|a| Opt::new(a.as_str(), a.label(), ""))
        .collect();
    let owners = if scope.is_district_admin() {
        owners(state, scope).await?
    } else {
        Vec::new()
    };
    Ok(BulkBar {
        filters: filter_pairs.to_vec(),
        actions,
        owners,
        all_label: format!("All matching users ({count_label})"),
    })
}

/// Manual, then the district's file sources (as the user page's hand-over offers).
pub(super) async fn owners(state: &AppState, scope: &DistrictScope) -> AppResult<Vec<Opt>> {
    let mut out = vec![Opt::new("manual", "Manual (added in the portal)", "")];
    for file in db::runs::file_sources(&state.pool, scope.district_id).await? {
        if let Source::File(name) = Source::from_db(&file) {
            out.push(Opt::new(file, format!("File {name}"), ""));
        }
    }
    Ok(out)
}
