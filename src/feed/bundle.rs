//! A OneRoster CSV set as it arrives: a zip, or a folder. Takes out only the files a sync
//! reads ([`WANTED`]: the manifest, orgs, users, 1.2's roles, and the roster files), and
//! refuses archives that try to escape
//! (entry names with `..` or an absolute path), that would inflate past the limits (zip
//! bombs: total size, per-file size, compression ratio), or that hold too many entries.
//! No SQL, no HTTP.

use crate::domain::roster::RosterFeed;
use crate::feed::oneroster::{self, FileMode, Manifest, Org, Roles, SetInput};
use crate::feed::oneroster_rosters;
use crate::feed::provider::{ProviderUser, UserSink};
use std::collections::HashMap;
use std::io::{Read, Seek};
use std::path::Path;

/// The files of a OneRoster set this reader takes out (lower-case names).
pub const WANTED: [&str; 8] = [
    "manifest.csv",
    "orgs.csv",
    "users.csv",
    "roles.csv",
    "academicsessions.csv",
    "courses.csv",
    "classes.csv",
    "enrollments.csv",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest single file taken out.
    pub max_file: u64,
    /// Largest total of every entry's uncompressed size.
    pub max_total: u64,
    /// Largest uncompressed / compressed ratio of an entry over 1 MiB.
    pub max_ratio: u64,
    pub max_entries: usize,
    /// Files larger than this are kept on disk (a temporary file, or the set's own file in a
    /// folder) rather than in memory; `None` keeps every file in memory.
    pub spill_over: Option<u64>,
}

impl Limits {
    /// Limits for sets whose CSV files may each be as large as an upload.
    pub fn for_upload(max_bytes: u64) -> Limits {
        Limits {
            max_file: max_bytes,
            max_total: max_bytes.saturating_mul(4),
            max_ratio: 100,
            max_entries: 10_000,
            spill_over: Some(SPILL_OVER),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    #[error("this is not a zip file a OneRoster set can be read from: {0}")]
    NotZip(String),
    #[error("the zip entry \"{0}\" points outside the archive; the zip was refused")]
    Traversal(String),
    #[error("the zip unpacks to more than {} (a zip bomb?); it was refused", human(*.limit))]
    TooLargeTotal { limit: u64 },
    #[error("{name} is larger than the limit of {}", human(*.limit))]
    TooLargeFile { name: String, limit: u64 },
    #[error(
        "the zip entry \"{name}\" is compressed more than {ratio}:1 (a zip bomb?); the zip was refused"
    )]
    Ratio { name: String, ratio: u64 },
    #[error("the zip has more than {0} entries; it was refused")]
    TooManyEntries(usize),
    #[error("the set has two files named {0}")]
    Ambiguous(String),
    #[error("the set has no manifest.csv (a OneRoster 1.1 CSV set needs one)")]
    NoManifest,
    #[error("the set could not be read: {0}")]
    Io(String),
}

fn human(bytes: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if bytes >= MIB {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// Files over this size are read from disk, not memory (see [`Limits::spill_over`]).
pub const SPILL_OVER: u64 = 8 * 1024 * 1024;

/// A file taken out of a set.
#[derive(Debug)]
enum Content {
    Bytes(Vec<u8>),
    /// On disk, with its number of newlines.
    File(std::fs::File, usize),
}

/// The files taken out of a set, by lower-case file name.
#[derive(Debug, Default)]
pub struct Bundle {
    files: HashMap<String, Content>,
}

impl Bundle {
    /// A file's bytes, when it is held in memory (every file of a bundle opened without
    /// spilling; see [`Limits::spill_over`]).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        match self.files.get(name)? {
            Content::Bytes(b) => Some(b),
            Content::File(..) => None,
        }
    }

    /// A file, in memory or on disk.
    pub fn input(&self, name: &str) -> Option<SetInput<'_>> {
        Some(match self.files.get(name)? {
            Content::Bytes(b) => SetInput::Bytes(b),
            Content::File(f, lines) => SetInput::File(f, *lines),
        })
    }

    fn put(&mut self, name: String, content: Content) -> Result<(), BundleError> {
        if self.files.contains_key(&name) {
            return Err(BundleError::Ambiguous(name));
        }
        self.files.insert(name, content);
        Ok(())
    }
}

