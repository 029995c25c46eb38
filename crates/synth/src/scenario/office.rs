//! The office: its hosts, their background, and the default beacon and
//! exfiltration sets.

use super::{
    Backup, BeaconPlan, Browse, ExfilKind, ExfilPlan, Heartbeat, Media, Periodic, S, Scenario,
    Tally, Variant,
};
use crate::packets::Ep;
use std::net::{IpAddr, Ipv6Addr};

/// Office knobs.
#[derive(Clone, Debug)]
pub struct OfficeOpts {
    pub hosts: usize,
    pub days: f64,
    pub seed: u64,
    pub start: u64,
}

pub(super) fn host(i: usize) -> Ep {
    // every 10th host is IPv6-only, every 8th sits on VLAN 30
    let vlan = (i % 8 == 7).then_some(30);
    if i % 10 == 9 {
        Ep {
            ip: IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 1, 0, 0, 0, 0x100 + i as u16)),
            vlan,
        }
    } else {
        Ep {
            ip: IpAddr::from([10, 0, 1, 10 + i as u8]),
            vlan,
        }
    }
}

/// The background of an office: browsing, NTP, update checks, telemetry,
/// chat heartbeats, downloads, video calls, a nightly backup.
pub fn office_background(sc: &mut Scenario, o: &OfficeOpts) {
    let update = IpAddr::from([13, 107, 4, 50]);
    let telemetry = IpAddr::from([52, 114, 128, 10]);
    let chat = IpAddr::from([52, 113, 194, 132]);
    let cdn = IpAddr::from([151, 101, 1, 69]);
    let conf = IpAddr::from([52, 112, 0, 10]);
    let pool = [
        [162, 159, 200, 1],
        [129, 6, 15, 28],
        [132, 163, 96, 1],
        [216, 239, 35, 0],
    ];
    for i in 0..o.hosts {
        let h = host(i);
        sc.acts.push(Box::new(Browse { host: h, next: 0 }));
        if h.ip.is_ipv4() {
            let ntp = IpAddr::from(pool[i % 4]);
            let poll = [64.0, 128.0, 256.0, 1024.0][i % 4];
            sc.acts.push(Box::new(Periodic::new(
                h, ntp, None, 123, true, poll, 0.01, 48, 48, "ntp",
            )));
            sc.acts.push(Box::new(Periodic::new(
                h,
                update,
                Some("settings.os-updates.com".into()),
                443,
                false,
                3600.0,
                0.05,
                1500,
                4000,
                "update",
            )));
            sc.acts.push(Box::new(Periodic::new(
                h,
                telemetry,
                Some("telemetry.vendor-apps.com".into()),
                443,
                false,
                600.0,
                0.5,
                2500,
                600,
                "telemetry",
            )));
            sc.acts.push(Box::new(Heartbeat::new(
                h,
                chat,
                "chat.collab-suite.com",
                30.0,
            )));
            sc.acts.push(Box::new(Media::new(h, cdn, conf)));
        }
    }
    sc.acts.push(Box::new(Backup {
        host: Ep::v4([10, 0, 0, 250]),
        dest: IpAddr::from([64, 4, 10, 20]),
        bytes: 1 << 30,
        next: 0,
        tr: Tally::default(),
    }));
    let _ = o;
}

fn at(o: &OfficeOpts, day: f64, hour: f64) -> u64 {
    o.start + ((day * 24.0 + hour) * 3600.0 * S as f64) as u64
}

/// One injected beacon: host index, destination, port, name, variant,
/// period (s), jitter, start hour on day 0, miss probability, sleep window.
type BeaconSpec = (
    usize,
    IpAddr,
    u16,
    Option<&'static str>,
    Variant,
    f64,
    f64,
    f64,
    f64,
    Option<(u64, u64)>,
);

fn v4(a: [u8; 4]) -> IpAddr {
    IpAddr::from(a)
}

