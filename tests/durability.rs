//! `kill -9` during a loop of creates and removes loses nothing acknowledged and leaves nothing
//! half-done.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use netloom::client::{Client, ClientError};
use netloom::store::Store;

use crate::common::{Daemon, tempdir};

/// What the workload saw acknowledged.
#[derive(Debug, Default)]
struct Acked {
    /// Created and not (acknowledged) removed since.
    live: BTreeSet<String>,
    /// Removal acknowledged.
    removed: BTreeSet<String>,
    /// A request was in flight when the daemon died: its outcome is unknown.
    in_doubt: BTreeSet<String>,
    /// How many creates and removes were acknowledged in all.
    acks: usize,
}

/// Creates networks and removes each one again after the next is created, as fast as the
/// daemon answers, until `stop` or the daemon dies. A refusal from a live daemon is a bug.
async fn workload(client: Client, round: usize, acked: Arc<Mutex<Acked>>, stop: Arc<AtomicBool>) {
    let dead = |e: &ClientError| !matches!(e, ClientError::Daemon { .. });
    let mut i = 0usize;
    while !stop.load(Ordering::Relaxed) && i < 10_000 {
        let name = format!("r{round}n{i}");
        acked.lock().unwrap().in_doubt.insert(name.clone());
        let body = serde_json::json!({ "Name": name, "Driver": "bridge" });
        let r: Result<serde_json::Value, _> = client.post("/networks/create", &body).await;
        match r {
            Ok(_) => {
                let mut a = acked.lock().unwrap();
                a.in_doubt.remove(&name);
                a.live.insert(name.clone());
                a.acks += 1;
            }
            Err(e) if dead(&e) => return,
            Err(e) => panic!("create {name} refused by a live daemon: {e}"),
        }
        if i > 0 {
            let victim = format!("r{round}n{}", i - 1);
            acked.lock().unwrap().in_doubt.insert(victim.clone());
            match client.delete(&format!("/networks/{victim}")).await {
                Ok(()) => {
                    let mut a = acked.lock().unwrap();
                    a.in_doubt.remove(&victim);
                    a.live.remove(&victim);
                    a.removed.insert(victim);
                    a.acks += 1;
                }
                Err(e) if dead(&e) => return,
                Err(e) => panic!("remove {victim} refused by a live daemon: {e}"),
            }
        }
        i += 1;
    }
}

fn names(client: &Client, rt: &tokio::runtime::Runtime) -> BTreeSet<String> {
    let list: Vec<serde_json::Value> = rt.block_on(client.get("/networks")).unwrap();
    list.iter()
        .map(|n| n["Name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn kill_dash_nine_loses_nothing_acknowledged() {
    let dir = tempdir();
    let mut d = Daemon::start(dir.path());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let client = Client::new(&d.socket);
    let acked = Arc::new(Mutex::new(Acked::default()));
    // Kill at varied moments: a few dozen ms into the loop up to a few hundred.
    let delays_ms = [40u64, 170, 90, 310, 25, 230, 130];
    for (round, delay) in delays_ms.iter().enumerate() {
        let stop = Arc::new(AtomicBool::new(false));
        let before = acked.lock().unwrap().acks;
        let task = rt.spawn(workload(client.clone(), round, acked.clone(), stop.clone()));
        // The delay counts from the round's first acknowledgement, so a slow (loaded) machine
        // still kills in the middle of the workload rather than before it got going.
        let started = std::time::Instant::now();
        while acked.lock().unwrap().acks == before && started.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_millis(*delay));
        d.kill9();
        stop.store(true, Ordering::Relaxed);
        rt.block_on(task).unwrap();

        // Straight after the crash, before any restart: the file is consistent.
        {
            let store =
                Store::open(&d.data_root.join("state.redb")).expect("store reopens after kill -9");
            let problems = store.check_consistency().unwrap();
            assert!(problems.is_empty(), "round {round}: {problems:#?}");
        }

        d.spawn();
        let have = names(&client, &rt);
        let a = acked.lock().unwrap();
        for n in ["bridge", "host", "none"] {
            assert!(have.contains(n), "round {round}: built-in {n} lost");
        }
        for n in &a.live {
            assert!(
                have.contains(n) || a.in_doubt.contains(n),
                "round {round}: acknowledged network {n} lost"
            );
        }
        for n in &a.removed {
            assert!(
                !have.contains(n) || a.in_doubt.contains(n),
                "round {round}: removed network {n} is back"
            );
        }
        for n in &have {
            let known = a.live.contains(n)
                || a.in_doubt.contains(n)
                || ["bridge", "host", "none"].contains(&n.as_str());
            assert!(known, "round {round}: network {n} appeared from nowhere");
        }
        drop(a);
        // Settle the in-doubt ones to what the daemon now says, for the next round.
        let mut a = acked.lock().unwrap();
        let doubts: Vec<String> = a.in_doubt.iter().cloned().collect();
        for n in doubts {
            if have.contains(&n) {
                a.live.insert(n.clone());
                a.removed.remove(&n);
            } else {
                a.live.remove(&n);
            }
            a.in_doubt.remove(&n);
        }
        eprintln!(
            "round {round}: {} acknowledged so far, {} live",
            a.acks,
            a.live.len()
        );
    }
    let acks = acked.lock().unwrap().acks;
    assert!(
        acks >= 3 * delays_ms.len(),
        "the workload barely ran ({acks} acknowledged operations)"
    );
    // A clean stop, then the state checks out once more.
    d.stop();
    let store = Store::open(&d.data_root.join("state.redb")).unwrap();
    assert!(store.check_consistency().unwrap().is_empty());
}

/// A full disk makes a commit fail; once there is room again the daemon goes on without a
/// restart (redb refuses every transaction after an I/O error until the database is opened
/// again, which the store does), and everything acknowledged before is still there.
#[test]
fn a_full_disk_fails_the_request_and_the_daemon_recovers_when_space_returns() {
    let dir = tempdir();
    let d = Daemon::start_on_tmpfs(dir.path(), "4m");
    d.netloom(&["network", "create", "before"]).ok();
    // Fill the daemon's data root from inside its mount namespace.
    let pid = d.pid().to_string();
    let filler = d.data_root.join("filler");
    let fill = std::process::Command::new("nsenter")
        .args(["-m", "-t", &pid, "--", "dd", "if=/dev/zero", "bs=64k"])
        .arg(format!("of={}", filler.display()))
        .output()
        .unwrap();
    assert!(!fill.status.success(), "dd stops at a full disk: {fill:?}");
    // Requests fail with an error, and the daemon stays up.
    let mut failed = None;
    for i in 0..50 {
        let r = d.netloom(&["network", "create", &format!("full{i}")]);
        if r.code != 0 {
            failed = Some(r);
            break;
        }
    }
    let failed = failed.expect("a create fails once the disk is full");
    assert!(
        failed.stderr.contains("Error response from daemon"),
        "{failed:?}"
    );
    let rm = std::process::Command::new("nsenter")
        .args(["-m", "-t", &pid, "--", "rm", "-f"])
        .arg(&filler)
        .status()
        .unwrap();
    assert!(rm.success());
    // Room again: the next requests succeed without a restart.
    d.netloom(&["network", "create", "after"]).ok();
    let ls = d.netloom(&["network", "ls", "--format", "{{.Name}}"]).ok();
    let names: Vec<&str> = ls.stdout.lines().collect();
    assert!(
        names.contains(&"before") && names.contains(&"after"),
        "{names:?}"
    );
    d.netloom(&["network", "rm", "after"]).ok();
}