/// What a OneRoster CSV set holds, read as its manifest lists it.
#[derive(Debug)]
pub struct SetContents {
    pub manifest: Manifest,
    pub orgs: Vec<Org>,
    pub users: Vec<ProviderUser>,
    /// `None` when the manifest lists no roster file.
    pub rosters: Option<RosterFeed>,
}

impl Bundle {
    /// Read the set (OneRoster 1.1, or 1.2 with `roles.csv`) as its manifest lists it. `Err`:
    /// why the set cannot be used.
    /// Each file's bytes are given back once it is read (a district's users.csv and
    /// enrollments.csv run to hundreds of MB).
    pub fn read_oneroster(mut self, max_bytes: u64) -> Result<SetContents, String> {
        let SetHead {
            manifest,
            orgs,
            roles,
        } = self.read_head(max_bytes)?;
        let mut users = Vec::new();
        self.read_users(&manifest, roles.as_ref(), max_bytes, &mut users)?;
        drop(roles);
        self.forget_users();
        let rosters = self.read_rosters(&manifest, max_bytes)?;
        Ok(SetContents {
            manifest,
            orgs,
            users,
            rosters,
        })
    }

    /// What the set's users are read with: its manifest, orgs and (1.2) roles.
    pub fn read_head(&self, max_bytes: u64) -> Result<SetHead, String> {
        let manifest = self
            .input("manifest.csv")
            .ok_or_else(|| BundleError::NoManifest.to_string())?;
        let manifest = match manifest {
            SetInput::Bytes(b) => oneroster::parse_manifest(b),
            SetInput::File(..) => oneroster::parse_manifest(&read_all(manifest)?),
        }
        .map_err(|e| e.to_string())?;
        let orgs = match self.listed(manifest.orgs, "orgs.csv")? {
            Some(input) => {
                let bytes = match input {
                    SetInput::Bytes(b) => std::borrow::Cow::Borrowed(b),
                    SetInput::File(..) => std::borrow::Cow::Owned(read_all(input)?),
                };
                oneroster::parse_orgs_csv(&bytes, max_bytes).map_err(|e| e.to_string())?
            }
            None => Vec::new(),
        };
        let roles = match self.listed(manifest.roles, "roles.csv")? {
            Some(input) => {
                Some(oneroster::parse_roles_csv(input, max_bytes).map_err(|e| e.to_string())?)
            }
            None => None,
        };
        Ok(SetHead {
            manifest,
            orgs,
            roles,
        })
    }

