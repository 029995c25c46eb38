//! The README's example detector ("Adding a detector"), run through the
//! analyzer as the pipeline runs it: a component with its own config
//! section, per-partition state, and alerts merged in event order.

use deguchi::alert::{Alert, Severity};
use deguchi::analysis::Analyzer;
use deguchi::baseline::BaselineConfig;
use deguchi::detect::{BuildEnv, Detector, DetectorConfig, EventCtx};
use deguchi::flow::event::FlowEvent;
use deguchi::flow::record::{EndReason, FlowRecord};
use deguchi::homenet::{Direction, HomeNet};
use deguchi::sink::Out;
use deguchi::time::SEC;
use std::any::Any;
use std::collections::HashSet;
use std::net::IpAddr;

#[derive(Clone, Debug)]
struct OddPortConfig {
    enabled: bool,
    ports: Vec<u16>,
}

struct OddPort {
    cfg: OddPortConfig,
    seen: HashSet<(IpAddr, u16)>,
}

impl Detector for OddPort {
    fn name(&self) -> &'static str {
        "odd_port"
    }

    fn on_flow(&mut self, r: &FlowRecord, cx: &EventCtx<'_>, out: &mut Vec<Alert>) {
        if cx.dir == Direction::Outbound
            && self.cfg.ports.contains(&r.dest_port)
            && self.seen.insert((r.src_ip, r.dest_port))
        {
            let mut evidence = serde_json::Map::new();
            evidence.insert("port".into(), r.dest_port.into());
            out.push(Alert {
                ts: r.end,
                src_ip: r.src_ip,
                src_port: Some(r.src_port),
                dest_ip: r.dest_ip,
                dest_port: Some(r.dest_port),
                proto: r.proto,
                community_id: Some(r.community_id()),
                flow_id: Some(r.flow_id),
                detector: "odd_port",
                signature: format!("deguchi ODD PORT {}", r.dest_port),
                signature_id: 9_900_001,
                category: "Potentially Bad Traffic",
                severity: Severity::Low,
                score: 0.3,
                evidence,
            });
        }
    }
}

impl DetectorConfig for OddPortConfig {
    fn enabled(&self) -> bool {
        self.enabled
    }
    fn build(&self, _env: &BuildEnv) -> Box<dyn Detector> {
        Box::new(OddPort {
            cfg: self.clone(),
            seen: HashSet::new(),
        })
    }
    fn clone_box(&self) -> Box<dyn DetectorConfig> {
        Box::new(self.clone())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

fn flow(host: u8, port: u16, t: i64) -> FlowEvent {
    FlowEvent::End(FlowRecord {
        flow_id: u64::from(host) << 16 | u64::from(port),
        src_ip: IpAddr::from([10, 0, 0, host]),
        src_port: 40000,
        dest_ip: IpAddr::from([198, 51, 100, 7]),
        dest_port: port,
        proto: 6,
        vlan: 0,
        tunnel: deguchi::decode::Tunnel::None,
        icmp: (0, 0),
        pkts: [3, 3],
        bytes: [300, 300],
        payload: [100, 100],
        start: t * SEC,
        end: t * SEC + SEC,
        tcp_flags: [0x1b, 0x1b],
        tcp_state: 0,
        reason: EndReason::Timeout,
        bursts: 1,
        reported: [0, 0],
        hints: None,
        direction: Direction::External,
        oriented: deguchi::flow::record::Oriented::Handshake,
    })
}

#[test]
fn a_detector_component_runs_in_every_partition_layout() {
    let cfg = OddPortConfig {
        enabled: true,
        ports: vec![6667],
    };
    let run = |partitions: usize| -> Vec<String> {
        let parts = (0..partitions)
            .map(|k| {
                vec![cfg.build(&BuildEnv {
                    home_net: HomeNet::default_nets(),
                    partitions,
                    partition: k,
                })]
            })
            .collect();
        let mut an = Analyzer::new(HomeNet::default_nets(), &BaselineConfig::default(), parts);
        an.keep_flows = false;
        let mut out = Vec::new();
        let mut evs: Vec<FlowEvent> = (0..40u8)
            .map(|i| flow(i % 8, if i % 3 == 0 { 6667 } else { 443 }, i64::from(i)))
            .collect();
        an.on_batch(&mut evs, &mut out);
        an.finish(&mut out);
        out.iter()
            .filter_map(|o| match o {
                Out::Alert(a) => Some(format!("{} {}", a.src_ip, a.signature)),
                _ => None,
            })
            .collect()
    };
    let one = run(1);
    // hosts 10.0.0.0..7 reach 6667 when i % 3 == 0: every host once
    assert_eq!(one.len(), 8, "{one:?}");
    assert!(one.iter().all(|a| a.ends_with("ODD PORT 6667")));
    for p in [2, 4, 16] {
        assert_eq!(run(p), one, "{p} partitions");
    }
}
