//! The crypto layer against the Go vectors (`crypt.json`, `kdf.json`, `pipeline.json`), plus
//! round-trip and tamper properties for every method.

mod common;

use kcptun::proto::crypt::{derive_key, xor_pad, Crypt, Method, OpenError, CFB_IV};
use kcptun::proto::rng::Rng;
use proptest::prelude::*;

fn default_pass() -> [u8; 32] {
    derive_key(b"it's a secrect")
}

fn num(v: &serde_json::Value) -> usize {
    match v {
        serde_json::Value::String(s) => s.parse().expect("number string"),
        other => other.as_u64().expect("number") as usize,
    }
}

#[test]
fn kdf_cases_and_xor_pad() {
    let v = common::load("kdf.json");
    let cases = v["cases"].as_array().unwrap();
    assert!(!cases.is_empty());
    for c in cases {
        let key = common::unhex(&c["key_hex"]);
        assert_eq!(key, c["key_utf8"].as_str().unwrap().as_bytes());
        assert_eq!(
            derive_key(&key).to_vec(),
            common::unhex(&c["pass_hex"]),
            "{c}"
        );
    }
    let x = &v["xor_pad"];
    let pass: [u8; 32] = common::unhex(&x["pass_hex"]).try_into().unwrap();
    assert_eq!(pass, derive_key(x["key_utf8"].as_str().unwrap().as_bytes()));
    let pad = common::unhex(&x["pad_hex"]);
    assert_eq!(pad.len(), 1500);
    assert_eq!(xor_pad(&pass).to_vec(), pad);
}

#[test]
fn crypt_json_every_cipher() {
    let v = common::load("crypt.json");
    let pass: [u8; 32] = common::unhex(&v["pass_hex"]).try_into().unwrap();
    assert_eq!(pass, default_pass());
    assert_eq!(common::unhex(&v["cfb_iv_hex"]), CFB_IV);
    let nonce = common::unhex(&v["nonce_hex"]);
    let mut seen = Vec::new();
    for c in v["ciphers"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let m: Method = name.parse().unwrap();
        seen.push(m);
        let mut crypt = Crypt::new(m, &pass);
        let cases = c["cases"].as_array().unwrap();
        match m {
            Method::Null => {
                assert!(cases.is_empty());
                let mut d = *b"plain kcp bytes";
                assert_eq!(crypt.seal_with_nonce(&[], &mut d, 15), 15);
                assert_eq!(&d, b"plain kcp bytes");
                assert_eq!(crypt.open(&mut d).unwrap(), b"plain kcp bytes");
                continue;
            }
            Method::Aes128Gcm => {
                assert_eq!(cases.len(), 7);
                for k in cases {
                    let n = common::unhex(&k["nonce_hex"]);
                    let payload = common::unhex(&k["payload_hex"]);
                    let want = common::unhex(&k["datagram_hex"]);
                    assert_eq!(num(&k["payload_len"]), payload.len());
                    let mut buf = vec![0u8; 12 + payload.len() + 16];
                    buf[12..12 + payload.len()].copy_from_slice(&payload);
                    let len = crypt.seal_with_nonce(&n, &mut buf, payload.len());
                    assert_eq!(len, num(&k["datagram_len"]));
                    assert_eq!(hex::encode(&buf[..len]), hex::encode(&want), "gcm seal");
                    let mut rx = want.clone();
                    assert_eq!(crypt.open(&mut rx).unwrap(), &payload[..], "gcm open");
                }
                continue;
            }
            _ => {}
        }
        assert_eq!(cases.len(), 7, "{name}");
        for k in cases {
            let plain = common::unhex(&k["plaintext_hex"]);
            let want = common::unhex(&k["ciphertext_hex"]);
            let plen = num(&k["payload_len"]);
            assert_eq!(plain.len(), 20 + plen);
            assert_eq!(&plain[..16], &nonce[..]);
            // Payload byte i = (i*31+7) & 0xff, and the vector's CRC is CRC32-IEEE of it.
            for (i, b) in plain[20..].iter().enumerate() {
                assert_eq!(*b, ((i * 31 + 7) & 0xff) as u8);
            }
            let crc = u32::from_le_bytes(plain[16..20].try_into().unwrap());
            assert_eq!(crc32fast::hash(&plain[20..]), crc);

            // Seal: header room left as garbage, the payload, the fixed nonce.
            let mut buf = vec![0xeeu8; plain.len()];
            buf[20..].copy_from_slice(&plain[20..]);
            let len = crypt.seal_with_nonce(&nonce, &mut buf, plen);
            assert_eq!(len, plain.len());
            assert_eq!(
                hex::encode(&buf),
                hex::encode(&want),
                "{name} seal len {plen}"
            );

            // Open: payload back, and the whole buffer decrypted (nonce, CRC) to plaintext_hex.
            let mut rx = want.clone();
            let got = crypt.open(&mut rx).unwrap().to_vec();
            assert_eq!(got, &plain[20..], "{name} open len {plen}");
            assert_eq!(rx, plain, "{name} decrypted buffer len {plen}");
        }
    }
    let mut all = Method::ALL.to_vec();
    all.sort_by_key(|m| m.name());
    seen.sort_by_key(|m| m.name());
    assert_eq!(seen, all, "crypt.json covers every method");
}

