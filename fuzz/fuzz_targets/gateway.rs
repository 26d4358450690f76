//! See `netloom_switch::fuzzing::gateway`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| netloom_switch::fuzzing::gateway(data));
