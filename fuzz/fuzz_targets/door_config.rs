#![no_main]
//! See doorbelld::fuzzing::door_config.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| doorbelld::fuzzing::door_config(data));
