//! TEMPORARY STUB
#[must_use]
pub fn client_hello_sni(_p: &[u8]) -> Option<&[u8]> {
    None
}
