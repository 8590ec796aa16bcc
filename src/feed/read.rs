//! Bytes → records: size limit, encoding, delimiter, header line. Streams; never loads the
//! whole file.
//!
//! `open` checks everything that makes a whole file unusable (empty, too large, binary, no
//! header, duplicate header names, header without rows) before any row is handed out, so a
//! caller learns about file errors before it has done any work. The reader then yields one
//! item per record: the outer `Result` is a file-level failure (an I/O error: stop, apply
//! nothing), the inner one a record the CSV layer could not read (a row error; reading goes
//! on).
//!
//! Encoding: UTF-8 with or without BOM; UTF-16 when it has a BOM (Excel's "Unicode text");
//! otherwise, when the bytes are not valid UTF-8, Windows-1252. Delimiter: `,`, `;` or tab,
//! whichever splits the header line into the most columns (comma on ties).

use crate::feed::headers::fold;
use encoding_rs::{Encoding, UTF_8, UTF_16BE, UTF_16LE, WINDOWS_1252};
use encoding_rs_io::{DecodeReaderBytes, DecodeReaderBytesBuilder};
use std::collections::VecDeque;
use std::io::{self, Read, Seek, SeekFrom};

/// Bytes read per step of the encoding pre-pass; also how much of the start is used to
/// sniff the delimiter.
const CHUNK: usize = 64 * 1024;
/// NUL bytes in this much of the start mean the file is not text.
const BINARY_PROBE: usize = 8 * 1024;
const DELIMITERS: [u8; 3] = [b',', b';', b'\t'];

/// Longest accepted record (one row, quoted line breaks included), in decoded bytes. A user
/// row is a few hundred bytes; a longer record is a broken file (an unclosed quote, no line
/// breaks), and refusing it early keeps the reader from buffering it whole.
pub const MAX_RECORD_BYTES: u64 = 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadOptions {
    /// Largest accepted file, in bytes.
    pub max_bytes: u64,
    /// Longest accepted record, in bytes ([`MAX_RECORD_BYTES`] unless a test says otherwise).
    pub max_record_bytes: u64,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            max_bytes: 200 * 1024 * 1024,
            max_record_bytes: MAX_RECORD_BYTES,
        }
    }
}

impl ReadOptions {
    /// The usual options for files of at most `max_bytes`.
    pub fn with_max_bytes(max_bytes: u64) -> ReadOptions {
        ReadOptions {
            max_bytes,
            ..ReadOptions::default()
        }
    }
}

/// Why a whole file cannot be used (nothing of it is applied).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FileError {
    #[error("the file is empty")]
    Empty,
    #[error(
        "the file has no header line: its first line must name the columns (e.g. first_name,last_name,role,…)"
    )]
    NoHeader,
    #[error("the file has a header but no rows")]
    HeaderOnly,
    /// `columns` are 1-based column numbers.
    #[error("the column \"{name}\" appears twice in the header (columns {} and {})", .columns.0, .columns.1)]
    DuplicateHeader {
        name: String,
        columns: (usize, usize),
    },
    #[error("the file is larger than the limit of {}", human_size(*.limit))]
    TooLarge { limit: u64 },
    #[error("the file could not be read: {0}")]
    Unreadable(String),
    #[error("this is not a CSV file (binary content)")]
    Binary,
    /// One record is longer than [`ReadOptions::max_record_bytes`] (read no further).
    #[error(
        "line {line} is longer than the limit of {} for one row (is a quote left open, or are the line breaks missing?); nothing was applied",
        human_size(*.limit)
    )]
    RecordTooLong { line: u64, limit: u64 },
}

/// The I/O error [`LineIndex`] raises when a record grows past the limit.
#[derive(Debug, thiserror::Error)]
#[error("record too long")]
struct RecordTooLong {
    line: u64,
    limit: u64,
}

impl From<io::Error> for FileError {
    fn from(e: io::Error) -> Self {
        FileError::Unreadable(e.to_string())
    }
}

/// A record the CSV layer could not read; the rest of the file is still read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct RowIssue {
    pub line: u64,
    pub message: String,
}

/// One data record as sent (cells untrimmed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRecord {
    /// 1-based line where the record starts (the header is line 1 in a usual file).
    pub line: u64,
    pub fields: Vec<String>,
}

/// What the reader yields per record: outer error = the file failed (stop), inner error = one
/// unreadable record (report it as a row error and go on).
pub type ReadItem = Result<Result<RawRecord, RowIssue>, FileError>;

/// A CSV file opened for streaming. Iterate it for the data records.
pub struct FeedReader<R: Read> {
    csv: csv::Reader<LineIndex<DecodeReaderBytes<R, Vec<u8>>>>,
    headers: Vec<String>,
    header_line: u64,
    delimiter: u8,
    encoding: &'static Encoding,
    record: csv::StringRecord,
    /// The first data record, read ahead by `open` to tell a header-only file.
    pending: Option<ReadItem>,
    records: u64,
    done: bool,
}

