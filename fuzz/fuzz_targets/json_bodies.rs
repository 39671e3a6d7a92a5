//! Every JSON request body: job parameters (then their checks) and new links.
#![no_main]

use failscope_shared::api::{ClusterParams, EmbedParams, NewLink};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(p) = serde_json::from_slice::<EmbedParams>(data) {
        if p.check().is_ok() {
            let _ = p.check_for(1000);
        }
        let _ = p.key();
    }
    if let Ok(p) = serde_json::from_slice::<ClusterParams>(data) {
        if p.check().is_ok() {
            let _ = p.check_for(1000, &["det_mcp".to_string()]);
        }
        let _ = p.key();
    }
    if let Ok(link) = serde_json::from_slice::<NewLink>(data) {
        let _ = failscope_shared::view::ViewState::from_query(&link.state);
    }
});
