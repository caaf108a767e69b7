#![no_main]
//! See doorbell_hub::fuzzing::http_bodies.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| doorbell_hub::fuzzing::http_bodies(data));