    /// Give each record of `users.csv` (when the manifest lists it) to `out` as it is read.
    pub fn read_users(
        &self,
        manifest: &Manifest,
        roles: Option<&Roles>,
        max_bytes: u64,
        out: &mut impl UserSink,
    ) -> Result<(), String> {
        if let Some(input) = self.listed(manifest.users, "users.csv")? {
            oneroster::each_user(input, max_bytes, roles, out).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Let the orgs, roles and users files go once they are read.
    pub fn forget_users(&mut self) {
        for read in ["orgs.csv", "roles.csv", "users.csv"] {
            self.files.remove(read);
        }
    }

    /// The set's classes, terms and enrollments (`None` when the manifest lists no roster
    /// file).
    pub fn read_rosters(
        &self,
        manifest: &Manifest,
        max_bytes: u64,
    ) -> Result<Option<RosterFeed>, String> {
        oneroster_rosters::read_csv(manifest, |name| self.input(name), max_bytes)
            .map_err(|e| e.to_string())
    }

    /// A file the manifest lists (`None` when it says the file is absent; `Err` when it
    /// lists one the set lacks).
    fn listed(&self, mode: FileMode, name: &'static str) -> Result<Option<SetInput<'_>>, String> {
        match mode {
            FileMode::Absent => Ok(None),
            _ => self
                .input(name)
                .map(Some)
                .ok_or_else(|| oneroster::SetError::Missing(name).to_string()),
        }
    }
}

/// A set's manifest, orgs and (1.2) roles: what its users are read with.
pub struct SetHead {
    pub manifest: Manifest,
    pub orgs: Vec<Org>,
    pub roles: Option<Roles>,
}

/// The file name an entry path ends in, lower-cased, when it is one the reader wants.
fn wanted(path: &str) -> Option<String> {
    wanted_in(path, &WANTED)
}

/// The file name an entry path ends in, lower-cased, when it is one of `names` (lower-case).
fn wanted_in(path: &str, names: &[&str]) -> Option<String> {
    let name = base_name(path)?;
    names.contains(&name.as_str()).then_some(name)
}

/// The lower-cased file name an entry path ends in.
fn base_name(path: &str) -> Option<String> {
    Some(path.rsplit(['/', '\\']).next()?.to_ascii_lowercase())
}

/// Is this entry name safe: relative, no `..`, no drive letter, no NUL?
fn safe_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(['/', '\\'])
        && !name.contains('\0')
        && name.as_bytes().get(1).is_none_or(|b| *b != b':')
        && name.split(['/', '\\']).all(|part| part != "..")
}

/// Read a set from a zip.
pub fn from_zip<R: Read + Seek>(reader: R, limits: &Limits) -> Result<Bundle, BundleError> {
    zip_files(reader, limits, wanted)
}

/// Take the files `pick` names (by lower-case file name) out of a zip, under `limits`.
fn zip_files<R: Read + Seek>(
    reader: R,
    limits: &Limits,
    pick: impl Fn(&str) -> Option<String>,
) -> Result<Bundle, BundleError> {
    let mut zip = zip::ZipArchive::new(reader).map_err(|e| BundleError::NotZip(e.to_string()))?;
    if zip.len() > limits.max_entries {
        return Err(BundleError::TooManyEntries(limits.max_entries));
    }
    // Every entry is checked before anything is taken out.
    let mut total: u64 = 0;
    let mut take = Vec::new();
    for i in 0..zip.len() {
        let entry = zip
            .by_index_raw(i)
            .map_err(|e| BundleError::NotZip(e.to_string()))?;
        let name = entry
            .name()
            .map_err(|e| BundleError::NotZip(e.to_string()))?
            .to_string();
        if !safe_name(&name) || entry.enclosed_name().is_none() {
            return Err(BundleError::Traversal(name));
        }
        let size = entry.size();
        total = total.saturating_add(size);
        if total > limits.max_total {
            return Err(BundleError::TooLargeTotal {
                limit: limits.max_total,
            });
        }
        let compressed = entry.compressed_size().max(1);
        if size > 1024 * 1024 && size / compressed > limits.max_ratio {
            return Err(BundleError::Ratio {
                name,
                ratio: limits.max_ratio,
            });
        }
        if entry.is_dir() {
            continue;
        }
        if let Some(file) = pick(&name) {
            if size > limits.max_file {
                return Err(BundleError::TooLargeFile {
                    name: file,
                    limit: limits.max_file,
                });
            }
            take.push((i, file, size));
        }
    }
    let mut bundle = Bundle::default();
    for (i, file, size) in take {
        let entry = zip
            .by_index(i)
            .map_err(|e| BundleError::NotZip(e.to_string()))?;
        // Sizes in the archive can lie: never read more than the limit.
        let mut input = entry.take(limits.max_file + 1);
        let (content, len) = match limits.spill_over {
            // The stated size picks where it goes (a lie is still capped by the limit).
            Some(over) if size > over => spill(&mut input)?,
            _ => {
                let mut bytes = Vec::new();
                input
                    .read_to_end(&mut bytes)
                    .map_err(|e| BundleError::Io(e.to_string()))?;
                let len = bytes.len() as u64;
                (Content::Bytes(bytes), len)
            }
        };
        if len > limits.max_file {
            return Err(BundleError::TooLargeFile {
                name: file,
                limit: limits.max_file,
            });
        }
        bundle.put(file, content)?;
    }
    Ok(bundle)
}

/// Copy `input` into a temporary file (deleted when closed), counting its newlines.
fn spill(input: &mut impl Read) -> Result<(Content, u64), BundleError> {
    use std::io::Write;
    let io = |e: std::io::Error| BundleError::Io(e.to_string());
    let mut file = std::io::BufWriter::new(tempfile::tempfile().map_err(io)?);
    let (mut len, mut lines) = (0u64, 0usize);
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = input.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        len += n as u64;
        lines += memchr::memchr_iter(b'\n', &buf[..n]).count();
        file.write_all(&buf[..n]).map_err(io)?;
    }
    let file = file.into_inner().map_err(|e| io(e.into_error()))?;
    Ok((Content::File(file, lines), len))
}

/// The newlines of a file on disk.
fn count_lines(mut f: &std::fs::File) -> std::io::Result<usize> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut lines = 0;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(lines);
        }
        lines += memchr::memchr_iter(b'\n', &buf[..n]).count();
    }
}

