//! Every decode path on arbitrary bytes: must never panic, and whatever it accepts must
//! re-encode to a buffer that decodes to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use schemas::{CellMsg, DriverMsg, LocationPing, split_frame};

fuzz_target!(|data: &[u8]| {
    if let Ok(ping) = LocationPing::decode(data) {
        assert_eq!(LocationPing::decode(&ping.to_vec()), Ok(ping));
    }
    if let Ok(msg) = DriverMsg::decode(data) {
        assert_eq!(DriverMsg::decode(&msg.to_vec()).as_ref(), Ok(&msg));
    }
    if let Ok(msg) = CellMsg::decode(data) {
        assert_eq!(CellMsg::decode(&msg.to_vec()).as_ref(), Ok(&msg));
    }
    if let Ok(Some((body, used))) = split_frame(data) {
        assert!(used <= data.len());
        let _ = DriverMsg::decode(body);
        let _ = CellMsg::decode(body);
    }
});
