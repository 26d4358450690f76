//! The Engine API's `filters` query argument, parsed once, and Docker's matching rules for it.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, FixedOffset, Local, TimeZone};

use crate::model::NetworkRecord;

/// A bad `filters` argument.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FilterError {
    /// The JSON does not decode.
    #[error("invalid filter: {0}")]
    Syntax(String),
    /// A key this endpoint does not know.
    #[error("invalid filter '{0}'")]
    UnknownKey(String),
    /// `type` other than custom/builtin.
    #[error("invalid filter: 'type'='{0}'")]
    BadType(String),
    /// More than one `dangling` value.
    #[error("got more than one value for filter key \"dangling\"")]
    DanglingTwice,
    /// `dangling` other than true/false/1/0.
    #[error(
        "invalid value for filter 'dangling', must be \"true\" (or \"1\"), or \"false\" (or \"0\")"
    )]
    BadDangling,
    /// An `until` value that is neither a timestamp nor a duration.
    #[error("failed to parse value as time or duration: \"{0}\"")]
    BadUntil(String),
}

/// Parsed filters: key → set of values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters(BTreeMap<String, BTreeSet<String>>);

const NETWORK_KEYS: &[&str] = &["dangling", "driver", "id", "label", "name", "scope", "type"];
const PRUNE_KEYS: &[&str] = &["until", "label", "label!"];

impl Filters {
    /// Parses the query value: `{"key":{"value":true}}`, or the legacy `{"key":["value"]}`.
    pub fn parse(json: &str) -> Result<Filters, FilterError> {
        if json.is_empty() {
            return Ok(Filters::default());
        }
        let value: serde_json::Value =
            serde_json::from_str(json).map_err(|e| FilterError::Syntax(e.to_string()))?;
        let obj = value
            .as_object()
            .ok_or_else(|| FilterError::Syntax("filters must be a JSON object".into()))?;
        let mut out = BTreeMap::new();
        for (key, values) in obj {
            let set: BTreeSet<String> = match values {
                serde_json::Value::Object(m) => m
                    .iter()
                    .filter(|(_, on)| on.as_bool().unwrap_or(false))
                    .map(|(v, _)| v.clone())
                    .collect(),
                serde_json::Value::Array(a) => a
                    .iter()
                    .map(|v| v.as_str().map(str::to_owned))
                    .collect::<Option<_>>()
                    .ok_or_else(|| {
                        FilterError::Syntax(format!("values of {key} must be strings"))
                    })?,
                _ => return Err(FilterError::Syntax(format!("bad values for {key}"))),
            };
            out.insert(key.clone(), set);
        }
        Ok(Filters(out))
    }

    /// Adds one `key=value` (as the CLI's `--filter` does).
    pub fn add(&mut self, key: &str, value: &str) {
        self.0
            .entry(key.to_owned())
            .or_default()
            .insert(value.to_owned());
    }

    /// True when no filter is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The wire form `{"key":{"value":true}}`.
    pub fn to_json(&self) -> String {
        let obj: serde_json::Map<String, serde_json::Value> = self
            .0
            .iter()
            .map(|(k, vs)| {
                let inner = vs
                    .iter()
                    .map(|v| (v.clone(), serde_json::Value::Bool(true)))
                    .collect();
                (k.clone(), serde_json::Value::Object(inner))
            })
            .collect();
        serde_json::Value::Object(obj).to_string()
    }

    fn values(&self, key: &str) -> Option<&BTreeSet<String>> {
        self.0.get(key)
    }

    fn validate(&self, accepted: &[&str]) -> Result<(), FilterError> {
        match self.0.keys().find(|k| !accepted.contains(&k.as_str())) {
            Some(k) => Err(FilterError::UnknownKey(k.clone())),
            None => Ok(()),
        }
    }

    /// Checks the keys and values `GET /networks` accepts.
    pub fn validate_network_filters(&self) -> Result<(), FilterError> {
        self.validate(NETWORK_KEYS)?;
        if let Some(d) = self.values("dangling") {
            if d.len() > 1 {
                return Err(FilterError::DanglingTwice);
            }
            if let Some(v) = d.first()
                && !matches!(v.as_str(), "0" | "1" | "true" | "false")
            {
                return Err(FilterError::BadDangling);
            }
        }
        if let Some(types) = self.values("type")
            && let Some(bad) = types
                .iter()
                .find(|t| !matches!(t.as_str(), "custom" | "builtin"))
        {
            return Err(FilterError::BadType(bad.clone()));
        }
        Ok(())
    }

    /// Checks the keys and values `POST /networks/prune` accepts.
    pub fn validate_prune_filters(&self) -> Result<(), FilterError> {
        self.validate(PRUNE_KEYS)?;
        if let Some(until) = self.values("until") {
            for u in until {
                parse_until(u, Local::now().fixed_offset())?;
            }
        }
        Ok(())
    }

    /// Docker's `Match`: a value matches when equal or when, read as a regular expression, it
    /// matches anywhere in the source; any value may match.
    fn matches_regex(&self, key: &str, source: &str) -> bool {
        let Some(values) = self.values(key) else {
            return true;
        };
        values
            .iter()
            .any(|v| v == source || regex::Regex::new(v).is_ok_and(|re| re.is_match(source)))
    }

    fn matches_exact(&self, key: &str, source: &str) -> bool {
        self.values(key)
            .is_none_or(|values| values.contains(source))
    }

