//! `netloom rename` (and the stock `docker rename` against netloom): the embedded DNS answers
//! the new name at once and forgets the old one; Docker's refusals, byte for byte.

use crate::common::{Daemon, tempdir};

fn dig_short(d: &Daemon, from: &str, name: &str) -> String {
    d.netloom(&["exec", from, "dig", "+time=2", "+tries=3", "+short", name])
        .stdout
        .trim()
        .to_owned()
}

#[test]
fn rename_moves_the_dns_name_at_once() {
    let dir = tempdir();
    let d = Daemon::start(dir.path());
    d.netloom(&["network", "create", "rn"]).ok();
    for name in ["r1", "r2"] {
        d.netloom(&[
            "run",
            "-d",
            "--network",
            "rn",
            "--name",
            name,
            "--",
            "sleep",
            "300",
        ])
        .ok();
    }
    let ip = d
        .netloom(&[
            "inspect",
            "-f",
            "{{.NetworkSettings.Networks.rn.IPAddress}}",
            "r1",
        ])
        .ok()
        .stdout
        .trim()
        .to_owned();
    assert_eq!(dig_short(&d, "r2", "r1"), ip);

    let out = d.netloom(&["rename", "r1", "renamed"]).ok();
    assert_eq!(out.stdout, "");
    assert_eq!(dig_short(&d, "r2", "renamed"), ip);
    assert_eq!(dig_short(&d, "r2", "renamed.rn"), ip);
    assert_eq!(dig_short(&d, "r2", "r1"), "", "the old name is gone");
    let names = d.netloom(&["ps", "--format", "{{.Names}}"]).ok().stdout;
    assert!(names.lines().any(|l| l == "renamed"), "{names}");
    // The stock docker CLI renames through the same API.
    d.docker(&["rename", "renamed", "again"]).ok();
    assert_eq!(dig_short(&d, "r2", "again"), ip);
}

#[test]
fn rename_refusals_match_docker() {
    let dir = tempdir();
    let d = Daemon::start(dir.path());
    for name in ["a1", "a2"] {
        d.netloom(&["create", "--name", name, "--", "true"]).ok();
    }
    let id = d
        .netloom(&["inspect", "-f", "{{.Id}}", "a2"])
        .ok()
        .stdout
        .trim()
        .to_owned();
    let cases: [(&[&str], String); 4] = [
        (
            &["a1", "a2"],
            format!(
                "Error response from daemon: Error when allocating new name: Conflict. The container name \"/a2\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name.\nError: failed to rename container named a1\n"
            ),
        ),
        (
            &["a1", "a1"],
            "Error response from daemon: Renaming a container with the same name as its current name\nError: failed to rename container named a1\n".into(),
        ),
        (
            &["nosuch", "x"],
            "Error response from daemon: No such container: nosuch\nError: failed to rename container named nosuch\n".into(),
        ),
        (
            &["a1", " "],
            "Error: Neither old nor new names may be empty\n".into(),
        ),
    ];
    for (args, want) in cases {
        let mut n = vec!["rename"];
        n.extend_from_slice(args);
        let ours = d.netloom(&n);
        let theirs = d.docker(&n);
        assert_eq!(ours.code, 1, "{args:?}: {}", ours.stderr);
        assert_eq!(theirs.code, 1, "{args:?}: {}", theirs.stderr);
        assert_eq!(theirs.stderr, want, "docker, {args:?}");
        assert_eq!(ours.stderr, want, "netloom, {args:?}");
    }
    // Nothing changed.
    let names = d
        .netloom(&["ps", "-a", "--format", "{{.Names}}"])
        .ok()
        .stdout;
    let mut names: Vec<&str> = names.lines().collect();
    names.sort();
    assert_eq!(names, ["a1", "a2"]);
}