/// A small file of a set read whole (the manifest and orgs are read from bytes).
fn read_all(input: SetInput<'_>) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    input
        .reader()
        .and_then(|mut r| r.read_to_end(&mut bytes))
        .map_err(|e| format!("the set could not be read: {e}"))?;
    Ok(bytes)
}

/// Read a set from a folder (only its own files, not subfolders).
pub fn from_dir(dir: &Path, limits: &Limits) -> Result<Bundle, BundleError> {
    dir_files(dir, limits, wanted)
}

/// Read the files `pick` names (by lower-case file name) from a folder, under `limits`.
fn dir_files(
    dir: &Path,
    limits: &Limits,
    pick: impl Fn(&str) -> Option<String>,
) -> Result<Bundle, BundleError> {
    let mut bundle = Bundle::default();
    let entries = std::fs::read_dir(dir).map_err(|e| BundleError::Io(e.to_string()))?;
    for entry in entries {
        let entry = entry.map_err(|e| BundleError::Io(e.to_string()))?;
        let Some(file) = entry.file_name().to_str().and_then(&pick) else {
            continue;
        };
        let meta = entry
            .metadata()
            .map_err(|e| BundleError::Io(e.to_string()))?;
        if !meta.is_file() {
            continue;
        }
        if meta.len() > limits.max_file {
            return Err(BundleError::TooLargeFile {
                name: file,
                limit: limits.max_file,
            });
        }
        let io = |e: std::io::Error| BundleError::Io(e.to_string());
        let content = match limits.spill_over {
            // The set's own file is read where it is: only its newlines are counted.
            Some(over) if meta.len() > over => {
                let f = std::fs::File::open(entry.path()).map_err(io)?;
                let lines = count_lines(&f).map_err(io)?;
                Content::File(f, lines)
            }
            _ => Content::Bytes(std::fs::read(entry.path()).map_err(io)?),
        };
        bundle.put(file, content)?;
    }
    Ok(bundle)
}

/// Is `path` something [`open`] reads: a folder with a `manifest.csv` or `users.csv`, or a
/// `.zip` file?
pub fn looks_like_set(path: &Path) -> bool {
    if path.is_dir() {
        return path.join("manifest.csv").is_file() || path.join("users.csv").is_file();
    }
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("zip"))
}

/// The files a OneRoster CSV set may hold (the 1.1 and 1.2 CSV bindings), lower-cased: the
/// ones a sync reads and the others it leaves alone.
pub const ONEROSTER_FILES: [&str; 17] = [
    "manifest.csv",
    "orgs.csv",
    "users.csv",
    "roles.csv",
    "academicsessions.csv",
    "courses.csv",
    "classes.csv",
    "enrollments.csv",
    "demographics.csv",
    "userprofiles.csv",
    "resources.csv",
    "classresources.csv",
    "courseresources.csv",
    "userresources.csv",
    "lineitems.csv",
    "results.csv",
    "categories.csv",
];

