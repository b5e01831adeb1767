//! Just enough RFC 5322 / MIME reading for the sandbox to record what an SMTP client sent: header
//! unfolding, RFC 2047 encoded words, and the single-part transfer encodings lettre produces.

use base64::Engine;

/// A received message: its headers (unfolded, decoded) and its decoded text body.
pub(crate) struct Parsed {
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl Parsed {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Parses `raw` (CRLF or LF line ends, dot-stuffing already removed).
pub(crate) fn parse(raw: &[u8]) -> Parsed {
    let text = String::from_utf8_lossy(raw).replace("\r\n", "\n");
    let (head, body) = text.split_once("\n\n").unwrap_or((text.as_str(), ""));
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = headers.last_mut() {
                value.push_str(line);
            }
        } else if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    for (_, value) in &mut headers {
        *value = decode_words(value);
    }
    let encoding = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("Content-Transfer-Encoding"))
        .map(|(_, v)| v.to_ascii_lowercase());
    let body = match encoding.as_deref() {
        Some("quoted-printable") => decode_quoted_printable(body),
        Some("base64") => {
            let compact: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            base64::engine::general_purpose::STANDARD
                .decode(compact)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_else(|_| body.to_owned())
        }
        _ => body.to_owned(),
    };
    Parsed { headers, body: body.replace("\r\n", "\n") }
}

/// Quoted-printable (RFC 2045 §6.7): `=` + newline is a soft break, `=HH` a byte.
pub(crate) fn decode_quoted_printable(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'=' if bytes.get(i + 1) == Some(&b'\n') => i += 2,
            b'=' if bytes.get(i + 1) == Some(&b'\r') && bytes.get(i + 2) == Some(&b'\n') => i += 3,
            b'=' => match bytes
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok())
            {
                Some(b) => {
                    out.push(b);
                    i += 3;
                }
                None => {
                    out.push(b'=');
                    i += 1;
                }
            },
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Decodes RFC 2047 encoded words (`=?charset?B|Q?text?=`); whitespace between two adjacent
/// encoded words is dropped, as the RFC requires. Only UTF-8 and ASCII charsets are decoded;
/// anything else is kept as written.
pub(crate) fn decode_words(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    let mut last_was_word = false;
    while let Some(start) = rest.find("=?") {
        let (before, candidate) = rest.split_at(start);
        if let Some((decoded, consumed)) = decode_one(candidate) {
            if !(last_was_word && before.chars().all(char::is_whitespace)) {
                out.push_str(before);
            }
            out.push_str(&decoded);
            rest = &candidate[consumed..];
            last_was_word = true;
        } else {
            out.push_str(&rest[..start + 2]);
            rest = &rest[start + 2..];
            last_was_word = false;
        }
    }
    out.push_str(rest);
    out
}

/// One encoded word at the start of `s`: the decoded text and the bytes it spans.
fn decode_one(s: &str) -> Option<(String, usize)> {
    let inner = s.strip_prefix("=?")?;
    let (charset, after_charset) = inner.split_once('?')?;
    let (encoding, after_encoding) = after_charset.split_once('?')?;
    let end = after_encoding.find("?=")?;
    let text = &after_encoding[..end];
    if text.contains(char::is_whitespace) {
        return None;
    }
    let charset = charset.split('*').next().unwrap_or_default().to_ascii_lowercase();
    if !matches!(charset.as_str(), "utf-8" | "us-ascii" | "utf8") {
        return None;
    }
    let bytes = match encoding {
        "B" | "b" => base64::engine::general_purpose::STANDARD.decode(text).ok()?,
        "Q" | "q" => decode_quoted_printable(&text.replace('_', " ")).into_bytes(),
        _ => return None,
    };
    let consumed = s.len() - after_encoding.len() + end + 2;
    Some((String::from_utf8_lossy(&bytes).into_owned(), consumed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_words() {
        assert_eq!(decode_words("plain"), "plain");
        assert_eq!(decode_words("=?utf-8?b?w6lsw6h2ZQ==?="), "élève");
        assert_eq!(decode_words("=?UTF-8?Q?caf=C3=A9_au_lait?="), "café au lait");
        assert_eq!(decode_words("a =?utf-8?b?w6k=?= =?utf-8?b?w6k=?= b"), "a éé b");
        assert_eq!(decode_words("=?iso-8859-1?q?x?="), "=?iso-8859-1?q?x?=");
        assert_eq!(decode_words("50% =? off"), "50% =? off");
    }

    #[test]
    fn quoted_printable() {
        assert_eq!(decode_quoted_printable("caf=C3=A9 =\r\nnoir"), "café noir");
        assert_eq!(decode_quoted_printable("a=3Db=\nc"), "a=bc");
        assert_eq!(decode_quoted_printable("trailing ="), "trailing =");
    }

    #[test]
    fn messages_with_each_transfer_encoding() {
        let qp = parse(b"Subject: =?utf-8?q?Ol=C3=A1?=\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nol=C3=A1\r\n");
        assert_eq!(qp.header("subject"), Some("Olá"));
        assert_eq!(qp.body, "olá\n");
        let b64 = parse(b"X-A: 1\r\n  continued\nContent-Transfer-Encoding: base64\n\nw6k=\n");
        assert_eq!(b64.header("x-a"), Some("1  continued"));
        assert_eq!(b64.body, "é");
        let seven = parse(b"Subject: hi\r\n\r\nline 1\r\nline 2");
        assert_eq!(seven.body, "line 1\nline 2");
    }
}
