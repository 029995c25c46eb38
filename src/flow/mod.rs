//! Flow stage: bidirectional flows keyed by a canonical 5-tuple (+ VLAN),
//! one [`table::FlowTable`] per shard thread.

pub mod entry;
pub mod event;
pub mod key;
pub mod record;
pub mod slab;
pub mod table;
pub mod tcp;