/// The kind of set several files sent in one upload make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetKind {
    /// Microsoft SDS v1 (`School.csv`, `Section.csv`, …).
    Sds,
    /// OneRoster CSV (`manifest.csv`, `orgs.csv`, `users.csv`, …).
    OneRoster,
}

impl SetKind {
    /// The name of the zip the files are put in (the run's file).
    pub fn zip_name(self) -> &'static str {
        match self {
            SetKind::Sds => "sds-set.zip",
            SetKind::OneRoster => "oneroster-set.zip",
        }
    }
}

/// Do several files sent in one upload (their names as sent) make one set? The files of
/// one SDS v1 set ([`sds::is_sds`](crate::feed::sds::is_sds), nothing else), or of one
/// OneRoster CSV set (its file names only, with its `manifest.csv`); each name
/// once, any case. `Err`: the message, naming the files.
pub fn set_of_files(names: &[String]) -> Result<SetKind, String> {
    let lower: Vec<String> = names
        .iter()
        .map(|n| n.trim().to_ascii_lowercase())
        .collect();
    let unique = lower.iter().collect::<std::collections::HashSet<_>>().len() == lower.len();
    let all_in = |list: &[&str]| lower.iter().all(|n| list.contains(&n.as_str()));
    let has = |n: &str| lower.iter().any(|x| x == n);
    if unique && all_in(&crate::feed::sds::FILES_LOWER) && crate::feed::sds::is_sds(&lower) {
        return Ok(SetKind::Sds);
    }
    if unique && all_in(&ONEROSTER_FILES) && has("manifest.csv") {
        return Ok(SetKind::OneRoster);
    }
    Err(format!(
        "the {} files sent ({}) are not one set: send one CSV, or the files of one SDS / \
         OneRoster set (e.g. School.csv, Section.csv, Student.csv, Teacher.csv, \
         StudentEnrollment.csv, TeacherRoster.csv; or manifest.csv, orgs.csv, users.csv …)",
        names.len(),
        names.join(", ")
    ))
}

/// Read a set from a folder or a zip file.
pub fn open(path: &Path, limits: &Limits) -> Result<Bundle, BundleError> {
    if path.is_dir() {
        return from_dir(path, limits);
    }
    let file = std::fs::File::open(path).map_err(|e| BundleError::Io(e.to_string()))?;
    from_zip(std::io::BufReader::new(file), limits)
}

/// Read the files named `names` (lower-case file names; any case in the set) from a folder
/// or a zip, under the same limits and checks as a OneRoster set (SDS sets, issue 15).
pub fn open_files(path: &Path, limits: &Limits, names: &[&str]) -> Result<Bundle, BundleError> {
    let pick = |p: &str| wanted_in(p, names);
    // SDS files are read from memory (`Bundle::get`).
    let limits = &Limits {
        spill_over: None,
        ..*limits
    };
    if path.is_dir() {
        return dir_files(path, limits, pick);
    }
    let file = std::fs::File::open(path).map_err(|e| BundleError::Io(e.to_string()))?;
    zip_files(std::io::BufReader::new(file), limits, pick)
}

/// The lower-cased names of the files in a folder (not its subfolders) or a zip (any
/// depth), to tell what kind of set it is; empty when it cannot be read.
pub fn file_names(path: &Path) -> Vec<String> {
    if path.is_dir() {
        return std::fs::read_dir(path)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                    .filter_map(|e| e.file_name().to_str().and_then(base_name))
                    .collect()
            })
            .unwrap_or_default();
    }
    let Ok(file) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let Ok(zip) = zip::ZipArchive::new(std::io::BufReader::new(file)) else {
        return Vec::new();
    };
    zip.file_names()
        .filter_map(Result::ok)
        .filter_map(|n| base_name(&n))
        .collect()
}