/// Opens a CSV file (a `File`, or `Cursor` over bytes) for streaming.
///
/// Reads the file once to check its encoding (stopping at the first byte that is not UTF-8),
/// then seeks back and streams it through the CSV parser.
pub fn open<R: Read + Seek>(mut input: R, opts: &ReadOptions) -> Result<FeedReader<R>, FileError> {
    let len = input.seek(SeekFrom::End(0))?;
    input.seek(SeekFrom::Start(0))?;
    if len == 0 {
        return Err(FileError::Empty);
    }
    if len > opts.max_bytes {
        return Err(FileError::TooLarge {
            limit: opts.max_bytes,
        });
    }
    let head = read_up_to(&mut input, CHUNK)?;
    let encoding = detect_encoding(&head, &mut input)?;
    let delimiter = sniff_delimiter(&decode_head(&head, encoding));

    input.seek(SeekFrom::Start(0))?;
    let mut builder = DecodeReaderBytesBuilder::new();
    if encoding == WINDOWS_1252 {
        builder.encoding(Some(WINDOWS_1252));
    } else {
        // UTF-8 passes through untouched (already checked) minus its BOM; UTF-16 is found
        // again by its BOM and transcoded.
        builder.encoding(None).utf8_passthru(true).strip_bom(true);
    }
    let csv = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .buffer_capacity(CHUNK)
        .from_reader(LineIndex::new(builder.build(input), opts.max_record_bytes));
    let mut reader = FeedReader {
        csv,
        headers: Vec::new(),
        header_line: 0,
        delimiter,
        encoding,
        record: csv::StringRecord::new(),
        pending: None,
        records: 0,
        done: false,
    };
    reader.read_header()?;
    match reader.read_next() {
        None => Err(FileError::HeaderOnly),
        Some(Err(e)) => Err(e),
        first => {
            reader.pending = first;
            Ok(reader)
        }
    }
}

impl<R: Read> FeedReader<R> {
    /// The header names, trimmed (a BOM removed).
    pub fn headers(&self) -> &[String] {
        &self.headers
    }

    /// The line the header was found on (1 unless blank lines precede it).
    pub fn header_line(&self) -> u64 {
        self.header_line
    }

    pub fn delimiter(&self) -> u8 {
        self.delimiter
    }

    /// `UTF-8`, `UTF-16LE`, `UTF-16BE` or `windows-1252`.
    pub fn encoding_name(&self) -> &'static str {
        self.encoding.name()
    }

    /// Data records handed out so far (readable or not; blank lines not counted).
    pub fn records_read(&self) -> u64 {
        self.records
            .saturating_sub(u64::from(self.pending.is_some()))
    }

    fn read_header(&mut self) -> Result<(), FileError> {
        let header = match self.read_next() {
            None => return Err(FileError::Empty),
            Some(Err(e)) => return Err(e),
            Some(Ok(Err(_))) => return Err(FileError::NoHeader),
            Some(Ok(Ok(rec))) => rec,
        };
        self.records = 0;
        self.header_line = header.line;
        self.headers = header
            .fields
            .iter()
            .map(|h| h.trim_start_matches('\u{feff}').trim().to_string())
            .collect();
        let looks_like_data = self
            .headers
            .iter()
            .any(|h| crate::domain::parse_email(h).is_some());
        if self.headers.iter().all(|h| h.is_empty()) || looks_like_data {
            return Err(FileError::NoHeader);
        }
        let mut seen = std::collections::HashMap::new();
        for (i, h) in self
            .headers
            .iter()
            .enumerate()
            .filter(|(_, h)| !h.is_empty())
        {
            if let Some(first) = seen.insert(fold(h), i) {
                let name = self.headers[first].clone();
                return Err(FileError::DuplicateHeader {
                    name,
                    columns: (first + 1, i + 1),
                });
            }
        }
        Ok(())
    }

    /// The line a record starts on. csv's own `line()` is taken before it skips the blank
    /// lines (and the `\n` of a CRLF) in front of a record, and never counts a lone `\r`.
    fn line_of(&mut self, pos: Option<&csv::Position>) -> u64 {
        let byte = pos.map_or(0, |p| p.byte());
        self.csv
            .get_mut()
            .line_at(byte)
            .unwrap_or_else(|| pos.map_or(0, |p| p.line()))
    }

    /// The next non-blank record straight from the CSV parser.
    fn read_next(&mut self) -> Option<ReadItem> {
        if self.done {
            return None;
        }
        loop {
            match self.csv.read_record(&mut self.record) {
                Ok(false) => {
                    self.done = true;
                    return None;
                }
                Ok(true) => {
                    let next = self.csv.position().byte();
                    let index = self.csv.get_mut();
                    let (start, limit) = (index.record_start, index.limit);
                    index.record_start = next;
                    if is_blank(&self.record) || self.is_empty_row() {
                        continue;
                    }
                    self.records += 1;
                    let pos = self.record.position().cloned();
                    let line = self.line_of(pos.as_ref());
                    // `LineIndex` stops a record that runs far past the limit; one that
                    // ends just past it (within the parser's buffer) is caught here.
                    if next - start > limit {
                        self.done = true;
                        return Some(Err(FileError::RecordTooLong { line, limit }));
                    }
                    let fields = self.record.iter().map(str::to_string).collect();
                    return Some(Ok(Ok(RawRecord { line, fields })));
                }
                Err(e) => {
                    if let csv::ErrorKind::Io(io) = e.kind() {
                        self.done = true;
                        if let Some(long) =
                            io.get_ref().and_then(|i| i.downcast_ref::<RecordTooLong>())
                        {
                            return Some(Err(FileError::RecordTooLong {
                                line: long.line,
                                limit: long.limit,
                            }));
                        }
                        return Some(Err(FileError::Unreadable(io.to_string())));
                    }
                    let line = self.line_of(e.position());
                    let next = self.csv.position().byte();
                    self.csv.get_mut().record_start = next;
                    self.records += 1;
                    let message = format!("this line could not be read: {e}");
                    return Some(Ok(Err(RowIssue { line, message })));
                }
            }
        }
    }
}