#[test]
fn pipeline_json_aes() {
    let v = common::load("pipeline.json");
    let after_fec = common::unhex(&v["after_fec_hex"]);
    let nonce = common::unhex(&v["nonce_hex"]);
    let before = common::unhex(&v["before_encrypt_hex"]);
    let want = common::unhex(&v["datagram_hex"]);
    let mut c = Crypt::new("aes".parse().unwrap(), &default_pass());
    let mut buf = vec![0u8; 20 + after_fec.len()];
    buf[20..].copy_from_slice(&after_fec);
    let n = c.seal_with_nonce(&nonce, &mut buf, after_fec.len());
    assert_eq!(hex::encode(&buf[..n]), hex::encode(&want));
    let mut rx = want.clone();
    assert_eq!(c.open(&mut rx).unwrap(), &after_fec[..]);
    assert_eq!(rx, before);
}

#[test]
fn unknown_name_lists_every_method() {
    let err = "chacha20".parse::<Method>().unwrap_err();
    let msg = err.to_string();
    for m in Method::ALL {
        assert!(msg.contains(m.name()), "{msg}");
    }
    assert!(msg.contains("chacha20"));
}

#[test]
fn wrong_key_fails_integrity() {
    let mut rng = Rng::from_seed([5; 32]);
    let a = default_pass();
    let b = derive_key(b"another key");
    for m in Method::ALL {
        if matches!(m, Method::None | Method::Null) {
            continue;
        }
        let mut tx = Crypt::new(m, &a);
        let mut rx = Crypt::new(m, &b);
        let mut buf = vec![0x42u8; 20 + 300 + 16];
        let n = tx.seal(&mut rng, &mut buf, 300);
        assert_eq!(rx.open(&mut buf[..n]), Err(OpenError::Integrity), "{m}");
    }
}

/// Whether changing ciphertext byte `i < 16` (the nonce) can be noticed by the receiver. The CRC
/// covers bytes 20.. only, so it depends on what else the change garbles:
/// 16-byte CFB: block 0 feeds the keystream of bytes 16..32 (CRC) → always caught;
/// 8-byte CFB: bytes 0..8 feed the keystream of 8..16 (nonce again) → missed, 8..16 → caught;
/// salsa20: bytes 0..8 are the stream nonce → caught, 8..16 only decrypt to another nonce → missed;
/// xor and none: the nonce is not covered → missed; aes-128-gcm: the nonce is authenticated.
fn nonce_flip_detected(m: Method, i: usize) -> bool {
    match m {
        Method::Aes | Method::Aes128 | Method::Aes192 | Method::Twofish | Method::Sm4 => true,
        Method::Aes128Gcm => true,
        Method::Blowfish | Method::Cast5 | Method::TripleDes | Method::Tea | Method::Xtea => i >= 8,
        Method::Salsa20 => i < 8,
        Method::Xor | Method::None | Method::Null => false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn seal_open_round_trip_and_tamper(
        seed in any::<[u8; 32]>(),
        len in 0usize..1400,
        flip_at in any::<prop::sample::Index>(),
        flip_bits in 1u8..=255,
    ) {
        let pass = derive_key(&seed);
        let mut rng = Rng::from_seed(seed);
        let mut payload = vec![0u8; len];
        rng.fill(&mut payload);
        for m in Method::ALL {
            let mut tx = Crypt::new(m, &pass);
            let mut rx = Crypt::new(m, &pass);
            let hl = m.header_len();
            let mut buf = vec![0u8; hl + len + m.trailer_len()];
            buf[hl..hl + len].copy_from_slice(&payload);
            let n = tx.seal(&mut rng, &mut buf, len);
            prop_assert_eq!(n, buf.len());
            let sealed = buf.clone();
            let got = rx.open(&mut buf).unwrap();
            prop_assert_eq!(&got[..], &payload[..], "{}", m);

            // Any changed byte from offset 16 on (CRC, payload, GCM tag) is caught, except with
            // null, which has no integrity check. A changed nonce byte is caught only where it
            // alters CRC-covered plaintext (see `nonce_flip_detected`).
            let mut bad = sealed;
            if m != Method::Null && !bad.is_empty() {
                let i = flip_at.index(bad.len());
                bad[i] ^= flip_bits;
                let r = rx.open(&mut bad).map(|p| p.len());
                if i >= 16 || nonce_flip_detected(m, i) {
                    prop_assert_eq!(r, Err(OpenError::Integrity), "{} byte {}", m, i);
                } else {
                    prop_assert_eq!(r, Ok(len), "{} byte {}", m, i);
                }
            }
        }
    }
}
