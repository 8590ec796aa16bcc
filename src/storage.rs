//! Where uploaded files live: `<data>/uploads/<district id>/<run id>.csv`. The name a person
//! gave a file is kept in the database only, never used as a path.

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

pub fn upload_path(data_dir: &Path, district_id: Uuid, run_id: Uuid) -> PathBuf {
    data_dir
        .join("uploads")
        .join(district_id.to_string())
        .join(format!("{run_id}.csv"))
}

/// Where a run keeps the set it was sent (a OneRoster or SDS zip) once the set's users
/// snapshot has taken the run's own path: `<run id>.set.zip` beside it. Its uploaded file.
pub fn set_path(upload_path: &Path) -> PathBuf {
    upload_path.with_extension("set.zip")
}

/// The last component of a name a browser, script or SFTP client gave (`../../x.csv` and
/// `C:\\dir\\x.csv` both become `x.csv`), without control characters and without the
/// invisible and bidirectional formatting characters that make a name read as another
/// (`invoice\u{202E}vsc.exe` shows as `invoiceexe.csv`); a safe source key.
pub fn clean_file_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = last
        .chars()
        .filter(|&c| !c.is_control() && !invisible(c))
        .collect::<String>()
        .trim()
        .to_string();
    let cleaned = cleaned.trim_start_matches('.').to_string();
    if cleaned.is_empty() {
        "upload.csv".to_string()
    } else {
        cleaned.chars().take(200).collect()
    }
}

/// Format characters that display as nothing or reorder the text around them: bidi
/// embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069), marks (U+200E,
/// U+200F, U+061C), zero-width characters and joiners (U+200B–U+200D, U+2060–U+2064,
/// U+FEFF), the deprecated format controls (U+206A–U+206F), soft hyphen, Mongolian vowel
/// separator, line and paragraph separators.
fn invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
    )
}

/// Write bytes as they arrive, hashing them; refuses more than `limit` bytes (the partial
/// file is removed). Returns the SHA-256 (hex) and the size.
pub struct Writer {
    path: PathBuf,
    file: tokio::fs::File,
    hasher: Sha256,
    size: u64,
    limit: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the file is larger than the limit of {0} MiB")]
    TooLarge(u64),
    #[error("could not store the file: {0}")]
    Io(#[from] std::io::Error),
}

impl Writer {
    pub async fn create(path: PathBuf, limit: u64) -> Result<Writer, StoreError> {
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        let file = tokio::fs::File::create(&path).await?;
        Ok(Writer {
            path,
            file,
            hasher: Sha256::new(),
            size: 0,
            limit,
        })
    }

    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), StoreError> {
        self.size += chunk.len() as u64;
        if self.size > self.limit {
            let _ = tokio::fs::remove_file(&self.path).await;
            return Err(StoreError::TooLarge(self.limit / (1024 * 1024)));
        }
        self.hasher.update(chunk);
        self.file.write_all(chunk).await?;
        Ok(())
    }

    pub async fn finish(mut self) -> Result<(String, u64), StoreError> {
        self.file.flush().await?;
        self.file.sync_all().await?;
        Ok((hex::encode(self.hasher.finalize()), self.size))
    }

    pub async fn abandon(self) {
        let _ = tokio::fs::remove_file(&self.path).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_like_names_are_reduced_to_their_last_component() {
        assert_eq!(clean_file_name("../../x.csv"), "x.csv");
        assert_eq!(
            clean_file_name("C:\\Users\\me\\students.csv"),
            "students.csv"
        );
        assert_eq!(clean_file_name("/etc/passwd"), "passwd");
        assert_eq!(clean_file_name(".."), "upload.csv");
        assert_eq!(clean_file_name(".hidden.csv"), "hidden.csv");
        assert_eq!(clean_file_name("a\u{0}b\n.csv"), "ab.csv");
        assert_eq!(clean_file_name("students.csv"), "students.csv");
    }

    #[test]
    fn bidi_and_invisible_characters_are_dropped() {
        assert_eq!(clean_file_name("invoice\u{202E}vsc.exe"), "invoicevsc.exe");
        for c in [
            '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}',
            '\u{2068}', '\u{2069}', '\u{200E}', '\u{200F}', '\u{061C}', '\u{200B}', '\u{200C}',
            '\u{200D}', '\u{2060}', '\u{FEFF}', '\u{00AD}', '\u{2028}',
        ] {
            assert_eq!(
                clean_file_name(&format!("stu{c}dents.csv")),
                "students.csv",
                "U+{:04X}",
                c as u32
            );
        }
        assert_eq!(clean_file_name("\u{202E}"), "upload.csv");
        assert_eq!(clean_file_name("élèves été.csv"), "élèves été.csv");
        assert_eq!(clean_file_name("学生.csv"), "学生.csv");
    }
}