impl<R: Read> Iterator for FeedReader<R> {
    type Item = ReadItem;

    fn next(&mut self) -> Option<ReadItem> {
        self.pending.take().or_else(|| self.read_next())
    }
}

/// Passes the decoded text to the CSV parser, noting where each non-blank line starts, so
/// a record's position can be turned into its first line. Line breaks: `\n`, `\r\n`, `\r`.
/// Refuses to read on once the record being parsed is longer than `limit` (an I/O error
/// carrying [`RecordTooLong`]), so a huge record is never buffered whole.
struct LineIndex<R> {
    inner: R,
    /// Where the record the parser is reading starts (set by the reader after each record).
    record_start: u64,
    limit: u64,
    offset: u64,
    line: u64,
    prev: Option<u8>,
    /// (byte offset, line) of the first byte of each line not starting with a line break,
    /// from the record being looked up to what the parser has read ahead.
    starts: VecDeque<(u64, u64)>,
}

impl<R> LineIndex<R> {
    fn new(inner: R, limit: u64) -> Self {
        LineIndex {
            inner,
            record_start: 0,
            limit,
            offset: 0,
            line: 1,
            prev: None,
            starts: VecDeque::new(),
        }
    }

    /// The line of the first non-line-break byte at or after `byte` (where a record that the
    /// parser placed at `byte` really starts). Forgets everything before it.
    fn line_at(&mut self, byte: u64) -> Option<u64> {
        while self.starts.front().is_some_and(|&(at, _)| at < byte) {
            self.starts.pop_front();
        }
        self.starts.front().map(|&(_, line)| line)
    }
}

impl<R: Read> Read for LineIndex<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // The parser asks for more only when it has used what it has: everything from
        // `record_start` to `offset` belongs to the record it is still reading.
        if self.offset.saturating_sub(self.record_start) > self.limit {
            let line = self.line_at(self.record_start).unwrap_or(self.line);
            return Err(io::Error::other(RecordTooLong {
                line,
                limit: self.limit,
            }));
        }
        let n = self.inner.read(buf)?;
        for &b in &buf[..n] {
            let starts_line = match self.prev {
                None => true,
                Some(b'\n') => true,
                Some(b'\r') => b != b'\n',
                Some(_) => false,
            };
            if starts_line && self.prev.is_some() {
                self.line += 1;
            }
            if starts_line && b != b'\n' && b != b'\r' {
                self.starts.push_back((self.offset, self.line));
            }
            self.prev = Some(b);
            self.offset += 1;
        }
        Ok(n)
    }
}

fn read_up_to<R: Read>(input: &mut R, n: usize) -> io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(n);
    input.by_ref().take(n as u64).read_to_end(&mut buf)?;
    Ok(buf)
}

/// Chooses the encoding. `head` is the start of the file; `rest` is positioned right after it.
fn detect_encoding<R: Read>(head: &[u8], rest: &mut R) -> Result<&'static Encoding, FileError> {
    if let Some((enc, _)) = Encoding::for_bom(head)
        && (enc == UTF_16LE || enc == UTF_16BE)
    {
        return Ok(enc);
    }
    if head[..head.len().min(BINARY_PROBE)].contains(&0) {
        return Err(FileError::Binary);
    }
    let bom = head.starts_with(b"\xEF\xBB\xBF");
    match first_invalid_utf8(head, rest)? {
        None => Ok(UTF_8),
        Some(line) if bom => Err(FileError::Unreadable(format!(
            "it starts as UTF-8 but line {line} is not valid UTF-8; save it again as CSV UTF-8"
        ))),
        Some(_) => Ok(WINDOWS_1252),
    }
}

