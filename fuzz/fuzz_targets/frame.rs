//! See `netloom_switch::fuzzing::frame`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| netloom_switch::fuzzing::frame(data));
