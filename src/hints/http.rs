//! TEMPORARY STUB
pub struct HttpRequest<'a> {
    pub method: &'a [u8],
    pub uri: &'a [u8],
    pub host: Option<&'a [u8]>,
}
#[must_use]
pub fn parse_request(_p: &[u8]) -> Option<HttpRequest<'_>> {
    None
}
