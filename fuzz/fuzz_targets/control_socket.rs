#![no_main]
//! See doorbelld::fuzzing::control_socket.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| doorbelld::fuzzing::control_socket(data));