/// Streams the rest of the input checking UTF-8; returns the 1-based line of the first
/// invalid sequence (or of a sequence cut off at the end of the file).
fn first_invalid_utf8<R: Read>(head: &[u8], rest: &mut R) -> io::Result<Option<u64>> {
    let newlines = |b: &[u8]| b.iter().filter(|&&c| c == b'\n').count() as u64;
    let mut buf = head.to_vec();
    let mut line = 1u64;
    let mut eof = head.len() < CHUNK;
    loop {
        match std::str::from_utf8(&buf) {
            Ok(_) => {
                line += newlines(&buf);
                buf.clear();
            }
            // A character cut by the chunk boundary: keep its first bytes for the next round.
            Err(e) if e.error_len().is_none() && !eof => {
                let ok = e.valid_up_to();
                line += newlines(&buf[..ok]);
                buf.drain(..ok);
            }
            Err(e) => return Ok(Some(line + newlines(&buf[..e.valid_up_to()]))),
        }
        if eof {
            return Ok(None);
        }
        let more = read_up_to(rest, CHUNK)?;
        eof = more.len() < CHUNK;
        buf.extend_from_slice(&more);
    }
}

fn decode_head(head: &[u8], encoding: &'static Encoding) -> String {
    let (text, _) = encoding.decode_with_bom_removal(head);
    text.into_owned()
}

/// The delimiter that splits the first non-blank record into the most fields; comma on ties.
fn sniff_delimiter(text: &str) -> u8 {
    let mut best = (0, b',');
    for d in DELIMITERS {
        let mut rdr = csv::ReaderBuilder::new()
            .delimiter(d)
            .has_headers(false)
            .flexible(true)
            .from_reader(text.as_bytes());
        let n = rdr
            .records()
            .filter_map(Result::ok)
            .find(|r| !is_blank(r))
            .map_or(0, |r| r.len());
        if n > best.0 {
            best = (n, d);
        }
    }
    best.1
}

/// Would a spreadsheet take this cell for a formula? It starts with `=`, `+`, `-` or `@`,
/// possibly behind whitespace or control characters, or starts with tab, CR or LF. Our
/// downloads prefix such cells with `'` (`reconcile::report::neutralise`); the validator
/// strips that prefix again.
pub fn formula_like(cell: &str) -> bool {
    cell.starts_with(['\t', '\r', '\n'])
        || cell
            .trim_start_matches(|c: char| c.is_whitespace() || c.is_control())
            .starts_with(['=', '+', '-', '@'])
}

impl<R: Read> FeedReader<R> {
    /// A data row of only empty cells, no wider than the header (`,,,`): skipped like a
    /// blank line (issue 16). A wider one stays a record (a row error).
    fn is_empty_row(&self) -> bool {
        !self.headers.is_empty()
            && self.record.len() <= self.headers.len()
            && self.record.iter().all(|c| c.trim().is_empty())
    }
}

/// No fields, or one that is empty or whitespace: a blank line.
fn is_blank(r: &csv::StringRecord) -> bool {
    r.is_empty() || (r.len() == 1 && r[0].trim().is_empty())
}

