//! What a packet's payload hint adds to its flow: the TLS SNI, the first
//! HTTP request, DNS names and answers (and the DNS events).

use crate::decode::{HintKind, PacketMeta};
use crate::flow::entry::Entry;
use crate::flow::event::{DnsAnswer, DnsQuery, FlowEvent};
use crate::flow::record::{FlowHints, HttpHint};
use crate::hints;

pub(super) fn apply_hint(
    e: &mut Entry,
    m: &PacketMeta,
    from_orig: bool,
    bytes: &[u8],
) -> Option<FlowEvent> {
    match m.hint.kind {
        HintKind::None => None,
        HintKind::TlsClientHello => {
            if from_orig
                && e.hints.as_ref().is_none_or(|h| h.sni.is_none())
                && let Some(sni) = hints::tls::client_hello_sni(bytes)
            {
                e.hints.get_or_insert_default().sni = Some(lossy(sni).into());
            }
            None
        }
        HintKind::HttpRequest => {
            // the first request only (its method is recorded even without a Host)
            if from_orig
                && e.hints.as_ref().is_none_or(|h| h.http.is_none())
                && let Some(req) = hints::http::parse_request(bytes)
            {
                let h = e.hints.get_or_insert_default();
                h.http = Some(Box::new(HttpHint {
                    method: lossy(req.method),
                    uri: lossy(&req.uri[..req.uri.len().min(256)]),
                }));
                h.http_host = req.host.map(|h| lossy(h).into());
            }
            None
        }
        HintKind::DnsUdp | HintKind::DnsTcp => {
            let s = if m.hint.kind == HintKind::DnsUdp {
                hints::dns::parse(bytes)
            } else {
                hints::dns::parse_tcp(bytes)
            }?;
            let h = e.hints.get_or_insert_default().dns.get_or_insert_default();
            let name = s.qname.as_bytes();
            if !name.is_empty() && h.queries.len() < FlowHints::MAX_NAMES {
                // compare before allocating: repeated queries cost nothing
                if !h.queries.iter().any(|q| q.as_bytes() == name) {
                    h.queries.push(lossy(name));
                }
            }
            if s.is_response {
                h.rcode = Some(s.rcode);
                for a in &s.answers {
                    if h.answers.len() < FlowHints::MAX_ANSWERS && !h.answers.contains(a) {
                        h.answers.push(*a);
                    }
                }
                if !s.answers.is_empty() && !name.is_empty() {
                    return Some(FlowEvent::DnsAnswer(Box::new(DnsAnswer {
                        ts: m.ts,
                        client: crate::flow::key::ip_of(m.dst, m.v6),
                        resolver: crate::flow::key::ip_of(m.src, m.v6),
                        name: lossy(name),
                        addrs: s.answers.iter().copied().collect(),
                    })));
                }
            } else if !name.is_empty() {
                return Some(FlowEvent::DnsQuery(Box::new(DnsQuery {
                    ts: m.ts,
                    client: crate::flow::key::ip_of(m.src, m.v6),
                    server: crate::flow::key::ip_of(m.dst, m.v6),
                    name: lossy(name),
                    qtype: s.qtype,
                })));
            }
            None
        }
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}
