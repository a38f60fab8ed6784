#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| estuary_protocol::fuzzing::amf0_command(data));
