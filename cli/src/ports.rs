//! Published-port specifications, parsed once: `-p` as the docker CLI parses it (go-connections
//! `nat.ParsePortSpec`, on the client) and the Engine API's `PortBindings` / `ExposedPorts` map
//! entries as the daemon validates them (moby `validatePortBindings`), with Docker's error texts.

use std::net::IpAddr;

use crate::model::{ContainerPort, PortMapping, PortRange, Proto};

/// A `-p` value the docker CLI would refuse (its texts, which `docker run` prints after
/// `docker: `).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// `--publish published=8080,target` (a long-syntax part without `=`).
    #[error("invalid publish opts format (should be name=value but got '{0}')")]
    LongSyntax(String),
    /// The host address is not an IP address.
    #[error("invalid IP address: {0}")]
    HostIp(String),
    /// A `[` without its `]` (Go's `net.SplitHostPort` text).
    #[error("invalid IP address {0}: address {0}:: missing ']' in address")]
    Bracket(String),
    /// Nothing after the last `:`.
    #[error("no port specified: {0}<empty>")]
    NoPort(String),
    /// The container port (range) is not a port number.
    #[error("invalid containerPort: {0}")]
    ContainerPort(String),
    /// The host port (range) is not a port number.
    #[error("invalid hostPort: {0}")]
    HostPort(String),
    /// `8000-8010:80-85`: a container range needs a host range of the same size.
    #[error("invalid ranges specified for container and host Ports: {container} and {host}")]
    Ranges {
        /// The container part.
        container: String,
        /// The host part.
        host: String,
    },
    /// Not `tcp`, `udp` or `sctp`.
    #[error("invalid proto: {0}")]
    Proto(String),
}

/// An `--expose` value the docker CLI would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExposeError {
    /// `--expose 8080:80`.
    #[error("invalid port format for --expose: {0}")]
    Format(String),
    /// Not a port or range.
    #[error("invalid range format for --expose: {spec}, error: {reason}")]
    Range {
        /// The value given.
        spec: String,
        /// Go's reason.
        reason: String,
    },
}

/// Go's `strconv.ParseUint(s, 10, 16)` error text, if `s` does not parse.
fn parse_uint_error(s: &str) -> Option<String> {
    let reason = if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        "invalid syntax"
    } else if s.parse::<u16>().is_err() {
        "value out of range"
    } else {
        return None;
    };
    Some(format!(
        "strconv.ParseUint: parsing {}: {reason}",
        crate::format::template::gofmt::quote(s)
    ))
}

/// One `--expose` value as the docker CLI reads it: `80`, `80/udp`, `8000-8010[/proto]`.
/// Answers the ports with their protocol as text.
pub fn parse_expose(spec: &str) -> Result<Vec<(u16, String)>, ExposeError> {
    if spec.contains(':') {
        return Err(ExposeError::Format(spec.to_owned()));
    }
    let (proto, port) = split_proto(spec);
    let range_error = |reason: String| ExposeError::Range {
        spec: spec.to_owned(),
        reason,
    };
    if port.is_empty() {
        return Err(range_error("empty string specified for ports".into()));
    }
    let mut parts = port.split('-');
    let first = parts.next().unwrap_or_default();
    let second = if port.contains('-') {
        parts.next().unwrap_or_default()
    } else {
        first
    };
    for p in [first, second] {
        if let Some(e) = parse_uint_error(p) {
            return Err(range_error(e));
        }
    }
    let (start, end) = (parse_u16(first), parse_u16(second));
    let (Some(start), Some(end)) = (start, end) else {
        return Err(range_error("invalid syntax".into()));
    };
    if end < start {
        return Err(range_error(format!(
            "invalid range specified for port: {port}"
        )));
    }
    Ok((start..=end).map(|p| (p, proto.to_owned())).collect())
}

/// An Engine-API port entry the daemon refuses (HTTP 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindingError {
    /// A container port key or host port that is not a port (range); moby's text.
    #[error("invalid port specification: {0:?}")]
    Spec(String),
    /// A protocol other than tcp and udp.
    #[error("invalid protocol {proto:?} for port {port}: netloom publishes only tcp and udp ports")]
    Proto {
        /// The protocol given.
        proto: String,
        /// The port key.
        port: String,
    },
    /// A host address that is not an IP address.
    #[error(
        "invalid host IP address {ip:?} for port {port}: give an IPv4 or IPv6 address, or leave it empty to bind 0.0.0.0 and ::"
    )]
    HostIp {
        /// The address given.
        ip: String,
        /// The port key.
        port: String,
    },
}

