#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| estuary_muxer::fuzzing::ts_check(data));
