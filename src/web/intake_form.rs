//! The one multipart loop behind every way a file comes in over HTTP (the upload form, the
//! API, a sync's CSV set upload): the file field streamed into the intake's store (hashed,
//! refused past the size limit), every other field read once by the intake's option parser
//! ([`intake::Asked::set`]). Several `file` fields are the files of one set (SDS v1 or
//! OneRoster CSV), stored as one zip ([`intake::combine`]); the size limit is the whole
//! upload's.

use crate::intake::{self, AcceptError, Asked, BadOption, Inbox, Stored};
use axum::extract::Multipart;
use uuid::Uuid;

/// What a multipart request carried.
pub struct Received {
    /// The file, stored (`None`: no file field). Removed again when an option was bad.
    pub stored: Option<Stored>,
    /// The options asked for (`dry_run`, `scope`, `source`).
    pub asked: Asked,
    /// An option with a value that is none of the allowed ones (then nothing is kept).
    pub bad: Option<BadOption>,
    /// The other text fields, as sent (e.g. the form's `scope_touched`).
    pub fields: Vec<(String, String)>,
}

/// Read a multipart request: the `file` field is stored for `district_id` (a file sent
/// without a name is called `unnamed`, or refused with [`AcceptError::NoFile`] when
/// `unnamed` is `None`); several `file` fields are stored as one set, or refused with
/// [`AcceptError::NotASet`] when they are not one (nothing kept); text fields are options or
/// kept in `fields`.
pub async fn receive(
    inbox: &Inbox,
    district_id: Uuid,
    multipart: &mut Multipart,
    unnamed: Option<&str>,
) -> Result<Received, AcceptError> {
    let mut received = Received {
        stored: None,
        asked: Asked::default(),
        bad: None,
        fields: Vec::new(),
    };
    let mut parts: Vec<Stored> = Vec::new();
    let read = read_fields(
        inbox,
        district_id,
        multipart,
        unnamed,
        &mut received,
        &mut parts,
    )
    .await;
    if let Err(e) = read {
        // Nothing of an upload cut short or refused is kept.
        for part in &parts {
            let _ = tokio::fs::remove_file(&part.path).await;
        }
        return Err(e);
    }
    received.stored = match parts.len() {
        0 => None,
        1 => parts.pop(),
        _ => Some(intake::combine(inbox, district_id, parts).await?),
    };
    if received.bad.is_some()
        && let Some(stored) = received.stored.take()
    {
        // Nothing is queued, and nothing of the file is kept.
        let _ = tokio::fs::remove_file(&stored.path).await;
    }
    Ok(received)
}

/// The multipart loop: each `file` field stored (within what is left of the upload's
/// limit) into `parts`, the other fields into `received`.
async fn read_fields(
    inbox: &Inbox,
    district_id: Uuid,
    multipart: &mut Multipart,
    unnamed: Option<&str>,
    received: &mut Received,
    parts: &mut Vec<Stored>,
) -> Result<(), AcceptError> {
    let interrupted = |e: axum::extract::multipart::MultipartError| AcceptError::Body {
        cause: Box::new(e),
        limit_mb: inbox.max_upload_mb,
    };
    while let Some(field) = multipart.next_field().await.map_err(interrupted)? {
        let name = field.name().unwrap_or_default().to_string();
        if name == "file" {
            let file_name = match field.file_name().filter(|n| !n.is_empty()) {
                Some(n) => n.to_string(),
                None => unnamed.ok_or(AcceptError::NoFile)?.to_string(),
            };
            let used: u64 = parts.iter().map(|p| p.size).sum();
            let budget = inbox.max_upload_bytes().saturating_sub(used);
            let stored =
                intake::store_within(inbox, district_id, &file_name, Box::pin(field), budget)
                    .await?;
            parts.push(stored);
            continue;
        }
        let value = field.text().await.unwrap_or_default();
        match received.asked.set(&name, &value) {
            Ok(true) => {}
            Ok(false) => received.fields.push((name, value)),
            Err(e) => received.bad = Some(e),
        }
    }
    Ok(())
}

impl Received {
    /// A text field that is not an option (`None` when not sent).
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}
