#![no_main]
//! See doorbell_hub::fuzzing::wire_json.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| doorbell_hub::fuzzing::wire_json(data));
