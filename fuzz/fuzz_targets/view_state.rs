//! The web app's URL view state: parsing never panics, and a parsed state survives the round trip
//! through its own query string.
#![no_main]

use failscope_shared::view::ViewState;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(query) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(state) = ViewState::from_query(query) {
        let again = ViewState::from_query(&state.to_query());
        assert_eq!(again.as_ref(), Ok(&state), "{query:?} → {:?}", state.to_query());
    }
});
