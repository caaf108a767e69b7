#![no_main]
//! See doorbelld::fuzzing::sdp_answer.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| doorbelld::fuzzing::sdp_answer(data));
