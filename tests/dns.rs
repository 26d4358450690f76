//! Container names on user networks, served by the embedded DNS at 127.0.0.11 inside each
//! container (queried with the real `dig` and `ping`), and not on the default bridge.

use crate::common::{Daemon, tempdir};

fn dig(d: &Daemon, from: &str, args: &[&str]) -> String {
    let mut a = vec!["exec", from, "dig", "+time=2", "+tries=1"];
    a.extend_from_slice(args);
    d.netloom(&a).stdout
}

fn short(d: &Daemon, from: &str, name: &str) -> String {
    dig(d, from, &["+short", name]).trim().to_owned()
}

#[test]
fn names_resolve_on_user_networks_only() {
    let dir = tempdir();
    let mut d = Daemon::start(dir.path());
    d.netloom(&["network", "create", "mhk_network"]).ok();
    for (name, extra) in [
        ("tomcat81", vec![]),
        (
            "tomcat82",
            vec!["--network-alias", "web", "--hostname", "cat82"],
        ),
    ] {
        let mut a = vec!["run", "-d", "--network", "mhk_network", "--name", name];
        a.extend(extra);
        a.extend(["--", "sleep", "300"]);
        d.netloom(&a).ok();
    }
    // The tutorial: ping by name on a user network.
    let ping = d
        .netloom(&["exec", "tomcat81", "ping", "-c", "1", "tomcat82"])
        .ok()
        .stdout;
    assert!(
        ping.contains("from tomcat82.mhk_network (172.18.0.3)"),
        "{ping}"
    );
    let resolv = d
        .netloom(&["exec", "tomcat81", "cat", "/etc/resolv.conf"])
        .ok()
        .stdout;
    assert!(
        resolv.contains("nameserver 127.0.0.11\noptions ndots:0\n"),
        "{resolv}"
    );

    let id = d
        .netloom(&["inspect", "-f", "{{.Id}}", "tomcat82"])
        .ok()
        .stdout;
    for name in [
        "tomcat82",
        "TomCat82",
        "tomcat82.mhk_network",
        "web",
        "cat82",
        &id[..12],
    ] {
        assert_eq!(short(&d, "tomcat81", name), "172.18.0.3", "{name}");
    }
    let a = dig(&d, "tomcat81", &["tomcat82"]);
    assert!(a.contains("\t600\tIN\tA\t172.18.0.3"), "TTL 600: {a}");
    let aaaa = dig(&d, "tomcat81", &["tomcat82", "AAAA"]);
    assert!(
        aaaa.contains("status: NOERROR") && aaaa.contains("ANSWER: 0"),
        "{aaaa}"
    );
    assert_eq!(
        dig(&d, "tomcat81", &["+short", "-x", "172.18.0.3"]).trim(),
        "tomcat82.mhk_network."
    );

    // A stopped container is not found any more (the name goes upstream, which fails here).
    d.netloom(&["stop", "-t", "1", "tomcat82"]).ok();
    assert_eq!(short(&d, "tomcat81", "tomcat82"), "");
    d.netloom(&["start", "tomcat82"]).ok();
    assert_eq!(short(&d, "tomcat81", "tomcat82"), "172.18.0.3");

    // Names keep resolving after a daemon restart.
    d.kill9();
    d.spawn();
    assert_eq!(short(&d, "tomcat81", "tomcat82"), "172.18.0.3");

    // The default bridge has no name service: ping by name fails, by address works.
    d.netloom(&["run", "-d", "--name", "b1", "--", "sleep", "300"])
        .ok();
    d.netloom(&["run", "-d", "--name", "b2", "--", "sleep", "300"])
        .ok();
    let r = d.netloom(&["exec", "b1", "ping", "-c", "1", "-W", "1", "b2"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert_eq!(
        d.netloom(&["exec", "b1", "ping", "-c", "1", "-W", "2", "172.17.0.3"])
            .code,
        0
    );
    d.netloom(&["rm", "-f", "tomcat81", "tomcat82", "b1", "b2"])
        .ok();
}

#[test]
fn host_dns_answers_name_dot_network() {
    let dir = tempdir();
    let d = Daemon::start_with(dir.path(), &["--host-dns", "127.0.0.153:53"]);
    d.netloom(&["network", "create", "mhk_network"]).ok();
    d.netloom(&[
        "run",
        "-d",
        "--network",
        "mhk_network",
        "--name",
        "web1",
        "--",
        "sleep",
        "300",
    ])
    .ok();
    // The listener lives in the daemon's namespace (the host's, in production).
    let dig = |name: &str| {
        let out = std::process::Command::new("nsenter")
            .arg(format!("--net=/proc/{}/ns/net", d.pid()))
            .args([
                "--",
                "dig",
                "+short",
                "+time=2",
                "+tries=1",
                "@127.0.0.153",
                name,
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    assert_eq!(dig("web1.mhk_network"), "172.18.0.2");
    // A network created later is served at once.
    d.netloom(&["network", "create", "later"]).ok();
    d.netloom(&["network", "connect", "later", "web1"]).ok();
    assert_eq!(dig("web1.later"), "172.19.0.2");
    d.netloom(&["rm", "-f", "web1"]).ok();
    assert_eq!(dig("web1.mhk_network"), "");
}
