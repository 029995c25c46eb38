//! A flow shard's table: owned by one thread, no locks.
//!
//! Storage is a slab of [`Entry`] (grown in fixed blocks, see
//! [`super::slab`]) plus a seeded hash table of slab indices
//! (4 bytes and a control byte per slot; keys are compared in the slab), so
//! the table's index stays small enough to sit in cache and a packet costs
//! one cache miss, on its flow's entry. Every entry sits on one of six intrusive LRU lists, one per
//! timeout class (TCP half-open, TCP established, TCP closed, UDP, ICMP,
//! other); a packet moves its flow to the head of its class list, so each
//! list is ordered by last activity and expiry only looks at list tails.
//!
//! Moving a flow to the head costs three random memory accesses (its list
//! neighbours and the old head), so a flow is moved at most once per
//! [`RELIST_EVERY`] of packet time (or when its class changes). Lists are
//! then ordered by the time of that move, and every flow's last activity is
//! less than `RELIST_EVERY` after it, so the tail walk of expiry ends a flow
//! at most `RELIST_EVERY` after its idle timeout (expiry itself runs once per
//! second of packet time), and eviction picks the flow nearest its timeout
//! to within `RELIST_EVERY`.
//!
//! Eviction policy (memory cap reached): the flow **nearest to its idle
//! timeout** is ended first, i.e. the tail with the smallest
//! `last_seen + timeout`. Closed and half-open TCP flows and idle UDP flows go
//! before established sessions, so a SYN flood or a scan evicts its own
//! debris rather than the long-lived session of the host we watch. Evicted
//! flows are written with `reason: "evicted"` and counted.

mod hint;
#[cfg(test)]
mod tests;

use super::entry::Entry;
pub use super::event::{BurstEvent, DnsAnswer, DnsQuery, FlowEvent, ProgressEvent};
use super::key::FlowKey;
use super::record::{EndReason, FlowRecord, Oriented};
pub use super::tcp::{CLASSES, Class};
use crate::decode::{HintKind, PacketMeta, tcp};
use crate::time::{SEC, Ts};
use hint::apply_hint;

/// A flow moves to the head of its list at most this often (packet time).
pub const RELIST_EVERY: Ts = SEC;
const NIL: u32 = u32::MAX;

/// Idle timeouts (packet time) and the table bound, per shard.
#[derive(Clone, Debug)]
pub struct TableConfig {
    pub timeouts: [Ts; CLASSES],
    pub max_flows: usize,
    /// Silence (packet time) that separates two bursts of payload inside one flow.
    pub burst_gap: Ts,
    /// Payload (both directions) after which a flow reports its progress.
    pub progress_bytes: u64,
    /// Lowest ephemeral (client) port for orienting TCP flows seen without
    /// a SYN or SYN-ACK; 0 = such flows are oriented by their first packet.
    pub ephemeral_port_min: u16,
    /// Silence after which a TCP segment of 0-1 byte (ACK, no SYN, FIN or
    /// RST) is a keep-alive probe, reported as a [`BurstEvent`] with
    /// `keepalive` set; 0 = never.
    pub keepalive_idle: Ts,
}

impl Default for TableConfig {
    fn default() -> Self {
        Self {
            timeouts: [
                60 * SEC,
                3600 * SEC,
                10 * SEC,
                120 * SEC,
                60 * SEC,
                60 * SEC,
            ],
            max_flows: 1 << 20,
            burst_gap: SEC,
            progress_bytes: 1 << 20,
            ephemeral_port_min: 32768,
            keepalive_idle: 10 * SEC,
        }
    }
}

/// Asks the CPU to bring every cache line of `*r` into cache, without
/// waiting for them. (A plain load of the entry did the same job but stalled
/// retirement on a miss; the profile is in `benches/HISTORY.md`.)
#[inline]
fn prefetch<T>(r: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let p = std::ptr::from_ref(r).cast::<i8>();
        let mut off = 0;
        while off < std::mem::size_of::<T>() {
            // SAFETY: a prefetch is a hint: it never faults and changes no
            // memory; the address is inside `*r` anyway.
            #[allow(unsafe_code)]
            unsafe {
                _mm_prefetch::<_MM_HINT_T0>(p.add(off));
            }
            off += 64;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        std::hint::black_box(r);
    }
}

