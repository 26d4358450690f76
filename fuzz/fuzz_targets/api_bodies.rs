//! See `netloom::api::fuzzing::bodies`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| netloom::api::fuzzing::bodies(data));