/// Go's `strconv.ParseUint(s, 10, 16)`: decimal digits only (no sign), at most 65535.
fn parse_u16(s: &str) -> Option<u16> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// go-connections `ParsePortRange`: `80` or `80-90` (only the first two `-` parts count).
fn parse_range(s: &str) -> Option<PortRange> {
    if !s.contains('-') {
        return parse_u16(s).map(PortRange::single);
    }
    let mut parts = s.split('-');
    let start = parse_u16(parts.next()?)?;
    let end = parse_u16(parts.next()?)?;
    (end >= start).then_some(PortRange { start, end })
}

/// go-connections `SplitProtoPort`: `80/udp` → (`udp`, `80`); no or empty protocol is `tcp`.
fn split_proto(raw: &str) -> (&str, &str) {
    let mut parts = raw.split('/');
    let port = parts.next().unwrap_or_default();
    match parts.next() {
        Some(p) if !p.is_empty() => (p, port),
        _ => ("tcp", port),
    }
}

/// The docker CLI's long syntax (`published=8080,target=80,protocol=udp`) in short form.
fn standard_notation(spec: &str) -> Result<String, SpecError> {
    if !spec.contains('=') {
        return Ok(spec.to_owned());
    }
    let (mut published, mut target, mut protocol) = ("", "", "tcp");
    for param in spec.split(',') {
        match param.split_once('=') {
            Some((k, v)) if !k.is_empty() => match k {
                "published" => published = v,
                "target" => target = v,
                "protocol" => protocol = v,
                _ => {}
            },
            _ => return Err(SpecError::LongSyntax(param.to_owned())),
        }
    }
    Ok(format!("{published}:{target}/{protocol}"))
}

/// One `-p` value as the docker CLI reads it (`convertToStandardNotation` + `ParsePortSpec`):
/// `[hostIP:][hostPort:]containerPort[/proto]`, ports or equal-sized ranges, IPv6 host
/// addresses in brackets. Answers the bindings in order, with the protocol as text (the CLI
/// accepts `sctp`; the daemon refuses it).
pub fn parse_publish(spec: &str) -> Result<Vec<(u16, String, Binding)>, SpecError> {
    let raw = standard_notation(spec)?;
    let parts: Vec<&str> = raw.split(':').collect();
    let n = parts.len();
    let (ip, host_port, container) = match n {
        1 => (String::new(), "", parts[0]),
        2 => (String::new(), parts[0], parts[1]),
        3 => (parts[0].to_owned(), parts[1], parts[2]),
        _ => (parts[..n - 2].join(":"), parts[n - 2], parts[n - 1]),
    };
    let (proto, container) = if container.is_empty() {
        ("", "")
    } else {
        split_proto(container)
    };
    let ip_text = match ip.strip_prefix('[') {
        Some(inner) => inner
            .strip_suffix(']')
            .ok_or_else(|| SpecError::Bracket(ip.clone()))?,
        None => &ip,
    };
    let host_ip = match ip_text {
        "" => None,
        t => Some(
            t.parse::<IpAddr>()
                .map_err(|_| SpecError::HostIp(ip_text.to_owned()))?,
        ),
    };
    if container.is_empty() {
        return Err(SpecError::NoPort(raw.clone()));
    }
    let cport =
        parse_range(container).ok_or_else(|| SpecError::ContainerPort(container.to_owned()))?;
    let hport = match host_port {
        "" => None,
        h => Some(parse_range(h).ok_or_else(|| SpecError::HostPort(h.to_owned()))?),
    };
    if let Some(h) = hport
        && cport.end - cport.start != h.end - h.start
        && !cport.is_single()
    {
        return Err(SpecError::Ranges {
            container: container.to_owned(),
            host: host_port.to_owned(),
        });
    }
    let proto_lc = proto.to_ascii_lowercase();
    if !matches!(proto_lc.as_str(), "tcp" | "udp" | "sctp") {
        return Err(SpecError::Proto(proto.to_owned()));
    }
    let mut out = Vec::new();
    for i in 0..=(cport.end - cport.start) {
        let host = hport.map(|h| {
            if cport.is_single() {
                h
            } else {
                PortRange::single(h.start + i)
            }
        });
        out.push((
            cport.start + i,
            proto_lc.clone(),
            Binding {
                host_ip,
                host_port: host,
            },
        ));
    }
    Ok(out)
}

/// A binding of one container port, as the client sends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding {
    /// `HostIp` (empty when `None`).
    pub host_ip: Option<IpAddr>,
    /// `HostPort` (empty when `None`).
    pub host_port: Option<PortRange>,
}

