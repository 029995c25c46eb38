//! The TCP state machine of a flow: a few state bits moved on by each
//! segment's flags, and the timeout class and state name they give.

use crate::decode::tcp;

/// Timeout classes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Class {
    TcpNew = 0,
    TcpEstablished,
    TcpClosed,
    Udp,
    Icmp,
    Other,
}

pub const CLASSES: usize = 6;

// tcp state bits
pub const T_SYN: u8 = 0x01;
pub const T_SYNACK: u8 = 0x02;
pub const T_EST: u8 = 0x04;
pub const T_FIN_ORIG: u8 = 0x08;
pub const T_FIN_RESP: u8 = 0x10;
pub const T_RST: u8 = 0x20;

/// Moves the state bits on with one segment's `flags`; `both_sides` once
/// packets were seen in both directions.
pub fn transition(state: &mut u8, flags: u8, from_orig: bool, both_sides: bool) {
    if flags & tcp::RST != 0 {
        *state |= T_RST;
    }
    if flags & tcp::SYN != 0 {
        if flags & tcp::ACK != 0 {
            *state |= T_SYNACK;
        } else {
            *state |= T_SYN;
        }
    } else if flags & tcp::ACK != 0 && both_sides {
        *state |= T_EST;
    }
    if flags & tcp::FIN != 0 {
        *state |= if from_orig { T_FIN_ORIG } else { T_FIN_RESP };
    }
}

/// The timeout class of a TCP flow in `state`.
#[must_use]
pub fn class(state: u8) -> Class {
    if state & T_RST != 0 || state & (T_FIN_ORIG | T_FIN_RESP) == (T_FIN_ORIG | T_FIN_RESP) {
        Class::TcpClosed
    } else if state & T_EST != 0 {
        Class::TcpEstablished
    } else {
        Class::TcpNew
    }
}

/// TCP state name for flow records.
#[must_use]
pub fn state_name(state: u8) -> &'static str {
    match class(state) {
        Class::TcpClosed => "closed",
        Class::TcpEstablished => "established",
        _ => "new",
    }
}