/// Bytes one tracked flow costs: its slab entry plus a hash-table slot
/// (index and control byte, at the table's 7/8 maximum load).
#[must_use]
pub fn bytes_per_flow() -> usize {
    let slot = std::mem::size_of::<u32>() + 1;
    // plus the hint cache: up to four u32 slots per flow (grown at half full)
    std::mem::size_of::<Entry>() + slot * 8 / 7 + 4 * std::mem::size_of::<u32>()
}

/// Counters a shard keeps about its table.
#[derive(Clone, Debug, Default)]
pub struct TableCounters {
    pub flows_created: u64,
    pub flows_ended: u64,
    pub evicted: u64,
    pub peak_flows: u64,
    /// Times the table entered emergency mode.
    pub emergencies: u64,
}

pub struct FlowTable {
    map: hashbrown::HashTable<u32>,
    hasher: super::key::KeyHasher,
    slab: super::slab::Slab<Entry>,
    free: Vec<u32>,
    head: [u32; CLASSES],
    tail: [u32; CLASSES],
    cfg: TableConfig,
    pub counters: TableCounters,
    /// Emergency mode (flood): the table is nearly full, so flows that are
    /// not established (half-open TCP, UDP, ICMP, other) time out after
    /// [`EMERGENCY_TIMEOUT`] instead of their class timeout, and eviction
    /// does the rest. Entered at 90 % of the cap, left below 70 % (Suricata's
    /// flow emergency mode works the same way).
    pub emergency: bool,
    /// Direct-mapped cache in front of `map`: slot `hash & mask` holds the
    /// slab index the last lookup of a key with that slot found. A hit is
    /// confirmed by comparing the key in the slab, so a stale slot only costs
    /// a miss; `end` clears the slot of the flow it ends, so a hit is never
    /// a dead entry. It lets the shard start loading a packet's entry a few
    /// packets ahead ([`FlowTable::locate`]) and skips the index probe
    /// when it hits. Twice the live flows, at least 4096 slots.
    hint: Vec<u32>,
}

/// A packet's flow key and hash, computed ahead of its update.
#[derive(Clone, Copy, Debug, Default)]
pub struct Located {
    key: FlowKey,
    src_is_a: bool,
    hash: u64,
}

/// Slots of the smallest [`FlowTable`] hint cache.
const HINT_MIN: usize = 4096;

/// Idle timeout of non-established flows in emergency mode.
pub const EMERGENCY_TIMEOUT: Ts = 5 * SEC;

impl FlowTable {
    #[must_use]
    pub fn new(cfg: TableConfig) -> Self {
        Self {
            map: hashbrown::HashTable::new(),
            hasher: super::key::KeyHasher::new(),
            slab: super::slab::Slab::default(),
            free: Vec::new(),
            head: [NIL; CLASSES],
            tail: [NIL; CLASSES],
            cfg,
            counters: TableCounters::default(),
            emergency: false,
            hint: vec![NIL; HINT_MIN],
        }
    }

    #[inline]
    fn hint_slot(&self, hash: u64) -> usize {
        // the low bits: hashbrown uses the top 7 for its tags
        #[allow(clippy::cast_possible_truncation)]
        let h = hash as usize;
        h & (self.hint.len() - 1)
    }

    /// Key and hash of a packet's flow; also starts loading the flow's hint
    /// slot (first stage of a two-stage prefetch, see
    /// [`FlowTable::prefetch_entry`]).
    #[inline]
    #[must_use]
    pub fn locate(&self, m: &PacketMeta) -> Located {
        let (key, src_is_a) = FlowKey::of(m);
        let hash = self.hasher.key(&key);
        if let Some(h) = self.hint.get(self.hint_slot(hash)) {
            // first stage: the hint slot starts loading
            prefetch(h);
        }
        Located {
            key,
            src_is_a,
            hash,
        }
    }

    /// Second stage, a few packets after [`FlowTable::locate`]: the flow
    /// entry the (by now cached) hint slot names starts loading, so
    /// [`FlowTable::update_located`] a few packets later does not wait.
    #[inline]
    pub fn prefetch_entry(&self, at: &Located) {
        if let Some((_, e)) = self.hinted(at.hash) {
            prefetch(e);
        }
    }

