//! Container names and ids the Docker way: the random `adjective_surname`
//! names the daemon gives unnamed containers (moby `pkg/namesgenerator`,
//! `daemon/names.go`), name validation with Docker's error texts, and the
//! 12-character short ids (moby `pkg/stringid`).

use rand::{Rng, RngExt as _};

/// Adjectives for generated names (netloom's own list; Docker's idea).
const LEFT: &[&str] = &[
    "admiring",
    "adoring",
    "agitated",
    "amazing",
    "awesome",
    "blissful",
    "bold",
    "boring",
    "brave",
    "busy",
    "charming",
    "clever",
    "compassionate",
    "confident",
    "cool",
    "dazzling",
    "determined",
    "eager",
    "ecstatic",
    "elegant",
    "epic",
    "festive",
    "focused",
    "friendly",
    "gallant",
    "gifted",
    "happy",
    "hopeful",
    "inspiring",
    "jolly",
    "keen",
    "kind",
    "laughing",
    "loving",
    "lucid",
    "modest",
    "nifty",
    "nostalgic",
    "optimistic",
    "peaceful",
    "quirky",
    "relaxed",
    "serene",
    "sharp",
    "stoic",
    "tender",
    "upbeat",
    "vibrant",
    "wizardly",
    "zealous",
];

/// Surnames of notable scientists and engineers.
const RIGHT: &[&str] = &[
    "agnesi",
    "babbage",
    "bardeen",
    "bohr",
    "cerf",
    "curie",
    "darwin",
    "dijkstra",
    "einstein",
    "euler",
    "faraday",
    "fermat",
    "feynman",
    "galileo",
    "gauss",
    "goldberg",
    "goodall",
    "hamilton",
    "hawking",
    "hopper",
    "hypatia",
    "johnson",
    "kare",
    "knuth",
    "lamarr",
    "lamport",
    "lovelace",
    "maxwell",
    "mccarthy",
    "meitner",
    "mendel",
    "newton",
    "noether",
    "pascal",
    "perlman",
    "ramanujan",
    "ritchie",
    "shannon",
    "sinoussi",
    "tesla",
    "thompson",
    "torvalds",
    "turing",
    "villani",
    "wilson",
    "wing",
    "wozniak",
    "yalow",
    "yonath",
    "zhukovsky",
];

/// How many random names the daemon tries before falling back to the short
/// id (moby `generateAndReserveName`).
const NAME_ATTEMPTS: u32 = 6;

/// Length of a short id.
pub const SHORT_ID_LEN: usize = 12;

/// The characters Docker allows in container names, as its error shows them.
pub const NAME_CHARS: &str = "[a-zA-Z0-9][a-zA-Z0-9_.-]";

/// Errors of this module. The `Display` texts are Docker's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name does not match `^[a-zA-Z0-9][a-zA-Z0-9_.-]+$` (after one
    /// leading `/` is removed): at least two characters. HTTP 400. The
    /// payload is the name exactly as given.
    #[error("Invalid container name ({0}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    Invalid(String),
    /// The name is taken. HTTP 409.
    #[error(
        "Conflict. The container name {} is already in use by container {}. You have to remove (or rename) that container to be able to reuse that name.",
        crate::format::template::gofmt::quote(&format!("/{name}")),
        crate::format::template::gofmt::quote(id)
    )]
    Conflict {
        /// The name, without the leading `/` (the message adds it).
        name: String,
        /// The full id of the container holding the name.
        id: String,
    },
}

/// moby `namesgenerator.GetRandomName`: `adjective_surname`, never
/// `boring_wozniak` ("Steve Wozniak is not boring"); when `retry > 0` a
/// random digit `0`-`9` is appended (`focused_turing3`).
pub fn random_name_with<R: Rng + ?Sized>(rng: &mut R, retry: u32) -> String {
    let mut name = loop {
        let left = LEFT[rng.random_range(0..LEFT.len())];
        let right = RIGHT[rng.random_range(0..RIGHT.len())];
        if !(left == "boring" && right == "wozniak") {
            break format!("{left}_{right}");
        }
    };
    if retry > 0 {
        name.push(char::from(b'0' + rng.random_range(0..10u8)));
    }
    name
}

/// The name the daemon gives a container created without `--name` (moby
/// `generateAndReserveName`): up to six random names (the 2nd to 6th with a
/// digit appended), skipping those `taken` reports as in use; if all six
/// are taken, the container's short id ([`truncate_id`] of `id`). Names
/// are returned without the leading `/`.
pub fn generate_name(id: &str, taken: impl Fn(&str) -> bool) -> String {
    generate_name_with(&mut rand::rng(), id, taken)
}

/// [`generate_name`] with a given random number generator.
pub fn generate_name_with<R: Rng + ?Sized>(
    rng: &mut R,
    id: &str,
    taken: impl Fn(&str) -> bool,
) -> String {
    for retry in 0..NAME_ATTEMPTS {
        let name = random_name_with(rng, retry);
        if !taken(&name) {
            return name;
        }
    }
    truncate_id(id).to_string()
}

/// Validates a container name as the daemon does (moby `reserveName`): one
/// leading `/` is allowed and removed; the rest must match
/// `^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`, so single-character names are
/// rejected. Returns the name without the `/`.
pub fn validate_container_name(name: &str) -> Result<&str, NameError> {
    let bare = name.strip_prefix('/').unwrap_or(name);
    let bytes = bare.as_bytes();
    let valid = bytes.len() >= 2
        && bytes[0].is_ascii_alphanumeric()
        && bytes[1..]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if valid {
        Ok(bare)
    } else {
        Err(NameError::Invalid(name.to_string()))
    }
}