/// The default set of beacons for `office`: periods 10 s to 1 h, jitter
/// 0-50 %, missed beats, a sleep window, IPv6, VLAN, UDP and in-session.
pub fn office_beacons(sc: &mut Scenario, o: &OfficeOpts) {
    let n = o.hosts.max(20);
    let v6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0xbeef, 0, 0, 0, 0, 0x16));
    let specs: [BeaconSpec; 11] = [
        (
            1,
            v4([203, 0, 113, 10]),
            443,
            Some("static-cdn-img.com"),
            Variant::TcpConn,
            60.0,
            0.2,
            9.0,
            0.0,
            None,
        ),
        (
            2,
            v4([203, 0, 113, 11]),
            443,
            None,
            Variant::TcpConn,
            300.0,
            0.5,
            10.0,
            0.0,
            None,
        ),
        (
            3,
            v4([198, 51, 100, 12]),
            443,
            Some("api.weather-sync.net"),
            Variant::TcpConn,
            1800.0,
            0.1,
            2.0,
            0.0,
            None,
        ),
        (
            4,
            v4([198, 51, 100, 13]),
            8443,
            None,
            Variant::TcpConn,
            3600.0,
            0.0,
            1.0,
            0.0,
            None,
        ),
        (
            5,
            v4([203, 0, 113, 14]),
            443,
            None,
            Variant::TcpConn,
            10.0,
            0.3,
            13.0,
            0.2,
            None,
        ),
        (
            6,
            v4([203, 0, 113, 15]),
            443,
            Some("update-check.biz"),
            Variant::TcpConn,
            120.0,
            0.3,
            8.0,
            0.0,
            Some((19, 7)),
        ),
        (
            9,
            v6,
            443,
            None,
            Variant::TcpConn,
            90.0,
            0.1,
            11.0,
            0.0,
            None,
        ),
        (
            7,
            v4([203, 0, 113, 17]),
            443,
            None,
            Variant::TcpConn,
            45.0,
            0.2,
            12.0,
            0.0,
            None,
        ),
        (
            10,
            v4([198, 51, 100, 18]),
            8443,
            None,
            Variant::UdpFlow,
            30.0,
            0.2,
            14.0,
            0.0,
            None,
        ),
        (
            11,
            v4([198, 51, 100, 19]),
            4500,
            None,
            Variant::UdpSession,
            20.0,
            0.1,
            15.0,
            0.0,
            None,
        ),
        (
            12,
            v4([203, 0, 113, 20]),
            8080,
            None,
            Variant::TcpSession,
            15.0,
            0.2,
            16.0,
            0.0,
            None,
        ),
    ];
    for (hi, dest, port, name, variant, period, jitter, hour, miss, sleep) in specs {
        let mut b = BeaconPlan::new(
            host(hi % n),
            dest,
            port,
            name,
            variant,
            period,
            jitter,
            at(o, 0.0, hour),
        );
        b.miss = miss;
        b.sleep = sleep;
        sc.acts.push(Box::new(b));
    }
}

/// The default exfiltration set for `exfil` (days 1 and 2, after a day of
/// learning): host index, destination, port, name, kind, day, hour, bytes.
pub fn exfil_set(sc: &mut Scenario, o: &OfficeOpts) {
    let n = o.hosts.max(20);
    #[allow(clippy::type_complexity)]
    let specs: [(
        usize,
        [u8; 4],
        u16,
        Option<&str>,
        ExfilKind,
        f64,
        f64,
        usize,
    ); 6] = [
        (
            13,
            [203, 0, 113, 90],
            443,
            Some("files.quickshare-drop.net"),
            ExfilKind::Burst,
            1.0,
            10.0,
            300 << 20,
        ),
        (
            14,
            [198, 51, 100, 91],
            443,
            None,
            ExfilKind::LowSlow,
            1.0,
            0.5,
            40 << 20,
        ),
        (
            15,
            [203, 0, 113, 92],
            21,
            None,
            ExfilKind::Ftp,
            1.0,
            14.0,
            20 << 20,
        ),
        (
            16,
            [198, 51, 100, 93],
            587,
            None,
            ExfilKind::Smtp,
            1.5,
            9.0,
            2 << 20,
        ),
        (
            17,
            [203, 0, 113, 94],
            7788,
            None,
            ExfilKind::Stealer,
            1.5,
            11.0,
            300 << 10,
        ),
        (
            18,
            [10, 0, 0, 53],
            53,
            Some("cdn-sync-telemetry.com"),
            ExfilKind::DnsTunnel,
            1.0,
            16.0,
            0,
        ),
    ];
    for (hi, dest, port, name, kind, day, hour, bytes) in specs {
        sc.acts.push(Box::new(ExfilPlan::new(
            host(hi % n),
            v4(dest),
            port,
            name,
            kind,
            at(o, day, hour),
            bytes,
        )));
    }
}
