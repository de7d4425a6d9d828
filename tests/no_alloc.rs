//! The datagram pipeline allocates nothing per packet in steady state.
//!
//! A counting global allocator (wrapping `System`) counts the allocations a thread makes while its
//! thread-local flag is on. After a warm-up, 10,000 KCP datagrams go through FEC encode → seal
//! ([`codec::Outbound`]) → a lossy "link" (2 of every 13 datagrams dropped, always within the
//! 10/3 parity budget) → open → FEC decode ([`codec::Inbound`]), and the count must stay zero.
//! Every lost datagram must come back through FEC recovery, byte for byte.
//!
//! To find an allocation, run with `KCPTUN_ALLOC_BACKTRACE=1`: the first counted allocation
//! prints its backtrace to stderr.

use std::alloc::{GlobalAlloc, Layout, System};
use std::backtrace::Backtrace;
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kcptun::proto::codec::{self, Opened};
use kcptun::proto::crypt::Method;
use kcptun::proto::rng::Rng;

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

static BACKTRACE_FIRST: AtomicBool = AtomicBool::new(false);

fn note_alloc() {
    let _ = COUNTING.try_with(|on| {
        if !on.get() {
            return;
        }
        let first = COUNT.with(|c| {
            c.set(c.get() + 1);
            c.get() == 1
        });
        if first && BACKTRACE_FIRST.load(Ordering::Relaxed) {
            // Capturing allocates: count nothing while printing.
            on.set(false);
            eprintln!(
                "first allocation in the measured loop:\n{}",
                Backtrace::force_capture()
            );
            on.set(true);
        }
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_alloc();
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_alloc();
        System.alloc_zeroed(layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_alloc();
        System.realloc(ptr, layout, new_size)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` with this thread's allocations counted; returns the count.
fn count_allocs(f: impl FnOnce()) -> u64 {
    BACKTRACE_FIRST.store(
        std::env::var_os("KCPTUN_ALLOC_BACKTRACE").is_some(),
        Ordering::Relaxed,
    );
    COUNT.with(|c| c.set(0));
    COUNTING.with(|on| on.set(true));
    f();
    COUNTING.with(|on| on.set(false));
    COUNT.with(|c| c.get())
}

const DS: usize = 10;
const PS: usize = 3;
const GROUP: u64 = (DS + PS) as u64;
const WARMUP: u32 = 1_000;
const MEASURED: u32 = 10_000;

/// Length of KCP datagram `i`: varies over the whole range 24..=mtu.
fn kcp_len(i: u32, mtu: usize) -> usize {
    24 + (i as usize).wrapping_mul(7919) % (mtu - 24 + 1)
}

/// Byte `j` of KCP datagram `i` (bytes 0..4 carry `i` itself).
fn kcp_byte(i: u32, j: usize) -> u8 {
    if j < 4 {
        i.to_le_bytes()[j]
    } else {
        (i as usize)
            .wrapping_mul(31)
            .wrapping_add(j.wrapping_mul(17)) as u8
            ^ (j >> 8) as u8
    }
}

/// Whether `b` is exactly KCP datagram `id` (checked without building a copy).
fn is_datagram(b: &[u8], mtu: usize) -> Option<u32> {
    let id = u32::from_le_bytes(b.get(..4)?.try_into().ok()?);
    let ok =
        b.len() == kcp_len(id, mtu) && b.iter().enumerate().all(|(j, &x)| x == kcp_byte(id, j));
    ok.then_some(id)
}

/// The lossy link: in datagram group `g` (13 datagrams: 10 data + 3 parity, in send order) the
/// datagrams at positions `3g mod 13` and `3g + 5 mod 13` are lost.
fn dropped(pos: u64) -> bool {
    let g = pos / GROUP;
    let k = pos % GROUP;
    k == (3 * g) % GROUP || k == (3 * g + 5) % GROUP
}

struct Tally {
    lost: Vec<bool>,
    recovered: Vec<bool>,
    delivered: u64,
}

fn pipeline_run(method: Method) {
    let pass = [0x5cu8; 32];
    let t0 = Instant::now();
    let (mut tx, _) =
        codec::pipeline(method, &pass, Some((DS, PS)), Rng::from_seed([1; 32]), t0).unwrap();
    let (_, mut rx) =
        codec::pipeline(method, &pass, Some((DS, PS)), Rng::from_seed([2; 32]), t0).unwrap();
    let mtu = codec::kcp_mtu(1400, method, true);
    let head = tx.headroom();
    let total = (WARMUP + MEASURED) as usize;
    let mut tally = Tally {
        lost: vec![false; total],
        recovered: vec![false; total],
        delivered: 0,
    };
    let mut buf = vec![0u8; 2048];
    let mut pos: u64 = 0;

    let mut step = |i: u32, tally: &mut Tally, buf: &mut [u8], pos: &mut u64| {
        let now = t0 + Duration::from_millis(u64::from(i));
        let len = kcp_len(i, mtu);
        for (j, b) in buf[head..head + len].iter_mut().enumerate() {
            *b = kcp_byte(i, j);
        }
        let n = tx.seal(now, buf, len);
        let mut deliver = |dgram: &mut [u8],
                           data: Option<u32>,
                           tally: &mut Tally,
                           pos: &mut u64| {
            let drop = dropped(*pos);
            *pos += 1;
            if drop {
                if let Some(i) = data {
                    tally.lost[i as usize] = true;
                }
                return;
            }
            match rx.open(dgram) {
                Ok(Opened::Kcp(k)) => {
                    let id = is_datagram(k, mtu).expect("data datagram corrupted");
                    assert_eq!(Some(id), data);
                    tally.delivered += 1;
                }
                Ok(Opened::Nothing) => assert!(data.is_none(), "data datagram opened as parity"),
                Err(e) => panic!("{method}: open failed: {e}"),
            }
            while let Some(r) = rx.poll_recovered() {
                let id = is_datagram(r, mtu).expect("recovered datagram differs");
                assert!(tally.lost[id as usize], "recovered {id} which was not lost");
                assert!(!tally.recovered[id as usize], "recovered {id} twice");
                tally.recovered[id as usize] = true;
            }
        };
        deliver(&mut buf[..n], Some(i), tally, pos);
        let mut pbuf = [0u8; 2048];
        while let Some(n) = tx.poll_parity(&mut pbuf) {
            deliver(&mut pbuf[..n], None, tally, pos);
        }
    };

    for i in 0..WARMUP {
        step(i, &mut tally, &mut buf, &mut pos);
    }
    let allocs = count_allocs(|| {
        for i in WARMUP..WARMUP + MEASURED {
            step(i, &mut tally, &mut buf, &mut pos);
        }
    });
    assert_eq!(
        allocs, 0,
        "{method}: {allocs} allocations in {MEASURED} packets (rerun with KCPTUN_ALLOC_BACKTRACE=1)"
    );

    // 11,000 data datagrams = 1,100 whole groups: every loss is within a completed group.
    assert_eq!(pos, u64::from(WARMUP + MEASURED) / DS as u64 * GROUP);
    let lost = tally.lost.iter().filter(|&&l| l).count();
    assert!(
        lost > 1_000,
        "{method}: the link lost only {lost} data datagrams"
    );
    for (i, (&l, &r)) in tally.lost.iter().zip(&tally.recovered).enumerate() {
        assert_eq!(l, r, "{method}: datagram {i} lost={l} recovered={r}");
    }
    assert_eq!(tally.delivered + lost as u64, u64::from(WARMUP + MEASURED));
    let s = rx.stats();
    assert_eq!(s.fec_recovered, lost as u64, "{method}");
    assert_eq!(
        (s.in_csum_errors, s.in_errs, s.fec_errs),
        (0, 0, 0),
        "{method}"
    );
}

#[test]
fn pipeline_aes_allocates_nothing_and_recovers_every_loss() {
    pipeline_run(Method::Aes);
}

#[test]
fn pipeline_salsa20_allocates_nothing_and_recovers_every_loss() {
    pipeline_run(Method::Salsa20);
}

#[test]
fn pipeline_aes_128_gcm_allocates_nothing_and_recovers_every_loss() {
    pipeline_run(Method::Aes128Gcm);
}

#[test]
fn pipeline_other_methods_allocate_nothing() {
    for m in Method::ALL {
        if !matches!(m, Method::Aes | Method::Salsa20 | Method::Aes128Gcm) {
            pipeline_run(m);
        }
    }
}

#[test]
fn counting_allocator_counts() {
    // The instrument itself: an allocation inside the window is seen.
    let n = count_allocs(|| {
        let v = std::hint::black_box(vec![1u8; 100]);
        drop(v);
    });
    assert_eq!(n, 1);
}