/// moby `stringid.TruncateID`: drops an `algo:` prefix (up to the first
/// `:`) and keeps the first 12 characters.
pub fn truncate_id(id: &str) -> &str {
    let id = match id.find(':') {
        Some(i) => &id[i + 1..],
        None => id,
    };
    match id.char_indices().nth(SHORT_ID_LEN) {
        Some((end, _)) => &id[..end],
        None => id,
    }
}

/// A random 64-character lowercase hex id whose short form is not all
/// digits (moby `stringid.GenerateRandomID`; such a short id is used as
/// the default hostname).
pub fn random_id_with<R: Rng + ?Sized>(rng: &mut R) -> String {
    loop {
        let bytes: [u8; 32] = rng.random();
        let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        if !id[..SHORT_ID_LEN].bytes().all(|b| b.is_ascii_digit()) {
            return id;
        }
    }
}

/// Whether `s` is a full id: 64 lowercase hex characters.
pub fn is_full_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::HashSet;

    use rand::SeedableRng as _;
    use rand::rngs::StdRng;
    use rstest::rstest;

    use super::*;

    #[test]
    fn word_lists_are_valid() {
        for w in LEFT.iter().chain(RIGHT) {
            assert!(w.bytes().all(|b| b.is_ascii_lowercase()), "{w}");
        }
        let left: HashSet<_> = LEFT.iter().collect();
        let right: HashSet<_> = RIGHT.iter().collect();
        assert_eq!(left.len(), LEFT.len(), "duplicate adjective");
        assert_eq!(right.len(), RIGHT.len(), "duplicate surname");
        assert!(LEFT.len() >= 50 && RIGHT.len() >= 50);
        // The exclusion below only matters if both words exist.
        assert!(LEFT.contains(&"boring") && RIGHT.contains(&"wozniak"));
    }

    #[test]
    fn random_names_have_docker_shape() {
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..20_000 {
            let name = random_name_with(&mut rng, 0);
            assert_ne!(name, "boring_wozniak");
            let (l, r) = name.split_once('_').expect("adjective_surname");
            assert!(LEFT.contains(&l) && RIGHT.contains(&r), "{name}");
            assert!(validate_container_name(&name).is_ok());
        }
        let name = random_name_with(&mut rng, 1);
        let digit = name.chars().last().expect("non-empty");
        assert!(digit.is_ascii_digit(), "{name}");
        assert!(!random_name_with(&mut rng, 0).ends_with(|c: char| c.is_ascii_digit()));
    }

    #[test]
    fn generate_skips_taken_names() {
        let mut rng = StdRng::seed_from_u64(1);
        let seen = RefCell::new(Vec::new());
        // The first two candidates are taken: the third (with a digit) wins.
        let name = generate_name_with(&mut rng, &"ab".repeat(32), |n| {
            seen.borrow_mut().push(n.to_string());
            seen.borrow().len() <= 2
        });
        let seen = seen.into_inner();
        assert_eq!(seen.len(), 3);
        assert_eq!(name, seen[2]);
        assert!(!seen[0].ends_with(|c: char| c.is_ascii_digit()));
        assert!(name.ends_with(|c: char| c.is_ascii_digit()));
    }

    #[test]
    fn generate_falls_back_to_short_id() {
        let id = "0123456789abcdef".repeat(4);
        let tries = RefCell::new(0);
        let name = generate_name(&id, |_| {
            *tries.borrow_mut() += 1;
            true
        });
        assert_eq!(name, "0123456789ab");
        assert_eq!(tries.into_inner(), 6);
    }

    #[rstest]
    #[case("web", Ok("web"))]
    #[case("/web", Ok("web"))]
    #[case("a1", Ok("a1"))]
    #[case("9_x.y-z", Ok("9_x.y-z"))]
    #[case(
        "a",
        Err("Invalid container name (a), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    )]
    #[case(
        "/a",
        Err("Invalid container name (/a), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    )]
    #[case(
        "",
        Err("Invalid container name (), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    )]
    #[case(
        "_web",
        Err("Invalid container name (_web), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    )]
    #[case(
        "//web",
        Err("Invalid container name (//web), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    )]
    #[case(
        "we b",
        Err("Invalid container name (we b), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    )]
    #[case(
        "web\n",
        Err("Invalid container name (web\n), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    )]
    #[case(
        "wéb",
        Err("Invalid container name (wéb), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    )]
    fn name_validation(#[case] input: &str, #[case] expected: Result<&str, &str>) {
        let got = validate_container_name(input).map_err(|e| e.to_string());
        assert_eq!(got, expected.map_err(str::to_string));
    }

    #[test]
    fn conflict_message() {
        let err = NameError::Conflict {
            name: "web".into(),
            id: "f".repeat(64),
        };
        assert_eq!(
            err.to_string(),
            format!(
                "Conflict. The container name \"/web\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
                "f".repeat(64)
            )
        );
    }

    #[rstest]
    #[case("", "")]
    #[case("abc", "abc")]
    #[case("0123456789abcdef", "0123456789ab")]
    #[case("sha256:0123456789abcdef", "0123456789ab")]
    #[case("sha256:abc", "abc")]
    fn short_ids(#[case] id: &str, #[case] short: &str) {
        assert_eq!(truncate_id(id), short);
    }

    #[test]
    fn random_ids() {
        let mut rng = StdRng::seed_from_u64(3);
        for _ in 0..100 {
            let id = random_id_with(&mut rng);
            assert!(is_full_id(&id), "{id}");
            assert!(!truncate_id(&id).bytes().all(|b| b.is_ascii_digit()));
        }
        assert!(!is_full_id(&"A".repeat(64)));
        assert!(!is_full_id("abc"));
    }
}
