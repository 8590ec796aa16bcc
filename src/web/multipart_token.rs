//! Finding the CSRF token at the head of a `multipart/form-data` body, so upload forms carry
//! it as their first field (`<input type="hidden" name="_csrf">` before the file) instead of
//! in the URL, where it would land in the address bar and history. Only the body's first
//! part is read; the rest streams on to the handler untouched.

/// What the bytes read so far say about the body's first field.
#[derive(Debug, PartialEq, Eq)]
pub enum Peek {
    /// Not enough bytes yet to tell.
    More,
    /// The first field, complete: its name and (text) value.
    Field { name: String, value: String },
    /// Not a multipart body this boundary can read.
    Malformed,
}

/// The most bytes read from the head of a body to find its first field.
pub const PEEK_LIMIT: usize = 16 * 1024;

/// The `boundary` parameter of a `multipart/form-data` content type (quoted or not).
pub fn boundary(content_type: &str) -> Option<String> {
    let (kind, params) = content_type.split_once(';')?;
    if !kind.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_string())
            .filter(|b| !b.is_empty())
    })
}

/// Reads the first part of a multipart body from its first bytes (RFC 7578).
pub fn first_field(buf: &[u8], boundary: &str) -> Peek {
    let delimiter = format!("--{boundary}");
    let Some(start) = find(buf, delimiter.as_bytes()) else {
        return more_or_malformed(buf);
    };
    let after = start + delimiter.len();
    if buf.len() < after + 2 {
        return Peek::More;
    }
    if &buf[after..after + 2] != b"\r\n" {
        return Peek::Malformed; // "--" closes an empty body
    }
    let head_start = after + 2;
    let Some(head_len) = find(&buf[head_start..], b"\r\n\r\n") else {
        return more_or_malformed(buf);
    };
    let head = String::from_utf8_lossy(&buf[head_start..head_start + head_len]);
    let Some(name) = head.split("\r\n").find_map(disposition_name) else {
        return Peek::Malformed;
    };
    let value_start = head_start + head_len + 4;
    let close = format!("\r\n{delimiter}");
    let Some(value_len) = find(&buf[value_start..], close.as_bytes()) else {
        return more_or_malformed(buf);
    };
    match std::str::from_utf8(&buf[value_start..value_start + value_len]) {
        Ok(value) => Peek::Field {
            name,
            value: value.to_string(),
        },
        Err(_) => Peek::Field {
            name,
            value: String::new(),
        },
    }
}

fn more_or_malformed(buf: &[u8]) -> Peek {
    if buf.len() >= PEEK_LIMIT {
        Peek::Malformed
    } else {
        Peek::More
    }
}

/// The `name` of a `Content-Disposition: form-data; name="…"` header line.
fn disposition_name(line: &str) -> Option<String> {
    let (header, value) = line.split_once(':')?;
    if !header.trim().eq_ignore_ascii_case("content-disposition") {
        return None;
    }
    value.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k.trim() == "name").then(|| v.trim().trim_matches('"').to_string())
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = b"------WebKitFormBoundaryAbC\r\n\
Content-Disposition: form-data; name=\"_csrf\"\r\n\r\n\
tok3n\r\n\
------WebKitFormBoundaryAbC\r\n\
Content-Disposition: form-data; name=\"file\"; filename=\"a.csv\"\r\n\
Content-Type: text/csv\r\n\r\n\
a,b\r\n1,2\r\n\r\n\
------WebKitFormBoundaryAbC--\r\n";

    #[test]
    fn the_boundary_comes_from_the_content_type() {
        assert_eq!(
            boundary("multipart/form-data; boundary=----WebKitFormBoundaryAbC").as_deref(),
            Some("----WebKitFormBoundaryAbC")
        );
        assert_eq!(
            boundary("Multipart/Form-Data; charset=utf-8; boundary=\"x y\"").as_deref(),
            Some("x y")
        );
        assert_eq!(boundary("application/x-www-form-urlencoded"), None);
        assert_eq!(boundary("multipart/form-data"), None);
    }

    #[test]
    fn the_first_field_is_read_from_the_head_of_the_body() {
        let b = "----WebKitFormBoundaryAbC";
        assert_eq!(
            first_field(BODY, b),
            Peek::Field {
                name: "_csrf".into(),
                value: "tok3n".into()
            }
        );
        // Cut anywhere before the value ends: more bytes are needed.
        for cut in [0, 10, 30, 60, 75, 80] {
            assert_eq!(first_field(&BODY[..cut], b), Peek::More, "cut at {cut}");
        }
    }

    #[test]
    fn a_file_first_is_named_as_such_and_garbage_is_malformed() {
        let b = "XX";
        let body = b"--XX\r\nContent-Disposition: form-data; name=\"file\"; filename=\"name=x.csv\"\r\n\r\na\r\n--XX--\r\n";
        assert_eq!(
            first_field(body, b),
            Peek::Field {
                name: "file".into(),
                value: "a".into()
            }
        );
        assert_eq!(first_field(b"--XX--\r\n", b), Peek::Malformed);
        assert_eq!(first_field(&vec![b'z'; PEEK_LIMIT], b), Peek::Malformed);
    }
}
