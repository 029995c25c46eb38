//! TLS ClientHello `server_name` extraction.
//!
//! Parses one TLS record (RFC 8446 §5.1: type 22 handshake, legacy version `0x03xx`), the
//! ClientHello in it (RFC 8446 §4.1.2: legacy_version, random, session id, cipher suites,
//! compression methods, extensions) and the `server_name` extension (RFC 6066 §3),
//! returning the first `host_name` entry. Lengths declared by the record and handshake
//! headers are clipped to the bytes present (the payload may be cut by snaplen or span
//! TCP segments), but the name itself must be wholly present; otherwise `None`. The name
//! must be 1..=255 bytes of printable ASCII without spaces (0x21..=0x7e).
//! Only the first record is examined; a ClientHello split across records is not reassembled.

use super::{Reader, is_graphic};

const CONTENT_HANDSHAKE: u8 = 22;
const HS_CLIENT_HELLO: u8 = 1;
const EXT_SERVER_NAME: u16 = 0;
const NAME_HOST: u8 = 0;

/// SNI host name of the ClientHello at the start of a TCP payload, if wholly present.
#[must_use]
pub fn client_hello_sni(p: &[u8]) -> Option<&[u8]> {
    let mut r = Reader(p);
    if r.u8()? != CONTENT_HANDSHAKE || r.u8()? != 3 {
        return None;
    }
    r.u8()?; // minor version
    let rec_len = r.u16()?;
    let mut rec = Reader(r.take_upto(usize::from(rec_len)));
    if rec.u8()? != HS_CLIENT_HELLO {
        return None;
    }
    let hs_len = rec.u24()?;
    let mut ch = Reader(rec.take_upto(hs_len));
    ch.take(2 + 32)?; // legacy_version, random
    ch.vec8()?; // legacy_session_id
    ch.vec16()?; // cipher_suites
    ch.vec8()?; // legacy_compression_methods
    let ext_len = ch.u16()?;
    let mut exts = Reader(ch.take_upto(usize::from(ext_len)));
    // Each iteration consumes >= 4 bytes, so the loop is bounded by the input length.
    loop {
        let ty = exts.u16()?;
        let body = exts.vec16()?;
        if ty != EXT_SERVER_NAME {
            continue;
        }
        let mut list = Reader(body);
        let mut names = Reader(list.vec16()?);
        loop {
            let name_type = names.u8()?;
            let name = names.vec16()?;
            if name_type == NAME_HOST {
                return (name.len() <= 255 && is_graphic(name)).then_some(name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CHROME: &[u8] = include_bytes!("testdata/tls_ch_chrome_accounts.google.com.bin");
    const FB: &[u8] = include_bytes!("testdata/tls_ch_fb_edge-mqtt.facebook.com.bin");
    const DOTNET: &[u8] = include_bytes!("testdata/tls_ch_dotnet_api.ipify.org.bin");
    const ALL: [(&[u8], &[u8]); 3] = [
        (CHROME, b"accounts.google.com"),
        (FB, b"edge-mqtt.facebook.com"),
        (DOTNET, b"api.ipify.org"),
    ];

    /// Build a minimal ClientHello record with the given extensions block.
    fn hello(exts: &[u8]) -> Vec<u8> {
        let mut ch = vec![3, 3];
        ch.extend([7u8; 32]);
        ch.extend([0, 0, 2, 0x13, 0x01, 1, 0]);
        ch.extend((exts.len() as u16).to_be_bytes());
        ch.extend(exts);
        let mut hs = vec![1, 0];
        hs.extend((ch.len() as u16).to_be_bytes());
        hs.extend(ch);
        let mut rec = vec![22, 3, 1];
        rec.extend((hs.len() as u16).to_be_bytes());
        rec.extend(hs);
        rec
    }

    fn sni_ext(entries: &[(u8, &[u8])]) -> Vec<u8> {
        let mut list = vec![];
        for (t, n) in entries {
            list.push(*t);
            list.extend((n.len() as u16).to_be_bytes());
            list.extend(*n);
        }
        let mut e = vec![0, 0];
        e.extend(((list.len() + 2) as u16).to_be_bytes());
        e.extend((list.len() as u16).to_be_bytes());
        e.extend(list);
        e
    }

    #[test]
    fn real_client_hellos() {
        for (msg, want) in ALL {
            assert_eq!(client_hello_sni(msg), Some(want));
        }
    }

    #[test]
    fn every_prefix_is_none_or_whole_name() {
        for (msg, want) in ALL {
            for n in 0..=msg.len() {
                let got = client_hello_sni(&msg[..n]);
                assert!(got.is_none() || got == Some(want), "prefix {n}");
            }
            // The shortest prefix that yields the name ends exactly at the name's last byte.
            let first = (0..=msg.len())
                .find(|&n| client_hello_sni(&msg[..n]).is_some())
                .unwrap();
            assert!(msg[..first].ends_with(want));
        }
    }

    #[test]
    fn synthetic_cases() {
        // Non-host_name entry first, then host_name.
        let m = hello(&sni_ext(&[(1, b"x"), (0, b"a.example")]));
        assert_eq!(client_hello_sni(&m), Some(&b"a.example"[..]));
        // Other extension before SNI.
        let mut e = vec![0xff, 0x01, 0, 1, 0];
        e.extend(sni_ext(&[(0, b"b.example")]));
        assert_eq!(client_hello_sni(&hello(&e)), Some(&b"b.example"[..]));
        // No SNI, empty name, spaces, control bytes, high bytes: rejected.
        assert_eq!(client_hello_sni(&hello(&[0xff, 0x01, 0, 1, 0])), None);
        for bad in [&b""[..], b"a b", b"a\nb", b"\xc3\xa9.fr", b"a\x00"] {
            assert_eq!(client_hello_sni(&hello(&sni_ext(&[(0, bad)]))), None);
        }
        // Overlong (>255) name rejected.
        assert_eq!(
            client_hello_sni(&hello(&sni_ext(&[(0, &[b'a'; 256])]))),
            None
        );
        // Wrong content type / version / handshake type.
        let good = hello(&sni_ext(&[(0, b"c.example")]));
        for (i, v) in [(0, 23u8), (1, 2), (5, 2)] {
            let mut m = good.clone();
            m[i] = v;
            assert_eq!(client_hello_sni(&m), None);
        }
        // A lying record length (shorter than the SNI) hides the name.
        let mut m = good.clone();
        m[3..5].copy_from_slice(&20u16.to_be_bytes());
        assert_eq!(client_hello_sni(&m), None);
        // A record length larger than what was captured is clipped, not fatal.
        let mut m = good.clone();
        m[3..5].copy_from_slice(&0xffffu16.to_be_bytes());
        assert_eq!(client_hello_sni(&m), Some(&b"c.example"[..]));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn random_bytes_never_panic(v in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = client_hello_sni(&v);
        }

        #[test]
        fn random_bytes_after_valid_header(v in proptest::collection::vec(any::<u8>(), 0..600)) {
            let mut m = vec![22, 3, 1, 2, 0, 1, 0, 1, 0xfc];
            m.extend(v);
            if let Some(n) = client_hello_sni(&m) {
                prop_assert!(is_graphic(n));
            }
        }

        #[test]
        fn mutations_never_panic(
            which in 0usize..3,
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
            cut in any::<usize>(),
        ) {
            let mut m = ALL[which].0.to_vec();
            for (i, b) in edits {
                let i = i % m.len();
                m[i] = b;
            }
            m.truncate(cut % (m.len() + 1));
            if let Some(n) = client_hello_sni(&m) {
                prop_assert!(is_graphic(n) && n.len() <= 255);
            }
        }
    }
}
