//! Rootless: the daemon run by an unprivileged user inside a user and network namespace of its
//! own (what a rootless container runtime does), with a container whose published port a
//! client on that namespace's loopback reaches through the splice fast path.
//!
//! The test runs as root only to set the stage without touching the machine: in a private mount
//! namespace it puts a `/dev/net/tun` node that everyone may open on a tmpfs (this machine's
//! own node is root-only), copies the netloom binary where the user can run it, then becomes
//! `nobody` and `unshare -r -n`. Every namespace is created below that process.

use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;

use crate::common::{netloom_bin, tempdir};

/// What the unprivileged user runs: the daemon, `run -d -p`, a loopback client, `inspect`.
const INNER: &str = r#"set -u
D=$1
NL=$D/netloom
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=$D
ip link set lo up
"$NL" daemon -H "unix://$D/s" --data-root "$D/data" -l warn >"$D/daemon.log" 2>&1 &
DAEMON=$!
trap 'kill $DAEMON 2>/dev/null; wait $DAEMON 2>/dev/null' EXIT
nl() { NETLOOM_HOST="unix://$D/s" timeout 20 "$NL" "$@"; }
for i in $(seq 100); do nl network ls >/dev/null 2>&1 && break; sleep 0.1; done
echo "uid $(id -u)"
nl run -d --name web -p 8080:80 -- timeout 60 python3 -c "
import socket
l=socket.socket();l.bind(('0.0.0.0',80));l.listen(8)
while True:
  c,a=l.accept();c.sendall(('peer '+a[0]+'\n').encode());c.close()" >/dev/null || { echo "run failed"; cat "$D/daemon.log"; exit 1; }
echo "container $(nl inspect -f '{{.NetworkSettings.IPAddress}}' web)"
python3 -c "
import socket,time
err=None
for i in range(50):
  try:
    s=socket.create_connection(('127.0.0.1',8080),timeout=2);b=s.recv(100).decode().strip()
    if b: print(b);break
  except OSError as e: err=e
  time.sleep(0.1)
else: print('client failed', err)"
nl rm -f web >/dev/null
"#;

#[test]
fn an_unprivileged_daemon_runs_a_container_and_splices_its_published_port() {
    let dir = tempdir();
    let d = dir.path();
    std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o777)).unwrap();
    let bin = d.join("netloom");
    std::fs::copy(netloom_bin(), &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(d.join("inner.sh"), INNER).unwrap();
    // As root, in a private mount namespace: an openable TUN node; then nobody, in its own
    // user and network namespace.
    let stage = format!(
        "set -e\nmount --make-rprivate /\nmount -t tmpfs -o mode=755 netloom-test /dev/net\n\
         mknod -m 666 /dev/net/tun c 10 200\n\
         exec setpriv --reuid=65534 --regid=65534 --clear-groups unshare -r -n bash {d}/inner.sh {d}\n",
        d = d.display()
    );
    let out = Command::new("timeout")
        .args([
            "-s", "KILL", "120", "unshare", "-m", "--", "bash", "-c", &stage,
        ])
        .output()
        .expect("run unshare");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let log = std::fs::read_to_string(d.join("daemon.log")).unwrap_or_default();
    let report = format!("stdout:\n{stdout}\nstderr:\n{stderr}\ndaemon log:\n{log}");
    assert!(out.status.success(), "{report}");
    let line = |prefix: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} line: {report}"))
            .trim()
            .to_owned()
    };
    assert_eq!(line("uid "), "0", "root only inside its own user namespace");
    let container = line("container ");
    assert!(container.starts_with("172.17."), "{report}");
    // The loopback client took the splice path: the container saw its own address.
    assert_eq!(line("peer "), container, "{report}");
}
