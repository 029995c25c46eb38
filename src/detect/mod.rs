//! Detectors: fed per flow, burst or DNS answer by the analysis stage, never per packet.

pub mod beacon;
pub mod dns_tunnel;
pub mod exfil;
pub mod periodicity;

use crate::analysis::Detector;
use crate::config::Config;

/// The detectors the configuration enables.
#[must_use]
pub fn build(cfg: &Config) -> Vec<Box<dyn Detector>> {
    let mut v: Vec<Box<dyn Detector>> = Vec::new();
    if cfg.beacon.enabled {
        v.push(Box::new(beacon::Beacon::new(cfg.beacon.clone())));
    }
    if cfg.dns_tunnel.enabled {
        v.push(Box::new(dns_tunnel::DnsTunnel::new(
            cfg.dns_tunnel.clone(),
            cfg.home_net.clone(),
        )));
    }
    if cfg.exfil.enabled {
        v.push(Box::new(exfil::Exfil::new(cfg.exfil.clone())));
    }
    v
}