#[cfg(test)]
mod set_tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn several_files_are_one_set_by_their_names() {
        let sds = names(&[
            "School.csv",
            "Section.csv",
            "Student.csv",
            "Teacher.csv",
            "StudentEnrollment.csv",
            "TeacherRoster.csv",
        ]);
        assert_eq!(set_of_files(&sds), Ok(SetKind::Sds));
        assert_eq!(
            set_of_files(&names(&[
                "manifest.csv",
                "ORGS.csv",
                "users.csv",
                "classes.csv"
            ])),
            Ok(SetKind::OneRoster)
        );
        // A mixed bag, a stray file, a name twice, or a set missing its key files.
        for bag in [
            names(&["students.csv", "teachers.csv"]),
            names(&["School.csv", "Student.csv", "notes.csv"]),
            names(&["users.csv", "users.csv"]),
            names(&["classes.csv", "enrollments.csv"]),
            names(&["orgs.csv", "users.csv"]),
            names(&["School.csv", "Student.csv", "manifest.csv"]),
        ] {
            let e = set_of_files(&bag).unwrap_err();
            assert!(e.contains(&bag[0]) && e.contains("send one CSV"), "{e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Cursor, Write};
    use zip::write::SimpleFileOptions;

    fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let opts =
            SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        for (name, bytes) in entries {
            w.start_file(*name, opts).unwrap();
            w.write_all(bytes).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    fn limits() -> Limits {
        Limits::for_upload(10 * 1024 * 1024)
    }

    #[test]
    fn takes_the_wanted_files_from_the_root_or_a_folder() {
        let z = zip_of(&[
            ("set/manifest.csv", b"propertyName,value\n"),
            ("set/Users.csv", b"sourcedId\n1\n"),
            ("set/classes.csv", b"x\n"),
            ("set/AcademicSessions.csv", b"y\n"),
            ("set/demographics.csv", b"z\n"),
        ]);
        let b = from_zip(Cursor::new(z), &limits()).unwrap();
        assert_eq!(b.get("users.csv"), Some(&b"sourcedId\n1\n"[..]));
        assert!(b.get("manifest.csv").is_some());
        assert_eq!(b.get("classes.csv"), Some(&b"x\n"[..]));
        assert_eq!(b.get("academicsessions.csv"), Some(&b"y\n"[..]));
        assert!(b.get("demographics.csv").is_none(), "a file no sync reads");
    }

    #[test]
    fn refuses_traversal() {
        for name in [
            "../users.csv",
            "a/../../users.csv",
            "/etc/users.csv",
            "C:/users.csv",
        ] {
            let z = zip_of(&[(name, b"x")]);
            assert!(
                matches!(
                    from_zip(Cursor::new(z), &limits()),
                    Err(BundleError::Traversal(_))
                ),
                "{name}"
            );
        }
    }

    #[test]
    fn refuses_bombs() {
        let big = vec![b'a'; 4 * 1024 * 1024];
        let z = zip_of(&[("users.csv", &big)]);
        assert!(matches!(
            from_zip(Cursor::new(z.clone()), &limits()),
            Err(BundleError::Ratio { .. })
        ));
        let small = Limits {
            max_total: 1024 * 1024,
            ..limits()
        };
        assert!(matches!(
            from_zip(Cursor::new(z), &small),
            Err(BundleError::TooLargeTotal { .. })
        ));
        let tiny = Limits {
            max_file: 10,
            ..limits()
        };
        let z = zip_of(&[("users.csv", b"sourcedId,role\n1,student\n")]);
        assert!(matches!(
            from_zip(Cursor::new(z), &tiny),
            Err(BundleError::TooLargeFile { .. })
        ));
    }

    #[test]
    fn not_a_zip() {
        assert!(matches!(
            from_zip(Cursor::new(b"sourcedId,role\n".to_vec()), &limits()),
            Err(BundleError::NotZip(_))
        ));
    }
}

#[cfg(test)]
mod spill_tests {
    use super::*;
    use std::io::{Cursor, Write};
    use zip::write::SimpleFileOptions;

    const SET: &[(&str, &str)] = &[
        (
            "manifest.csv",
            "propertyName,value\noneroster.version,1.1\nfile.orgs,bulk\nfile.users,bulk\nfile.classes,bulk\nfile.enrollments,bulk\n",
        ),
        ("orgs.csv", "sourcedId,name,type\nS1,North High,school\n"),
        (
            "users.csv",
            "sourcedId,enabledUser,orgSourcedIds,role,username,givenName,familyName,email\n\
             t1,true,S1,teacher,tt,Tess,Teach,t1@d.org\n\
             s1,true,S1,student,ss,Sam,Stu,s1@d.org\n\
             s2,true,S1,student,s2,Ann,\"Lee, Jr\",s2@d.org\n",
        ),
        (
            "classes.csv",
            "sourcedId,title,schoolSourcedId,courseSourcedId,termSourcedIds\nC1,Algebra,S1,,\n",
        ),
        (
            "enrollments.csv",
            "sourcedId,classSourcedId,schoolSourcedId,userSourcedId,role,primary\n\
             e1,C1,S1,t1,teacher,true\n\
             e2,C1,S1,s1,student,false\n\
             e3,C1,S1,s2,student,\n",
        ),
    ];

    fn zip() -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let opts =
            SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        for (name, text) in SET {
            w.start_file(*name, opts).unwrap();
            w.write_all(text.as_bytes()).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    fn read(b: Bundle) -> SetContents {
        b.read_oneroster(1 << 20).unwrap()
    }

    fn same(a: &SetContents, b: &SetContents) {
        assert_eq!(a.orgs, b.orgs);
        assert_eq!(a.users, b.users);
        let (ra, rb) = (a.rosters.as_ref().unwrap(), b.rosters.as_ref().unwrap());
        assert_eq!(ra.classes, rb.classes);
        assert_eq!(ra.enrollments, rb.enrollments);
        assert_eq!(
            (ra.classes_complete, ra.enrollments_complete),
            (rb.classes_complete, rb.enrollments_complete)
        );
    }

    #[test]
    fn a_set_read_from_disk_reads_as_the_same_set_in_memory() {
        let in_memory = Limits {
            spill_over: None,
            ..Limits::for_upload(1 << 20)
        };
        // Every file over 0 bytes goes to disk.
        let on_disk = Limits {
            spill_over: Some(0),
            ..in_memory
        };
        let z = zip();
        let b = from_zip(Cursor::new(z.clone()), &on_disk).unwrap();
        assert!(b.get("users.csv").is_none(), "spilled, not held");
        assert!(matches!(b.input("users.csv"), Some(SetInput::File(_, 4))));
        let spilled = read(b);
        let held = read(from_zip(Cursor::new(z), &in_memory).unwrap());
        assert_eq!(held.users.len(), 3);
        assert_eq!(held.rosters.as_ref().unwrap().enrollments.len(), 3);
        same(&spilled, &held);

        // A folder: its files are read where they are.
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in SET {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let b = from_dir(dir.path(), &on_disk).unwrap();
        assert!(matches!(
            b.input("enrollments.csv"),
            Some(SetInput::File(_, 4))
        ));
        same(&read(b), &held);
    }

    #[test]
    fn a_spilled_file_is_still_held_to_the_size_limit() {
        let limits = Limits {
            spill_over: Some(0),
            max_file: 64,
            ..Limits::for_upload(1 << 20)
        };
        // The archive states a size within the limit only if it is honest; either way the
        // file is refused once it inflates past it.
        match from_zip(Cursor::new(zip()), &limits) {
            Err(BundleError::TooLargeFile { limit, .. }) => assert_eq!(limit, 64),
            other => panic!("expected TooLargeFile, got {other:?}"),
        }
    }
}
