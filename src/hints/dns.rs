//! TEMPORARY STUB
pub struct DnsName {
    len: u8,
    buf: [u8; 255],
}
impl DnsName {
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }
}
pub struct DnsSummary {
    pub is_response: bool,
    pub rcode: u8,
    pub qtype: u16,
    pub qname: DnsName,
    pub answers: arrayvec::ArrayVec<std::net::IpAddr, 8>,
}
#[must_use]
pub fn parse(_m: &[u8]) -> Option<DnsSummary> {
    None
}
#[must_use]
pub fn parse_tcp(_m: &[u8]) -> Option<DnsSummary> {
    None
}
