//! See `netloom_dns::fuzzing::query`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| netloom_dns::fuzzing::query(data));