    /// Docker's `MatchKVList`: every `key` or `key=value` must be among the labels.
    fn matches_labels(&self, key: &str, labels: &BTreeMap<String, String>) -> bool {
        let Some(values) = self.values(key) else {
            return true;
        };
        values.iter().all(|v| match v.split_once('=') {
            Some((k, want)) => labels.get(k).is_some_and(|have| have == want),
            None => labels.contains_key(v.as_str()),
        })
    }

    /// Whether a network passes `GET /networks` filters. `in_use` says whether containers use it
    /// (for `dangling`).
    pub fn matches_network(&self, n: &NetworkRecord, in_use: bool) -> bool {
        let type_ok = self
            .values("type")
            .is_none_or(|types| types.iter().any(|t| (t == "builtin") == n.builtin));
        let dangling_ok = self
            .values("dangling")
            .and_then(|d| d.first())
            .is_none_or(|d| {
                let dangling_only = matches!(d.as_str(), "1" | "true");
                // Docker: dangling=true keeps unused custom networks; false keeps the rest.
                let dangling = !n.builtin && !in_use;
                dangling == dangling_only
            });
        self.matches_exact("driver", n.driver.as_str())
            && self.matches_regex("name", n.name.as_str())
            && self.matches_regex("id", n.id.as_str())
            && self.matches_labels("label", &n.labels)
            && self.matches_exact("scope", "local")
            && type_ok
            && dangling_ok
    }

    /// Whether an unused custom network passes `POST /networks/prune` filters.
    pub fn matches_prune(&self, n: &NetworkRecord) -> bool {
        let now = Local::now().fixed_offset();
        let until_ok = self.values("until").is_none_or(|us| {
            us.iter()
                .all(|u| parse_until(u, now).is_ok_and(|t| n.created < t))
        });
        let label_ok = self.matches_labels("label", &n.labels);
        let not_label_ok = self.values("label!").is_none_or(|vs| {
            !vs.iter().any(|v| match v.split_once('=') {
                Some((k, want)) => n.labels.get(k).is_some_and(|have| have == want),
                None => n.labels.contains_key(v.as_str()),
            })
        });
        until_ok && label_ok && not_label_ok
    }
}

/// Parses an `until` value: a Go duration before now (`24h`, `1h30m`, `90s`), Unix seconds
/// (optionally with a fraction), or an RFC 3339 time.
fn parse_until(s: &str, now: DateTime<FixedOffset>) -> Result<DateTime<FixedOffset>, FilterError> {
    let bad = || FilterError::BadUntil(s.to_owned());
    if let Some(d) = parse_go_duration(s) {
        return Ok(now - d);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t);
    }
    if let Some((secs, frac)) = s.split_once('.').or(Some((s, "")))
        && let Ok(secs) = secs.parse::<i64>()
    {
        let nanos = if frac.is_empty() {
            0
        } else {
            format!("{frac:0<9}")
                .get(..9)
                .and_then(|f| f.parse::<u32>().ok())
                .ok_or_else(bad)?
        };
        return now
            .offset()
            .timestamp_opt(secs, nanos)
            .single()
            .ok_or_else(bad);
    }
    Err(bad())
}

/// Go's `time.ParseDuration` for the units a filter uses (h, m, s, ms).
fn parse_go_duration(s: &str) -> Option<chrono::Duration> {
    let mut rest = s;
    let mut total = chrono::Duration::zero();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit() && c != '.')?;
        if digits == 0 {
            return None;
        }
        let n: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let ms = match &rest[..unit_len] {
            "h" => 3_600_000.0,
            "m" => 60_000.0,
            "s" => 1_000.0,
            "ms" => 1.0,
            _ => return None,
        };
        total += chrono::Duration::milliseconds((n * ms) as i64);
        rest = &rest[unit_len..];
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_wire_forms() {
        let a = Filters::parse(r#"{"driver":{"bridge":true}}"#).unwrap();
        let b = Filters::parse(r#"{"driver":["bridge"]}"#).unwrap();
        assert_eq!(a, b);
        assert_eq!(Filters::parse(&a.to_json()).unwrap(), a);
        assert!(Filters::parse("[").is_err());
        assert!(Filters::parse("").unwrap().is_empty());
    }

    #[test]
    fn unknown_keys_are_refused_with_docker_text() {
        let f = Filters::parse(r#"{"colour":{"red":true}}"#).unwrap();
        assert_eq!(
            f.validate_network_filters().unwrap_err().to_string(),
            "invalid filter 'colour'"
        );
        let f = Filters::parse(r#"{"type":{"odd":true}}"#).unwrap();
        assert_eq!(
            f.validate_network_filters().unwrap_err().to_string(),
            "invalid filter: 'type'='odd'"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(
            parse_go_duration("1h30m"),
            Some(chrono::Duration::minutes(90))
        );
        assert_eq!(
            parse_go_duration("10s"),
            Some(chrono::Duration::seconds(10))
        );
        assert_eq!(parse_go_duration("x"), None);
        assert_eq!(parse_go_duration("10"), None);
        let now = Local::now().fixed_offset();
        assert!(parse_until("2020-01-01T00:00:00Z", now).is_ok());
        assert!(parse_until("1700000000", now).is_ok());
        assert!(parse_until("yesterday", now).is_err());
    }
}
