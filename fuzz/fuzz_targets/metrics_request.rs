//! The `--metrics` HTTP request parser on hostile bytes, fed as the loop feeds it: the head grows
//! by input-chosen pieces, capped at `MAX_REQUEST`, until the parser decides. Checks that a
//! decision is final (more bytes never turn an answer back into `Incomplete`) and that 431 comes
//! only at the cap.
#![no_main]

mod common;

use common::Cursor;
use kcptun::io::metrics::{error_response, parse_request, Request, MAX_REQUEST};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut c = Cursor::new(data);
    let mut head = Vec::new();
    while !c.is_empty() {
        let room = MAX_REQUEST - head.len();
        let piece = c.chunk(2048);
        head.extend_from_slice(&piece[..piece.len().min(room)]);
        match parse_request(&head) {
            Request::Incomplete => assert!(head.len() < MAX_REQUEST),
            r => {
                if r == Request::Error(431) {
                    assert_eq!(head.len(), MAX_REQUEST);
                }
                if let Request::Error(s) = r {
                    assert!(!error_response(s).is_empty());
                }
                // the loop answers once; the same bytes must give the same answer
                assert_eq!(parse_request(&head), r);
                return;
            }
        }
    }
});