/// A `PortBindings` / `ExposedPorts` key (`80/tcp`, `80` meaning tcp), as the daemon accepts
/// it: one port, tcp or udp.
pub fn parse_port_key(key: &str) -> Result<ContainerPort, BindingError> {
    let (proto, port) = split_proto(key);
    let port = parse_u16(port)
        .filter(|p| *p != 0)
        .ok_or_else(|| BindingError::Spec(port.to_owned()))?;
    let proto = match proto.to_ascii_lowercase().as_str() {
        "tcp" => Proto::Tcp,
        "udp" => Proto::Udp,
        _ => {
            return Err(BindingError::Proto {
                proto: proto.to_owned(),
                port: key.to_owned(),
            });
        }
    };
    Ok(ContainerPort { port, proto })
}

/// One `PortBindings` entry (`{"HostIp": "", "HostPort": "8080"}`) of container port `port`.
/// An empty or `0` host port means any free port; `8000-8010` one from that range.
pub fn parse_binding(
    port: ContainerPort,
    host_ip: &str,
    host_port: &str,
) -> Result<PortMapping, BindingError> {
    let ip_text = host_ip
        .strip_prefix('[')
        .and_then(|i| i.strip_suffix(']'))
        .unwrap_or(host_ip);
    let host_ip = match ip_text {
        "" => None,
        t => Some(t.parse::<IpAddr>().map_err(|_| BindingError::HostIp {
            ip: host_ip.to_owned(),
            port: port.key(),
        })?),
    };
    // moby: `nat.NewPort(nat.SplitProtoPort(HostPort))`, so `8080/tcp` passes too.
    let (_, hp) = split_proto(host_port);
    let host_port = match hp {
        "" => None,
        h => {
            let r = parse_range(h).ok_or_else(|| BindingError::Spec(host_port.to_owned()))?;
            (r.start != 0).then_some(r)
        }
    };
    Ok(PortMapping {
        container: port,
        host_ip,
        host_port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn b(ip: Option<&str>, port: Option<(u16, u16)>) -> Binding {
        Binding {
            host_ip: ip.map(|i| i.parse().unwrap()),
            host_port: port.map(|(start, end)| PortRange { start, end }),
        }
    }

    #[rstest]
    #[case("80", vec![(80, "tcp", b(None, None))])]
    #[case("8080:80", vec![(80, "tcp", b(None, Some((8080, 8080))))])]
    #[case("127.0.0.1:8080:80/udp", vec![(80, "udp", b(Some("127.0.0.1"), Some((8080, 8080))))])]
    #[case("127.0.0.1::80", vec![(80, "tcp", b(Some("127.0.0.1"), None))])]
    #[case("[::1]:8080:80", vec![(80, "tcp", b(Some("::1"), Some((8080, 8080))))])]
    #[case("::1:8080:80", vec![(80, "tcp", b(Some("::1"), Some((8080, 8080))))])]
    #[case("80/TCP", vec![(80, "tcp", b(None, None))])]
    #[case("80/", vec![(80, "tcp", b(None, None))])]
    #[case("8000-8001:80-81", vec![
        (80, "tcp", b(None, Some((8000, 8000)))),
        (81, "tcp", b(None, Some((8001, 8001)))),
    ])]
    #[case("80-81/udp", vec![(80, "udp", b(None, None)), (81, "udp", b(None, None))])]
    #[case("8000-8010:80", vec![(80, "tcp", b(None, Some((8000, 8010))))])]
    #[case("published=8080,target=80,protocol=udp", vec![(80, "udp", b(None, Some((8080, 8080))))])]
    #[case("target=80", vec![(80, "tcp", b(None, None))])]
    #[case("80/sctp", vec![(80, "sctp", b(None, None))])]
    fn publish_specs_docker_accepts(#[case] spec: &str, #[case] want: Vec<(u16, &str, Binding)>) {
        let got = parse_publish(spec).unwrap();
        let want: Vec<(u16, String, Binding)> = want
            .into_iter()
            .map(|(p, proto, b)| (p, proto.to_owned(), b))
            .collect();
        assert_eq!(got, want, "{spec}");
    }

    #[rstest]
    #[case("x", "invalid containerPort: x")]
    #[case("8080:", "no port specified: 8080:<empty>")]
    #[case("", "no port specified: <empty>")]
    #[case("x:80", "invalid hostPort: x")]
    #[case("70000:80", "invalid hostPort: 70000")]
    #[case("8080:70000", "invalid containerPort: 70000")]
    #[case("8080:+80", "invalid containerPort: +80")]
    #[case("8080:90-80", "invalid containerPort: 90-80")]
    #[case("1.2.3:8080:80", "invalid IP address: 1.2.3")]
    #[case(
        "[::1:8080:80",
        "invalid IP address [::1: address [::1:: missing ']' in address"
    )]
    #[case("8000-8010:80-90/tcp:", "invalid IP address: 8000-8010")]
    #[case(
        "8000-8005:80-90",
        "invalid ranges specified for container and host Ports: 80-90 and 8000-8005"
    )]
    #[case(
        "8080:80-81",
        "invalid ranges specified for container and host Ports: 80-81 and 8080"
    )]
    #[case("80/icmp", "invalid proto: icmp")]
    #[case(
        "published=8080,target",
        "invalid publish opts format (should be name=value but got 'target')"
    )]
    fn publish_specs_docker_refuses(#[case] spec: &str, #[case] text: &str) {
        assert_eq!(parse_publish(spec).unwrap_err().to_string(), text, "{spec}");
    }

    #[rstest]
    #[case("80", Ok(vec![(80, "tcp")]))]
    #[case("53/udp", Ok(vec![(53, "udp")]))]
    #[case("80-82", Ok(vec![(80, "tcp"), (81, "tcp"), (82, "tcp")]))]
    #[case("8080:80", Err("invalid port format for --expose: 8080:80"))]
    #[case(
        "x",
        Err(
            "invalid range format for --expose: x, error: strconv.ParseUint: parsing \"x\": invalid syntax"
        )
    )]
    #[case(
        "90-80",
        Err(
            "invalid range format for --expose: 90-80, error: invalid range specified for port: 90-80"
        )
    )]
    #[case(
        "70000",
        Err(
            "invalid range format for --expose: 70000, error: strconv.ParseUint: parsing \"70000\": value out of range"
        )
    )]
    fn expose_specs(#[case] spec: &str, #[case] want: Result<Vec<(u16, &str)>, &str>) {
        let got = parse_expose(spec).map_err(|e| e.to_string());
        let want = want
            .map(|v| v.into_iter().map(|(p, s)| (p, s.to_owned())).collect())
            .map_err(str::to_owned);
        assert_eq!(got, want, "{spec}");
    }

    #[rstest]
    #[case("80/tcp", Ok((80, Proto::Tcp)))]
    #[case("80", Ok((80, Proto::Tcp)))]
    #[case("53/udp", Ok((53, Proto::Udp)))]
    #[case("80-90/tcp", Err("invalid port specification: \"80-90\""))]
    #[case("x/tcp", Err("invalid port specification: \"x\""))]
    #[case("0/tcp", Err("invalid port specification: \"0\""))]
    #[case(
        "80/sctp",
        Err(
            "invalid protocol \"sctp\" for port 80/sctp: netloom publishes only tcp and udp ports"
        )
    )]
    fn api_port_keys(#[case] key: &str, #[case] want: Result<(u16, Proto), &str>) {
        let got = parse_port_key(key)
            .map(|p| (p.port, p.proto))
            .map_err(|e| e.to_string());
        assert_eq!(got, want.map_err(str::to_owned), "{key}");
    }

    #[rstest]
    #[case("", "", None, None)]
    #[case("", "0", None, None)]
    #[case("0.0.0.0", "8080", Some("0.0.0.0"), Some((8080, 8080)))]
    #[case("::1", "8000-8010", Some("::1"), Some((8000, 8010)))]
    #[case("[::1]", "8080/tcp", Some("::1"), Some((8080, 8080)))]
    fn api_bindings(
        #[case] ip: &str,
        #[case] port: &str,
        #[case] want_ip: Option<&str>,
        #[case] want_port: Option<(u16, u16)>,
    ) {
        let c = ContainerPort {
            port: 80,
            proto: Proto::Tcp,
        };
        let m = parse_binding(c, ip, port).unwrap();
        assert_eq!(m.host_ip, want_ip.map(|i| i.parse().unwrap()));
        assert_eq!(
            m.host_port,
            want_port.map(|(start, end)| PortRange { start, end })
        );
    }

    #[rstest]
    #[case(
        "localhost",
        "80",
        "invalid host IP address \"localhost\" for port 80/tcp: give an IPv4 or IPv6 address, or leave it empty to bind 0.0.0.0 and ::"
    )]
    #[case("", "x", "invalid port specification: \"x\"")]
    #[case("", "90-80", "invalid port specification: \"90-80\"")]
    fn api_bindings_refused(#[case] ip: &str, #[case] port: &str, #[case] text: &str) {
        let c = ContainerPort {
            port: 80,
            proto: Proto::Tcp,
        };
        assert_eq!(parse_binding(c, ip, port).unwrap_err().to_string(), text);
    }
}
