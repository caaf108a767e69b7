#![no_main]
//! See doorbell_hub::fuzzing::media_uploads.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| doorbell_hub::fuzzing::media_uploads(data));
