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

/// The last component of a name a browser, script or SFTP client gave (`../../x.csv` and
/// `C:\\dir\\x.csv` both become `x.csv`), without control characters; a safe source key.
pub fn clean_file_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = last
        .chars()
        .filter(|c| !c.is_control())
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
}
