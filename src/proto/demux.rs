//! What a server learns from a datagram before it has a session for it (SPEC §4.8).
//!
//! [`peek`] reads an opened datagram (FEC packet or plain KCP datagram, after the crypto layer)
//! and says which conversation it belongs to and whether it can start one. Go's listener creates a
//! session for any datagram with a conv; we create one only for a datagram that carries the
//! conversation's first segment (a PUSH with `sn == 0`), because a datagram from the middle of a
//! conversation means the peer's session is one we lost (we restarted, or the peer's address
//! changed): a session built from it could only feed garbage to snappy and smux. For those,
//! [`write_reset_hint`] builds the answer: a WINS segment whose `una` is 0, which tells one of our
//! clients that its session is gone (its acknowledged sequence went backwards; the client checks
//! by asking again, see `kcp::reset`, and our next hint confirms it) and which Go clients process
//! as a no-op.

use super::fec::{self, PacketKind};

/// KCP commands.
const CMD_PUSH: u8 = 81;
const CMD_WINS: u8 = 84;
const OVERHEAD: usize = 24;

/// What [`peek`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peek {
    pub conv: u32,
    /// The datagram carries a PUSH with `sn == 0`: the start of a conversation.
    pub starts_conversation: bool,
}

/// Conversation of an opened datagram; `None` for parity/OOB packets and anything too short.
pub fn peek(payload: &[u8]) -> Option<Peek> {
    let kcp = match fec::classify(payload) {
        PacketKind::Plain => payload,
        PacketKind::Data => payload.get(fec::FEC_HEADER..)?,
        PacketKind::Parity | PacketKind::Oob => return None,
    };
    peek_kcp(kcp)
}

/// [`peek`] for a bare KCP datagram (after the FEC layer).
pub fn peek_kcp(kcp: &[u8]) -> Option<Peek> {
    if kcp.len() < OVERHEAD {
        return None;
    }
    let conv = u32::from_le_bytes([kcp[0], kcp[1], kcp[2], kcp[3]]);
    let mut starts = false;
    let mut rest = kcp;
    while rest.len() >= OVERHEAD {
        let seg_conv = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
        if seg_conv != conv {
            break;
        }
        let cmd = rest[4];
        let sn = u32::from_le_bytes([rest[12], rest[13], rest[14], rest[15]]);
        let len = u32::from_le_bytes([rest[20], rest[21], rest[22], rest[23]]) as usize;
        if cmd == CMD_PUSH && sn == 0 {
            starts = true;
            break;
        }
        match rest.get(OVERHEAD.saturating_add(len)..) {
            Some(r) => rest = r,
            None => break,
        }
    }
    Some(Peek {
        conv,
        starts_conversation: starts,
    })
}

/// Writes the reset hint (one 24-byte WINS segment with `una = 0`) into `out`; returns 24.
///
/// # Panics
/// If `out` is shorter than 24 bytes (a caller bug: callers pass an MTU-sized buffer).
pub fn write_reset_hint(conv: u32, out: &mut [u8]) -> usize {
    let seg = &mut out[..OVERHEAD];
    seg.fill(0);
    seg[0..4].copy_from_slice(&conv.to_le_bytes());
    seg[4] = CMD_WINS;
    seg[6..8].copy_from_slice(&1024u16.to_le_bytes());
    OVERHEAD
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(conv: u32, cmd: u8, sn: u32, data: &[u8]) -> Vec<u8> {
        let mut s = vec![0u8; OVERHEAD];
        s[0..4].copy_from_slice(&conv.to_le_bytes());
        s[4] = cmd;
        s[12..16].copy_from_slice(&sn.to_le_bytes());
        s[20..24].copy_from_slice(&(data.len() as u32).to_le_bytes());
        s.extend_from_slice(data);
        s
    }

    #[test]
    fn first_push_starts_a_conversation() {
        let mut d = seg(7, 82, 3, b"");
        d.extend(seg(7, CMD_PUSH, 0, b"abc"));
        assert_eq!(
            peek(&d),
            Some(Peek {
                conv: 7,
                starts_conversation: true
            })
        );
        let mid = seg(7, CMD_PUSH, 5, b"abc");
        assert_eq!(peek(&mid).map(|p| p.starts_conversation), Some(false));
    }

    #[test]
    fn fec_data_is_looked_into_and_parity_is_not() {
        let kcp = seg(9, CMD_PUSH, 0, b"x");
        let mut data = vec![0, 0, 0, 0, 0xF1, 0, 0, 0];
        data[6..8].copy_from_slice(&((kcp.len() + 2) as u16).to_le_bytes());
        data.extend(&kcp);
        assert_eq!(peek(&data).map(|p| p.conv), Some(9));
        let parity = [0u8, 0, 0, 0, 0xF2, 0, 1, 2, 3, 4];
        assert_eq!(peek(&parity), None);
    }

    #[test]
    fn short_and_hostile_input_is_harmless() {
        for n in 0..40 {
            let _ = peek(&vec![0xFF; n]);
        }
        let mut d = seg(1, CMD_PUSH, 9, b"");
        d[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(peek(&d).map(|p| p.starts_conversation), Some(false));
    }

    #[test]
    fn reset_hint_is_a_wins_with_una_zero() {
        let mut b = [0xAAu8; 64];
        assert_eq!(write_reset_hint(0x01020304, &mut b), 24);
        assert_eq!(&b[..4], &[4, 3, 2, 1]);
        assert_eq!(b[4], CMD_WINS);
        assert_eq!(&b[16..24], &[0; 8]);
    }
}
