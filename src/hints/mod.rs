//! Application-layer hints extracted from single packets: TLS ClientHello SNI ([`tls`]),
//! HTTP/1.x request line and Host ([`http`]), DNS question/answers ([`dns`]).
//!
//! All parsers are *total* over attacker-controlled input: any byte sequence (including
//! every truncation of a valid message) yields `None` or a correct (possibly partial)
//! result, never a panic. They do not allocate, do not recurse, and every loop is bounded
//! by the input length or a fixed constant. Panic paths are denied by lint outside tests
//! (`panic_free!` in `src/lib.rs`).

pub mod dns;
pub mod http;
pub mod tls;

/// Bounds-checked forward reader over a byte slice; every read returns `None` past the end.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Reader<'a>(pub(crate) &'a [u8]);

impl<'a> Reader<'a> {
    /// Consume exactly `n` bytes.
    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (a, b) = self.0.split_at_checked(n)?;
        self.0 = b;
        Some(a)
    }
    pub(crate) fn u8(&mut self) -> Option<u8> {
        let (&a, b) = self.0.split_first()?;
        self.0 = b;
        Some(a)
    }
    pub(crate) fn u16(&mut self) -> Option<u16> {
        let b = self.take(2)?;
        Some(u16::from_be_bytes([*b.first()?, *b.get(1)?]))
    }
    pub(crate) fn u24(&mut self) -> Option<usize> {
        let b = self.take(3)?;
        Some(
            usize::from(*b.first()?) << 16 | usize::from(*b.get(1)?) << 8 | usize::from(*b.get(2)?),
        )
    }
    /// Consume a `u8`-length-prefixed vector.
    pub(crate) fn vec8(&mut self) -> Option<&'a [u8]> {
        let n = self.u8()?;
        self.take(usize::from(n))
    }
    /// Consume a `u16`-length-prefixed vector.
    pub(crate) fn vec16(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }
    /// Up to `n` bytes: the declared length clipped to what is present (snaplen cut).
    pub(crate) fn take_upto(&mut self, n: usize) -> &'a [u8] {
        let (a, b) = self.0.split_at_checked(n).unwrap_or((self.0, &[]));
        self.0 = b;
        a
    }
}

/// Printable, space-free ASCII (0x21..=0x7e), non-empty.
pub(crate) fn is_graphic(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(u8::is_ascii_graphic)
}
