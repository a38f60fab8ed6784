#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| estuary::fuzzing::flv_request_head(data));
