//! Hostile and random input: clear errors for malformed datagrams, no panic and bounded buffers
//! for anything a peer can send.

use proptest::prelude::*;

use super::*;

#[test]
fn hostile_datagrams_return_errors() {
    let t0 = crate::test_clock::origin();
    let mut k = Kcp::new(CONV, &cfg("fast", (0, 0, 0, 0), 1400), t0);
    assert_eq!(
        k.handle_packet(t0, &[0u8; 10], false),
        Err(InputError::Truncated)
    );
    let mut p = push_seg(0, 0, 0, b"hi");
    p[0] ^= 1;
    assert_eq!(
        k.handle_packet(t0, &p, false),
        Err(InputError::ConvMismatch)
    );
    p[0] ^= 1;
    p[4] = 99;
    assert_eq!(k.handle_packet(t0, &p, false), Err(InputError::BadCommand));
    p[4] = CMD_PUSH;
    p[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(k.handle_packet(t0, &p, false), Err(InputError::Truncated));
    // A good segment then garbage: the first counts, the rest is ignored.
    let mut two = push_seg(0, 0, 0, b"ok");
    two.extend_from_slice(&[0xFF; 30]);
    assert_eq!(
        k.handle_packet(t0, &two, false),
        Err(InputError::ConvMismatch)
    );
    assert_eq!(k.readable(), 2);
    assert_eq!(k.stats().kcp_in_errors, 5);
    assert_eq!(InputError::Truncated.to_string(), "truncated kcp segment");
}

fn header_strategy() -> impl Strategy<Value = Vec<u8>> {
    (
        80u8..86,
        any::<u16>(),
        any::<u32>(),
        prop_oneof![any::<u32>(), 0u32..64],
        prop_oneof![any::<u32>(), 0u32..64],
        prop_oneof![0u32..40, any::<u32>()],
        prop::collection::vec(any::<u8>(), 0..40),
    )
        .prop_map(|(cmd, wnd, ts, sn, una, len, data)| {
            let mut v = vec![0u8; OVERHEAD];
            Header {
                conv: CONV,
                cmd,
                frg: 0,
                wnd,
                ts,
                sn,
                una,
                len,
            }
            .write(&mut v);
            v.extend_from_slice(&data);
            v
        })
}

proptest! {
    #[test]
    fn random_bytes_never_panic(dgrams in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..200), 1..20)) {
        let t0 = crate::test_clock::origin();
        let mut k = Kcp::new(CONV, &cfg("fast3", (0, 0, 0, 0), 200), t0);
        k.send(&[1u8; 1000]);
        for (i, d) in dgrams.iter().enumerate() {
            let now = at(t0, i as u64 * 7);
            let _ = k.handle_packet(now, d, i % 3 == 0);
            k.handle_timeout(now);
            drain(&mut k, now);
            let mut out = [0u8; 64];
            k.recv(&mut out);
        }
    }

    #[test]
    fn random_valid_headers_never_panic(
        segs in prop::collection::vec(header_strategy(), 1..40),
        delay_window in any::<bool>(),
    ) {
        let t0 = crate::test_clock::origin();
        let mut c = cfg("manual", (0, 10, 1, 0), 200);
        // With --delaywnd the peer's timestamps also feed the send window (the way back's queue).
        c.delay_window = delay_window;
        let mut k = Kcp::new(CONV, &c, t0);
        k.send(&[1u8; 3000]);
        drain(&mut k, t0);
        for (i, s) in segs.iter().enumerate() {
            let now = at(t0, i as u64 * 13);
            let _ = k.handle_packet(now, s, false);
            k.handle_timeout(now);
            drain(&mut k, now);
            let mut out = [0u8; 100];
            k.recv(&mut out);
            prop_assert!(k.wait_snd() <= 32);
            prop_assert!(k.readable() <= 32 * 200);
        }
    }
}
