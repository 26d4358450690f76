//! Entry point for the `api_bodies` fuzz target in `fuzz/` (cargo fuzz), and for the unit test
//! that replays its corpus on the stable toolchain. Not part of the crate's API.

use netloom_ipam::{HostFacts, MacAddr};

use super::ApiError;
use super::containers::ContainerCreateBody;
use super::types::{NetworkConnectRequest, NetworkCreateRequest};
use crate::daemon::engine::CreateNetwork;
use crate::daemon::server::connect_settings;
use crate::model::{Driver, EndpointSettings, NetworkName};

/// `api_bodies` target: `data` as the body of `POST /networks/create`, `POST
/// /networks/{id}/connect` and `POST /containers/create`, each parsed as the server parses it and
/// then turned into its typed command, with the checks that need no store (names, driver,
/// addressing plan, the connect's endpoint settings). Refusals must become an [`ApiError`];
/// nothing may panic.
pub fn bodies(data: &[u8]) {
    if let Ok(body) = serde_json::from_slice::<NetworkCreateRequest>(data) {
        match CreateNetwork::try_from(body) {
            Ok(create) => {
                let host = HostFacts::default();
                for request in &create.ipam {
                    if let Err(e) = netloom_ipam::plan_network(request, &[], &host) {
                        let _ = ApiError::from(crate::daemon::engine::EngineError::from(e));
                    }
                }
                let _ = create.name.parse::<NetworkName>();
                let _ = create.driver.parse::<Driver>();
            }
            Err(e) => assert!(e.status.is_client_error()),
        }
    }
    if let Ok(body) = serde_json::from_slice::<NetworkConnectRequest>(data) {
        connect(&body);
    }
    if let Ok(body) = serde_json::from_slice::<ContainerCreateBody>(data)
        && let Err(e) = body.into_request(String::new())
    {
        let _ = ApiError::from(e);
    }
}

/// The connect body's `EndpointConfig` as the server reads it: refusals are client errors, and
/// what is accepted survives the store's serde round trip and shows as it parsed.
fn connect(body: &NetworkConnectRequest) {
    match connect_settings(body.endpoint_config.as_ref()) {
        Ok(settings) => {
            let stored = serde_json::to_vec(&settings).expect("endpoint settings serialize");
            let back: EndpointSettings =
                serde_json::from_slice(&stored).expect("stored endpoint settings parse");
            assert_eq!(back, settings);
            if let Some(mac) = settings.mac {
                assert_eq!(mac.to_string().parse::<MacAddr>().ok(), Some(mac));
            }
        }
        Err(e) => assert!(e.status.is_client_error(), "{}: {}", e.status, e.message),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Replays `fuzz/corpus/api_bodies/` (when present) so `cargo test` runs what the fuzzer
    /// found.
    #[test]
    fn api_bodies_corpus() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/api_bodies");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return;
        };
        for entry in entries {
            let path = entry.expect("readable corpus directory").path();
            let data = std::fs::read(&path).expect("readable corpus file");
            let outcome = std::panic::catch_unwind(|| super::bodies(&data));
            assert!(outcome.is_ok(), "{} panics", path.display());
        }
    }
}
