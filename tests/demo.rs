//! `netloom demo`: the tutorial replayed against its own private daemon exits 0 and shows
//! what it promises.

use std::process::Command;

use crate::common::netloom_bin;

#[test]
fn demo_replays_the_tutorial_and_cleans_up() {
    let before: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("netloom-demo."))
        .map(|e| e.file_name())
        .collect();
    let out = Command::new(netloom_bin()).arg("demo").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    for expected in [
        "$ netloom network create mhk_network",
        "from tomcat82.mhk_network",
        "$ netloom exec u1 ping -c 1 -W 1 u2\nping: u2: ",
        "80/tcp -> 0.0.0.0:8080",
        "hello from the web container; you came from 172.",
        "\"Name\": \"mhk_network\"",
        "# Done",
    ] {
        assert!(
            stdout.contains(expected) || stderr.contains(expected),
            "missing {expected:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"
        );
    }
    let after: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("netloom-demo."))
        .map(|e| e.file_name())
        .filter(|n| !before.contains(n))
        .collect();
    assert!(after.is_empty(), "left behind: {after:?}");
}