    /// The slab index the hint cache holds for `hash`, and that entry (of
    /// whatever flow: the caller compares the key).
    #[inline]
    fn hinted(&self, hash: u64) -> Option<(u32, &Entry)> {
        let j = *self.hint.get(self.hint_slot(hash))?;
        self.slab.get(j as usize).map(|e| (j, e))
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.map.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The idle timeout of a class now (shorter in emergency mode).
    fn timeout(&self, c: usize) -> Ts {
        let t = self.cfg.timeouts[c];
        if self.emergency && c != Class::TcpEstablished as usize {
            t.min(EMERGENCY_TIMEOUT)
        } else {
            t
        }
    }

    fn check_emergency(&mut self) {
        let cap = self.cfg.max_flows.max(1);
        let n = self.map.len();
        if !self.emergency && n * 10 >= cap * 9 {
            self.emergency = true;
            self.counters.emergencies += 1;
        } else if self.emergency && n * 10 < cap * 7 {
            self.emergency = false;
        }
    }

    fn unlink(&mut self, i: u32) {
        let (prev, next, c) = {
            let e = &self.slab[i as usize];
            (e.prev, e.next, e.class as usize)
        };
        if prev == NIL {
            self.head[c] = next;
        } else {
            self.slab[prev as usize].next = next;
        }
        if next == NIL {
            self.tail[c] = prev;
        } else {
            self.slab[next as usize].prev = prev;
        }
    }

    fn push_head(&mut self, i: u32, c: Class) {
        let h = self.head[c as usize];
        {
            let e = &mut self.slab[i as usize];
            e.class = c;
            e.prev = NIL;
            e.next = h;
            e.listed_ts = e.last_ts;
        }
        if h == NIL {
            self.tail[c as usize] = i;
        } else {
            self.slab[h as usize].prev = i;
        }
        self.head[c as usize] = i;
    }

    /// Accounts one packet; may end a flow (TCP port reuse, eviction) into `out`.
    pub fn update(&mut self, m: &PacketMeta, arena: &[u8], out: &mut Vec<FlowEvent>) {
        let at = self.locate(m);
        self.update_located(m, &at, arena, out);
    }

    /// [`FlowTable::update`] with the key and hash from [`FlowTable::locate`]
    /// (on this table, with no packet of another flow in between that could
    /// matter: the lookup itself is done here).
    pub fn update_located(
        &mut self,
        m: &PacketMeta,
        at: &Located,
        arena: &[u8],
        out: &mut Vec<FlowEvent>,
    ) {
        // by reference: the key is copied only when a flow is created
        let (key, src_is_a, hash) = (&at.key, at.src_is_a, at.hash);
        let slot = self.hint_slot(hash);
        let hinted = self
            .hinted(hash)
            .filter(|(_, e)| e.key == *key)
            .map(|(j, _)| j);
        let mut idx = hinted.or_else(|| {
            let slab = &self.slab;
            self.map
                .find(hash, |&j| {
                    slab.get(j as usize).is_some_and(|e| e.key == *key)
                })
                .copied()
        });
        if let (Some(j), None) = (idx, hinted) {
            self.hint[slot] = j;
        }
        if let Some(i) = idx {
            let e = &self.slab[i as usize];
            let c = e.class;
            if e.last_ts.saturating_add(self.timeout(c as usize)) < m.ts {
                // idle past its timeout: that flow is over, this packet starts a new one
                let reason = if c == Class::TcpClosed {
                    EndReason::Closed
                } else {
                    EndReason::Timeout
                };
                self.end(i, reason, out);
                idx = None;
            } else if m.proto == 6
                && m.tcp_flags & (tcp::SYN | tcp::ACK) == tcp::SYN
                && c == Class::TcpClosed
            {
                // a new SYN on a closed connection starts a new flow (port reuse)
                self.end(i, EndReason::Closed, out);
                idx = None;
            }
        }
        let i = match idx {
            Some(i) => i,
            None => {
                if self.map.len() >= self.cfg.max_flows.max(1) {
                    self.evict_one(out);
                }
                self.insert(*key, hash, src_is_a, m)
            }
        };
        // one borrow of the entry for the whole update (the slab is indexed
        // once, not once per step)
        let cfg = &self.cfg;
        let e = &mut self.slab[i as usize];
        let from_orig = src_is_a == e.orig_is_a;
        let d = usize::from(!from_orig);
        // a keep-alive probe: 0 or 1 byte, a bare ACK, after silence
        if m.proto == 6
            && cfg.keepalive_idle > 0
            && m.payload_len <= 1
            && m.tcp_flags & (tcp::SYN | tcp::FIN | tcp::RST) == 0
            && m.tcp_flags & tcp::ACK != 0
            && e.pkts[0] + e.pkts[1] > 0
            && m.ts.saturating_sub(e.last_ts) >= cfg.keepalive_idle
        {
            out.push(FlowEvent::Burst(BurstEvent::probe(
                e,
                m.ts,
                d,
                m.payload_len,
            )));
        }
        e.pkts[d] += 1;
        e.bytes[d] += u64::from(m.wire_len);
        e.payload[d] += u64::from(m.payload_len);
        if m.ts > e.last_ts {
            e.last_ts = m.ts;
        }
        if m.ts < e.first_ts {
            e.first_ts = m.ts;
        }
        // TCP keep-alive probes carry 0 or 1 byte: not activity
        if m.payload_len > u32::from(m.proto == 6) {
            if e.bursts == 0 {
                e.bursts = 1;
                e.burst_start = m.ts;
                e.burst_orig_first = Ts::MAX;
            } else if m.ts.saturating_sub(e.burst_last) >= cfg.burst_gap {
                // the previous burst is complete; report it once the flow has two
                out.push(FlowEvent::Burst(BurstEvent::of(e)));
                e.bursts += 1;
                e.burst_start = m.ts;
                e.burst_bytes = [0; 2];
                e.burst_orig_first = Ts::MAX;
            }
            if d == 0 && m.ts < e.burst_orig_first {
                e.burst_orig_first = m.ts;
            }
            e.burst_bytes[d] = e.burst_bytes[d].saturating_add(m.payload_len);
            if m.ts > e.burst_last {
                e.burst_last = m.ts;
            }
        }
        let class = if m.proto == 6 {
            e.tcp_flags[d] |= m.tcp_flags;
            let both = e.pkts[0] > 0 && e.pkts[1] > 0;
            super::tcp::transition(&mut e.tcp_state, m.tcp_flags, from_orig, both);
            super::tcp::class(e.tcp_state)
        } else {
            e.class
        };
        if e.payload[0] + e.payload[1] - e.reported[0] - e.reported[1] >= cfg.progress_bytes {
            out.push(FlowEvent::Progress(ProgressEvent::of(e, m.ts)));
            e.reported = e.payload;
        }
        let dns = if m.hint.kind == HintKind::None {
            None
        } else {
            let start = m.hint.off as usize;
            let bytes = arena
                .get(start..start + usize::from(m.hint.len))
                .unwrap_or(&[]);
            apply_hint(e, m, from_orig, bytes)
        };
        if class != e.class || e.last_ts.saturating_sub(e.listed_ts) >= RELIST_EVERY {
            self.unlink(i);
            self.push_head(i, class);
        }
        if let Some(d) = dns {
            out.push(d);
        }
    }

    fn insert(&mut self, key: FlowKey, hash: u64, src_is_a: bool, m: &PacketMeta) -> u32 {
        // originator: the sender of a SYN; the receiver of a SYN-ACK; for a
        // TCP flow seen mid-session, the side on an ephemeral port when the
        // other is on a service port; else the sender
        let syn = m.proto == 6 && m.tcp_flags & tcp::SYN != 0;
        let syn_ack = syn && m.tcp_flags & tcp::ACK != 0;
        let by_ports = if m.proto == 6 && !syn {
            orient_by_ports(m.sport, m.dport, self.cfg.ephemeral_port_min)
        } else {
            None
        };
        let orig_is_a = match by_ports {
            Some(src_orig) => src_orig == src_is_a,
            None => syn_ack != src_is_a,
        };
        let oriented = if syn || m.proto != 6 {
            Oriented::Handshake
        } else if by_ports.is_some() {
            Oriented::Ports
        } else {
            Oriented::FirstPacket
        };
        let class = match m.proto {
            6 => Class::TcpNew,
            17 => Class::Udp,
            1 | 58 => Class::Icmp,
            _ => Class::Other,
        };
        let e = Entry {
            key,
            first_ts: m.ts,
            last_ts: m.ts,
            pkts: [0; 2],
            bytes: [0; 2],
            payload: [0; 2],
            hints: None,
            prev: NIL,
            next: NIL,
            listed_ts: m.ts,
            orig_is_a,
            oriented,
            tcp_flags: [0; 2],
            tcp_state: 0,
            class,
            icmp: (m.icmp_type, m.icmp_code),
            tunnel: m.tunnel,
            bursts: 0,
            burst_bytes: [0; 2],
            burst_start: m.ts,
            burst_last: m.ts,
            burst_orig_first: Ts::MAX,
            reported: [0; 2],
        };
        let i = if let Some(i) = self.free.pop() {
            self.slab[i as usize] = e;
            i
        } else {
            u32::try_from(self.slab.push(e)).unwrap_or(NIL - 1)
        };
        let (slab, hasher) = (&self.slab, &self.hasher);
        self.map.insert_unique(hash, i, |&j| {
            slab.get(j as usize).map_or(0, |e| hasher.key(&e.key))
        });
        if self.map.len() * 2 > self.hint.len() {
            // grow the hint cache with the table; it refills as packets come
            self.hint = vec![NIL; self.hint.len() * 2];
        }
        let slot = self.hint_slot(hash);
        self.hint[slot] = i;
        self.push_head(i, class);
        self.counters.flows_created += 1;
        let n = self.map.len() as u64;
        if n > self.counters.peak_flows {
            self.counters.peak_flows = n;
        }
        self.check_emergency();
        i
    }

    fn evict_one(&mut self, out: &mut Vec<FlowEvent>) {
        let mut best: Option<(Ts, u32)> = None;
        for c in 0..CLASSES {
            let t = self.tail[c];
            if t == NIL {
                continue;
            }
            let due = self.slab[t as usize]
                .last_ts
                .saturating_add(self.timeout(c));
            if best.is_none_or(|(d, _)| due < d) {
                best = Some((due, t));
            }
        }
        if let Some((_, i)) = best {
            self.counters.evicted += 1;
            self.end(i, EndReason::Evicted, out);
        }
    }

    fn end(&mut self, i: u32, reason: EndReason, out: &mut Vec<FlowEvent>) {
        self.unlink(i);
        let hash = self.hasher.key(&self.slab[i as usize].key);
        if let Ok(slot) = self.map.find_entry(hash, |&j| j == i) {
            slot.remove();
        }
        let slot = self.hint_slot(hash);
        if self.hint[slot] == i {
            self.hint[slot] = NIL;
        }
        let e = &mut self.slab[i as usize];
        if e.bursts >= 2 {
            out.push(FlowEvent::Burst(BurstEvent::of(e)));
        }
        let rec = FlowRecord::from_entry(e, reason);
        e.hints = None;
        self.free.push(i);
        self.counters.flows_ended += 1;
        out.push(FlowEvent::End(rec));
    }

    /// Ends every flow idle past its class timeout at packet time `now`.
    pub fn expire(&mut self, now: Ts, out: &mut Vec<FlowEvent>) {
        self.check_emergency();
        for c in 0..CLASSES {
            loop {
                let t = self.tail[c];
                if t == NIL {
                    break;
                }
                let e = &self.slab[t as usize];
                if e.last_ts.saturating_add(self.timeout(c)) > now {
                    break;
                }
                let reason = if c == Class::TcpClosed as usize {
                    EndReason::Closed
                } else {
                    EndReason::Timeout
                };
                self.end(t, reason, out);
            }
        }
    }

    /// Ends every flow (end of input or shutdown).
    pub fn flush(&mut self, out: &mut Vec<FlowEvent>) {
        self.flush_some(usize::MAX, out);
    }

    /// Ends up to `max` flows (end of input, in chunks so the records of a
    /// large table are not all in memory at once); true when none are left.
    pub fn flush_some(&mut self, max: usize, out: &mut Vec<FlowEvent>) -> bool {
        let mut n = 0;
        for c in 0..CLASSES {
            while self.tail[c] != NIL {
                if n >= max {
                    return false;
                }
                n += 1;
                let t = self.tail[c];
                let reason = if c == Class::TcpClosed as usize {
                    EndReason::Closed
                } else {
                    EndReason::Shutdown
                };
                self.end(t, reason, out);
            }
        }
        true
    }
}

/// Whether the sender of a mid-session TCP segment from `sport` to `dport`
/// is the originator, judged by the ports as Zeek and Suricata do: the side
/// on a well-known or registered port (below `ephemeral_min`) is the
/// responder when the other side's port is ephemeral. `None` when the ports
/// do not tell (both or neither ephemeral, or the rule is off).
#[must_use]
pub fn orient_by_ports(sport: u16, dport: u16, ephemeral_min: u16) -> Option<bool> {
    if ephemeral_min == 0 {
        return None;
    }
    match (sport >= ephemeral_min, dport >= ephemeral_min) {
        (true, false) => Some(true),
        (false, true) => Some(false),
        _ => None,
    }
}
