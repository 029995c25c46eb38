//! TEMPORARY STUB
#[must_use]
pub fn community_id_v1(
    _seed: u16,
    _src: std::net::IpAddr,
    _dst: std::net::IpAddr,
    _proto: u8,
    _sport: u16,
    _dport: u16,
) -> String {
    String::new()
}
