//! HTTP/1.x request line and `Host` header.
//!
//! Request line per RFC 9112 §3: `method SP request-target SP HTTP-version CRLF`, where the
//! method is 1..=16 uppercase letters or `-` (GET, POST, PROPFIND, M-SEARCH, ...), the target
//! is 1..=[`MAX_URI`] bytes of printable ASCII, and the version is `HTTP/d.d`. A bare LF is
//! accepted as line end (RFC 9112 §2.2). Header lines follow until the empty line or the
//! end of the buffer; the first complete `Host` line (name case-insensitive, value with
//! optional whitespace trimmed, printable ASCII only) is returned. A buffer that ends
//! mid-headers yields what was found; one that ends inside the request target (a long URI
//! cut by the capture) yields the partial target if it is origin-form (`/...`), with no host.

use super::is_graphic;

/// Longest request target examined (the capture copies at most 2048 payload bytes).
pub const MAX_URI: usize = 2048;
const MAX_METHOD: usize = 16;

/// A parsed request line and, if present in the buffer, the Host header value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpRequest<'a> {
    pub method: &'a [u8],
    pub uri: &'a [u8],
    pub host: Option<&'a [u8]>,
}

/// Split `p` at the first `needle` (which is dropped).
fn split_once(p: &[u8], needle: u8) -> Option<(&[u8], &[u8])> {
    let i = p.iter().position(|&b| b == needle)?;
    let (a, b) = p.split_at_checked(i)?;
    Some((a, b.get(1..).unwrap_or(&[])))
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Parse the request at the start of a TCP payload.
#[must_use]
pub fn parse_request(p: &[u8]) -> Option<HttpRequest<'_>> {
    let (method, _) = split_once(p.get(..=MAX_METHOD).unwrap_or(p), b' ')?;
    if !method.first()?.is_ascii_uppercase()
        || !method.iter().all(|&b| b.is_ascii_uppercase() || b == b'-')
    {
        return None;
    }
    let rest = p.get(method.len()..)?.get(1..)?;
    let window = rest.get(..=MAX_URI).unwrap_or(rest);
    let Some(sp) = window.iter().position(|&b| b == b' ') else {
        // The target runs to the end of the buffer (cut by the capture): report the part
        // we have if it looks like an origin-form target.
        let cut = rest.len() <= MAX_URI && rest.first() == Some(&b'/') && is_graphic(rest);
        return cut.then_some(HttpRequest {
            method,
            uri: rest,
            host: None,
        });
    };
    let uri = rest.get(..sp)?;
    if !is_graphic(uri) {
        return None;
    }
    let after = rest.get(sp..)?.get(1..)?;
    let mut req = HttpRequest {
        method,
        uri,
        host: None,
    };
    let (line, mut headers) = split_once(after, b'\n').unwrap_or((after, &[]));
    let version = line.strip_suffix(b"\r").unwrap_or(line);
    match version {
        [b'H', b'T', b'T', b'P', b'/', a, b'.', c] if a.is_ascii_digit() && c.is_ascii_digit() => {}
        // Cut inside the version: accept a prefix of "HTTP/1.1".
        v if v.len() < 8 && line.len() == after.len() && b"HTTP/1.1".starts_with(v) => {
            return Some(req);
        }
        _ => return None,
    }
    // Header lines; each iteration consumes at least one byte, so the loop is bounded.
    while let Some((line, rest)) = split_once(headers, b'\n') {
        headers = rest;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = split_once(line, b':') else {
            continue;
        };
        if name.eq_ignore_ascii_case(b"host") {
            let v = trim_ows(value);
            if is_graphic(v) {
                req.host = Some(v);
            }
            break;
        }
    }
    Some(req)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CURL: &[u8] = b"GET /path/x?q=1 HTTP/1.1\r\nhost:  www.Example.com \r\n\
User-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n";
    const POST: &[u8] =
        b"POST /gate.php HTTP/1.0\r\nContent-Type: application/x-www-form-urlencoded\r\n\
User-Agent: Mozilla/4.0\r\nHOST: 203.0.113.7:8080\r\nContent-Length: 4\r\n\r\nab=c";

    fn req<'a>(m: &'a [u8], u: &'a [u8], h: Option<&'a [u8]>) -> Option<HttpRequest<'a>> {
        Some(HttpRequest {
            method: m,
            uri: u,
            host: h,
        })
    }

    #[test]
    fn typical_requests() {
        assert_eq!(
            parse_request(CURL),
            req(b"GET", b"/path/x?q=1", Some(b"www.Example.com"))
        );
        assert_eq!(
            parse_request(POST),
            req(b"POST", b"/gate.php", Some(b"203.0.113.7:8080"))
        );
        let m = b"PROPFIND /dav/ HTTP/1.1\nHost:\tdav.example\n\n";
        assert_eq!(
            parse_request(m),
            req(b"PROPFIND", b"/dav/", Some(b"dav.example"))
        );
        let m = b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n";
        assert_eq!(
            parse_request(m),
            req(b"CONNECT", b"example.com:443", Some(b"example.com:443"))
        );
        let m = b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\n\r\n";
        assert_eq!(
            parse_request(m),
            req(b"M-SEARCH", b"*", Some(b"239.255.255.250:1900"))
        );
        // No Host (HTTP/1.0), Host only after the blank line (body) is ignored.
        let m = b"GET / HTTP/1.0\r\n\r\nHost: body.example\r\n";
        assert_eq!(parse_request(m), req(b"GET", b"/", None));
        // A header named like Host is not Host.
        let m = b"GET / HTTP/1.1\r\nX-Host: no\r\nHostile: no\r\n\r\n";
        assert_eq!(parse_request(m), req(b"GET", b"/", None));
    }

    #[test]
    fn rejects_non_http() {
        for m in [
            &b""[..],
            b"get / HTTP/1.1\r\n",
            b"GET  / HTTP/1.1\r\n",
            b"GET / FTP/1.1\r\n",
            b"GET / HTTP/1.1 extra\r\n",
            b"GET /a\x01b HTTP/1.1\r\n",
            b"ABCDEFGHIJKLMNOPQ / HTTP/1.1\r\n",
            b"\x16\x03\x01\x02\x00",
            b"SSH-2.0-OpenSSH_9.6\r\n",
        ] {
            assert_eq!(parse_request(m), None, "{:?}", String::from_utf8_lossy(m));
        }
    }

    #[test]
    fn every_prefix_is_consistent() {
        for full in [CURL, POST] {
            let want = parse_request(full).unwrap();
            for n in 0..=full.len() {
                if let Some(r) = parse_request(&full[..n]) {
                    assert_eq!(r.method, want.method, "prefix {n}");
                    assert!(want.uri.starts_with(r.uri), "prefix {n}");
                    assert!(r.host.is_none() || r.host == want.host, "prefix {n}");
                    assert!(r.uri == want.uri || r.host.is_none(), "prefix {n}");
                }
            }
        }
    }

    #[test]
    fn long_uri_cut_by_capture() {
        let mut m = b"GET /".to_vec();
        m.resize(2048, b'a');
        let r = parse_request(&m).unwrap();
        assert_eq!((r.method, r.uri.len(), r.host), (&b"GET"[..], 2044, None));
        // Longer than MAX_URI with no end in sight: not reported as a complete target.
        m.resize(4000, b'a');
        assert_eq!(parse_request(&m), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn random_bytes_never_panic(v in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse_request(&v);
        }

        #[test]
        fn mutations_never_panic(
            which in 0usize..2,
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
            cut in any::<usize>(),
        ) {
            let mut m = [CURL, POST][which].to_vec();
            for (i, b) in edits {
                let i = i % m.len();
                m[i] = b;
            }
            m.truncate(cut % (m.len() + 1));
            if let Some(r) = parse_request(&m) {
                prop_assert!(is_graphic(r.method) && is_graphic(r.uri));
                prop_assert!(r.host.is_none_or(is_graphic));
            }
        }
    }
}