fn human_size(bytes: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{bytes} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn open_bytes(b: &[u8]) -> Result<FeedReader<Cursor<&[u8]>>, FileError> {
        open(Cursor::new(b), &ReadOptions::default())
    }

    fn read_all(b: &[u8]) -> (FeedReader<Cursor<&[u8]>>, Vec<RawRecord>) {
        let mut r = open_bytes(b).expect("opens");
        let recs = r
            .by_ref()
            .map(|i| i.expect("no I/O error").expect("readable row"))
            .collect();
        (r, recs)
    }

    fn fields(recs: &[RawRecord]) -> Vec<Vec<&str>> {
        recs.iter()
            .map(|r| r.fields.iter().map(String::as_str).collect())
            .collect()
    }

    fn lines(recs: &[RawRecord]) -> Vec<u64> {
        recs.iter().map(|r| r.line).collect()
    }

    #[test]
    fn plain_utf8() {
        let (r, recs) = read_all(b"first_name,last_name\nAnn,Lee\nBo,Kim\n");
        assert_eq!(r.headers(), ["first_name", "last_name"]);
        assert_eq!(r.delimiter(), b',');
        assert_eq!(r.encoding_name(), "UTF-8");
        assert_eq!(r.header_line(), 1);
        assert_eq!(fields(&recs), [["Ann", "Lee"], ["Bo", "Kim"]]);
        assert_eq!(lines(&recs), [2, 3]);
        assert_eq!(r.records_read(), 2);
    }

    #[test]
    fn bom_is_stripped_and_crlf_handled() {
        let (r, recs) =
            read_all(b"\xEF\xBB\xBFfirst_name,last_name\r\nJos\xC3\xA9,Pe\xC3\xB1a\r\n");
        assert_eq!(r.headers(), ["first_name", "last_name"]);
        assert_eq!(r.encoding_name(), "UTF-8");
        assert_eq!(fields(&recs), [["José", "Peña"]]);
        assert_eq!(lines(&recs), [2]);
    }

    #[test]
    fn windows_1252_is_decoded() {
        let (r, recs) =
            read_all(b"first_name,last_name\r\nJos\xe9,Pe\xf1a\r\nZo\xeb,O\x92Neil\r\n");
        assert_eq!(r.encoding_name(), "windows-1252");
        assert_eq!(fields(&recs), [["José", "Peña"], ["Zoë", "O\u{2019}Neil"]]);
    }

    #[test]
    fn european_excel_semicolons_in_windows_1252() {
        let (r, recs) = read_all(b"Pr\xe9nom;Nom;Note\r\nJos\xe9;M\xfcller;\"1,5\"\r\n");
        assert_eq!((r.delimiter(), r.encoding_name()), (b';', "windows-1252"));
        assert_eq!(r.headers(), ["Prénom", "Nom", "Note"]);
        assert_eq!(fields(&recs), [["José", "Müller", "1,5"]]);
    }

    #[test]
    fn windows_1252_found_far_into_the_file() {
        let mut b = b"first_name,last_name\n".to_vec();
        while b.len() < 3 * CHUNK {
            b.extend_from_slice(b"Ann,Lee\n");
        }
        b.extend_from_slice(b"Jos\xe9,Lee\n");
        let (r, recs) = read_all(&b);
        assert_eq!(r.encoding_name(), "windows-1252");
        assert_eq!(recs.last().map(|r| r.fields[0].as_str()), Some("José"));
    }

    #[test]
    fn utf8_character_cut_by_a_chunk_boundary_stays_utf8() {
        for (ch, len) in [("é", 2), ("€", 3), ("😀", 4)] {
            for cut in 1..len {
                let mut b = b"first_name,last_name\n".to_vec();
                let filler = CHUNK - cut - b.len() - 1;
                b.extend(std::iter::repeat_n(b'a', filler));
                b.push(b',');
                b.extend_from_slice(ch.as_bytes());
                b.extend_from_slice(b"\nBo,Kim\n");
                assert_eq!(&b[CHUNK - cut..CHUNK], &ch.as_bytes()[..cut]);
                let (r, recs) = read_all(&b);
                assert_eq!(r.encoding_name(), "UTF-8", "{ch} cut after {cut}");
                assert_eq!(recs[0].fields[1], ch);
            }
        }
    }

    #[test]
    fn utf8_sequence_cut_off_at_end_of_file_is_not_utf8() {
        let (r, recs) = read_all(b"a,b\n1,\xC3");
        assert_eq!(r.encoding_name(), "windows-1252");
        assert_eq!(fields(&recs), [["1", "Ã"]]);
    }

    #[test]
    fn file_exactly_one_chunk_long() {
        let mut b = b"a,b\n".to_vec();
        b.extend(std::iter::repeat_n(b'x', CHUNK - b.len() - 3));
        b.extend_from_slice(b",y\n");
        assert_eq!(b.len(), CHUNK);
        let (r, recs) = read_all(&b);
        assert_eq!(r.encoding_name(), "UTF-8");
        assert_eq!(recs.len(), 1);
    }

    #[test]
    fn bom_then_invalid_utf8_is_a_file_error_naming_the_line() {
        let err = open_bytes(b"\xEF\xBB\xBFa,b\n1,2\nJos\xe9,3\n").err();
        let Some(FileError::Unreadable(msg)) = err else {
            panic!("{err:?}")
        };
        assert!(msg.contains("line 3"), "{msg}");
    }

    #[test]
    fn utf16_with_bom_is_transcoded() {
        // Excel's "Unicode text": UTF-16LE with BOM, tab-delimited.
        let text = "first_name\tlast_name\r\nJosé\tLee\r\n";
        let mut b = vec![0xFF, 0xFE];
        b.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        let (r, recs) = read_all(&b);
        assert_eq!(r.encoding_name(), "UTF-16LE");
        assert_eq!(r.delimiter(), b'\t');
        assert_eq!(r.headers(), ["first_name", "last_name"]);
        assert_eq!(fields(&recs), [["José", "Lee"]]);
    }

    #[test]
    fn quoted_newlines_keep_line_numbers_right() {
        let (_, recs) =
            read_all(b"name,note\r\nAnn,\"two\r\nlines\"\r\nBo,x\r\nCy,\"a\nb\nc\"\nDi,y\n");
        assert_eq!(lines(&recs), [2, 4, 5, 8]);
        assert_eq!(recs[0].fields[1], "two\r\nlines");
        assert_eq!(recs[2].fields[1], "a\nb\nc");
    }

    #[test]
    fn quoted_header_names_and_escaped_quotes() {
        let (r, recs) = read_all(b"\"last, first\",\"note\"\n\"Lee, Ann\",\"say \"\"hi\"\"\"\n");
        assert_eq!(r.headers(), ["last, first", "note"]);
        assert_eq!(fields(&recs), [["Lee, Ann", "say \"hi\""]]);
    }

    #[test]
    fn old_mac_line_endings() {
        let (_, recs) = read_all(b"a,b\r1,2\r3,4");
        assert_eq!(fields(&recs), [["1", "2"], ["3", "4"]]);
        assert_eq!(lines(&recs), [2, 3]);
    }

    #[test]
    fn semicolon_delimiter() {
        let (r, recs) = read_all(b"first_name;last_name;note\nAnn;Lee;a,b,c\n");
        assert_eq!(r.delimiter(), b';');
        assert_eq!(fields(&recs), [["Ann", "Lee", "a,b,c"]]);
    }

    #[test]
    fn tab_delimiter() {
        let (r, recs) = read_all(b"first_name\tlast_name\nAnn\tLee, Jr\n");
        assert_eq!(r.delimiter(), b'\t');
        assert_eq!(fields(&recs), [["Ann", "Lee, Jr"]]);
    }

    #[test]
    fn delimiter_ties_go_to_comma() {
        assert_eq!(read_all(b"email\na@b.org\n").0.delimiter(), b',');
        assert_eq!(read_all(b"a,b;c\n1,2;3\n").0.delimiter(), b',');
        // A comma inside a quoted header name does not count.
        assert_eq!(read_all(b"\"x,y\";z\n1;2\n").0.delimiter(), b';');
    }

    #[test]
    fn blank_lines_are_skipped_anywhere() {
        let (r, recs) = read_all(b"\n\na,b\n\n1,2\n   \n\r\n3,4\n\n");
        assert_eq!(r.header_line(), 3);
        assert_eq!(fields(&recs), [["1", "2"], ["3", "4"]]);
        assert_eq!(lines(&recs), [5, 8]);
    }

    #[test]
    fn a_line_of_empty_cells_is_skipped_unless_wider_than_the_header() {
        let (_, recs) = read_all(b"a,b,c\n1,2,3\n,,\n , ,\n,\n4,5,6\n,,,\n7,8,9\n");
        assert_eq!(
            fields(&recs),
            [
                vec!["1", "2", "3"],
                vec!["4", "5", "6"],
                vec!["", "", "", ""],
                vec!["7", "8", "9"]
            ]
        );
        // Lines stay those of the file.
        assert_eq!(lines(&recs), [2, 6, 7, 8]);
        // A file of a header and empty rows only has no data.
        assert_eq!(
            open_bytes(b"a,b,c\n,,\n,,\n").err(),
            Some(FileError::HeaderOnly)
        );
    }

    #[test]
    fn empty_files() {
        for b in [&b""[..], b"\xEF\xBB\xBF", b"\n\n", b" \r\n \n"] {
            assert_eq!(open_bytes(b).err(), Some(FileError::Empty), "{b:?}");
        }
        assert_eq!(FileError::Empty.to_string(), "the file is empty");
    }

    #[test]
    fn header_only() {
        for b in [&b"a,b\n"[..], b"a,b", b"\xEF\xBB\xBFa,b\r\n\r\n\r\n"] {
            assert_eq!(open_bytes(b).err(), Some(FileError::HeaderOnly), "{b:?}");
        }
        assert_eq!(
            FileError::HeaderOnly.to_string(),
            "the file has a header but no rows"
        );
    }

    #[test]
    fn no_header() {
        assert_eq!(open_bytes(b",,\n1,2,3\n").err(), Some(FileError::NoHeader));
        // The first line is a person, not column names.
        assert_eq!(
            open_bytes(b"Ann,Lee,ann@x.org\nBo,Kim,bo@x.org\n").err(),
            Some(FileError::NoHeader)
        );
        assert!(
            FileError::NoHeader
                .to_string()
                .starts_with("the file has no header line")
        );
    }

    #[test]
    fn duplicate_headers_after_folding() {
        let err = open_bytes(b"Email,name,e-mail\nx,y,z\n").err();
        assert_eq!(
            err,
            Some(FileError::DuplicateHeader {
                name: "Email".into(),
                columns: (1, 3)
            })
        );
        assert_eq!(
            err.map(|e| e.to_string()).unwrap_or_default(),
            "the column \"Email\" appears twice in the header (columns 1 and 3)"
        );
        let err = open_bytes(b"First Name,first_name\nx,y\n").err();
        assert!(matches!(
            err,
            Some(FileError::DuplicateHeader {
                columns: (1, 2),
                ..
            })
        ));
        // Blank header names are not duplicates of each other.
        assert!(open_bytes(b"a,,,b\n1,2,3,4\n").is_ok());
    }

    #[test]
    fn binary_content() {
        let mut b = b"PK\x03\x04\x14\x00\x06\x00".to_vec();
        b.extend_from_slice(b"[Content_Types].xml");
        assert_eq!(open_bytes(&b).err(), Some(FileError::Binary));
        assert_eq!(
            FileError::Binary.to_string(),
            "this is not a CSV file (binary content)"
        );
        // A NUL after the first 8 KiB is just data (decoded as text).
        let mut b = b"a,b\n".to_vec();
        b.extend(std::iter::repeat_n(b'x', BINARY_PROBE));
        b.extend_from_slice(b",\x00\n");
        assert!(open_bytes(&b).is_ok());
    }

    #[test]
    fn too_large() {
        let opts = ReadOptions::with_max_bytes(10);
        let err = open(Cursor::new(&b"first_name,last_name\nA,B\n"[..]), &opts).err();
        assert_eq!(err, Some(FileError::TooLarge { limit: 10 }));
        assert_eq!(
            FileError::TooLarge { limit: 10 }.to_string(),
            "the file is larger than the limit of 10 bytes"
        );
        let limit = ReadOptions::default().max_bytes;
        assert_eq!(limit, 200 * 1024 * 1024);
        assert_eq!(
            FileError::TooLarge { limit }.to_string(),
            "the file is larger than the limit of 200 MiB"
        );
        assert!(open(Cursor::new(&b"a\n1\n"[..]), &ReadOptions::with_max_bytes(4)).is_ok());
    }

    /// Reads every item with a small record limit (the parser's buffer is 64 KiB, so the
    /// limit is checked to within one buffer).
    fn read_limited(b: &[u8], limit: u64) -> Result<Vec<ReadItem>, FileError> {
        let opts = ReadOptions {
            max_record_bytes: limit,
            ..ReadOptions::default()
        };
        open(Cursor::new(b), &opts).map(|r| r.collect())
    }

    #[test]
    fn record_just_over_the_limit_is_refused_and_one_at_it_is_not() {
        // 4 bytes of header, then records of exactly 20 and 21 bytes (line break included).
        let at = format!("a,b\n{},x\n", "y".repeat(17));
        let items = read_limited(at.as_bytes(), 20).expect("opens");
        assert!(matches!(&items[..], [Ok(Ok(_))]), "{items:?}");
        let over = format!("a,b\n{},x\n", "y".repeat(18));
        assert_eq!(
            read_limited(over.as_bytes(), 20).err(),
            Some(FileError::RecordTooLong { line: 2, limit: 20 })
        );
    }

    #[test]
    fn over_long_record_is_refused_with_its_line() {
        let long = "x".repeat(300 * 1024);
        // A long unquoted line in the middle of the file.
        let text = format!("a,b\n1,2\n\n3,{long}\n4,5\n");
        let items = read_limited(text.as_bytes(), 100 * 1024).expect("opens");
        assert!(matches!(&items[0], Ok(Ok(r)) if r.line == 2));
        assert_eq!(
            items.last(),
            Some(&Err(FileError::RecordTooLong {
                line: 4,
                limit: 100 * 1024
            }))
        );
        assert_eq!(items.len(), 2, "reading stops there");
        // An unclosed quote swallowing the rest of the file is one long record too (here
        // the first record, which `open` reads ahead).
        let text = format!("a,b\n1,2\n3,\"4\n{}", "5,6\n".repeat(100_000));
        let items = read_limited(text.as_bytes(), 100 * 1024).expect("opens");
        assert!(matches!(
            items.last(),
            Some(Err(FileError::RecordTooLong { line: 3, .. }))
        ));
        let text = format!("a,b\n1,\"2\n{}", "3,4\n".repeat(100_000));
        assert!(matches!(
            read_limited(text.as_bytes(), 100 * 1024).err(),
            Some(FileError::RecordTooLong { line: 2, .. })
        ));
        // A header line that long: the file is refused when opened.
        let text = format!("a,{long}\n1,2\n");
        assert_eq!(
            read_limited(text.as_bytes(), 100 * 1024).err(),
            Some(FileError::RecordTooLong {
                line: 1,
                limit: 100 * 1024
            })
        );
        assert_eq!(
            FileError::RecordTooLong {
                line: 3,
                limit: MAX_RECORD_BYTES
            }
            .to_string(),
            "line 3 is longer than the limit of 1 MiB for one row (is a quote left open, or are the line breaks missing?); nothing was applied"
        );
        // Many records that add up to more than the limit are fine.
        let text = format!("a,b\n{}", "123456789,123456789\n".repeat(20_000));
        let items = read_limited(text.as_bytes(), 100 * 1024).expect("opens");
        assert_eq!(items.len(), 20_000);
        assert!(items.iter().all(|i| matches!(i, Ok(Ok(_)))));
    }

    #[test]
    fn ragged_rows_come_as_sent() {
        let (_, recs) = read_all(b"a,b,c\n1\n1,2,3,4,\n1,2,3\n");
        assert_eq!(
            fields(&recs),
            [vec!["1"], vec!["1", "2", "3", "4", ""], vec!["1", "2", "3"]]
        );
    }

    #[test]
    fn cells_untrimmed_headers_trimmed() {
        let (r, recs) = read_all(b" first_name ,\tlast_name\n Ann , Lee \n");
        assert_eq!(r.headers(), ["first_name", "last_name"]);
        assert_eq!(fields(&recs), [[" Ann ", " Lee "]]);
    }

    #[test]
    fn no_final_newline() {
        let (_, recs) = read_all(b"a,b\n1,2\n3,4");
        assert_eq!(fields(&recs), [["1", "2"], ["3", "4"]]);
    }

    #[test]
    fn reader_can_move_to_a_blocking_thread() {
        fn is_send<T: Send>(_: &T) {}
        let r = open(
            std::io::Cursor::new(vec![b'a', b'\n', b'1']),
            &ReadOptions::default(),
        );
        is_send(&r);
    }

    #[test]
    fn owned_bytes_work_too() {
        let r = open(Cursor::new(b"a,b\n1,2\n".to_vec()), &ReadOptions::default()).expect("opens");
        assert_eq!(r.count(), 1);
    }

    #[test]
    fn streams_a_file_from_disk() {
        let path =
            std::env::temp_dir().join(format!("rollcall-feed-read-{}.csv", std::process::id()));
        let mut text = String::from("custom_id,first_name,last_name\n");
        for i in 0..50_000 {
            text.push_str(&format!("{i},First{i},Last{i}\n"));
        }
        text.push_str("50000,Zoë,Last\n");
        std::fs::write(&path, &text).expect("write temp file");
        let file = std::fs::File::open(&path).expect("open temp file");
        let mut reader = open(file, &ReadOptions::default()).expect("opens");
        let mut n = 0;
        let mut last = None;
        for item in reader.by_ref() {
            last = Some(item.expect("no I/O error").expect("row"));
            n += 1;
        }
        let _ = std::fs::remove_file(&path);
        assert_eq!(n, 50_001);
        assert_eq!(reader.records_read(), 50_001);
        let last = last.expect("a last row");
        assert_eq!(last.line, 50_002);
        assert_eq!(last.fields[1], "Zoë");
    }

    #[test]
    fn line_numbers_stay_right_across_buffer_refills() {
        let mut text = String::from("a,b\r\n");
        let mut expected = Vec::new();
        let mut line = 2;
        for i in 0..20_000u64 {
            expected.push(line);
            if i % 997 == 0 {
                text.push_str(&format!("{i},\"x\r\ny\"\r\n\r\n"));
                line += 3;
            } else {
                text.push_str(&format!("{i},x\r\n"));
                line += 1;
            }
        }
        let (_, recs) = read_all(text.as_bytes());
        assert_eq!(lines(&recs), expected);
    }

    /// Fails every read past `fail_at` once it has been rewound for streaming.
    struct BreaksOnSecondPass {
        inner: Cursor<Vec<u8>>,
        rewinds: u32,
        fail_at: u64,
    }

    impl Read for BreaksOnSecondPass {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.rewinds >= 2 && self.inner.position() >= self.fail_at {
                return Err(io::Error::other("disk on fire"));
            }
            self.inner.read(buf)
        }
    }

    impl Seek for BreaksOnSecondPass {
        fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
            if pos == SeekFrom::Start(0) {
                self.rewinds += 1;
            }
            self.inner.seek(pos)
        }
    }

    #[test]
    fn io_error_mid_stream_is_a_file_error_and_ends_the_stream() {
        let mut text = String::from("a,b\n");
        for i in 0..20_000 {
            text.push_str(&format!("{i},x\n"));
        }
        let input = BreaksOnSecondPass {
            inner: Cursor::new(text.into_bytes()),
            rewinds: 0,
            fail_at: 100,
        };
        let mut reader = open(input, &ReadOptions::default()).expect("header and first row read");
        let items: Vec<ReadItem> = reader.by_ref().collect();
        let Some(Err(FileError::Unreadable(msg))) = items.last() else {
            panic!("ends with a file error")
        };
        assert!(msg.contains("disk on fire"));
        assert!(
            items[..items.len() - 1]
                .iter()
                .all(|i| matches!(i, Ok(Ok(_))))
        );
        assert!(reader.next().is_none());
    }

    #[test]
    fn io_error_in_the_prepass_is_unreadable() {
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("gone"))
            }
        }
        impl Seek for Broken {
            fn seek(&mut self, _: SeekFrom) -> io::Result<u64> {
                Ok(10)
            }
        }
        let err = open(Broken, &ReadOptions::default()).err();
        assert_eq!(err, Some(FileError::Unreadable("gone".into())));
        assert_eq!(
            FileError::Unreadable("gone".into()).to_string(),
            "the file could not be read: gone"
        );
    }

    #[test]
    fn real_files_open() {
        let base = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/test-data");
        let file = std::fs::File::open(format!("{base}/edfi-lms-toolkit/oneroster-1.1/users.csv"))
            .expect("test data");
        let reader = open(file, &ReadOptions::default()).expect("opens");
        assert_eq!(reader.headers().len(), 18);
        assert_eq!(reader.headers()[0], "sourcedId");
        let recs: Vec<RawRecord> = reader.map(|i| i.expect("io").expect("row")).collect();
        assert_eq!(recs.len(), 10);
        assert_eq!(recs[9].line, 11);
        assert_eq!(recs[9].fields.len(), 19);
    }
}
