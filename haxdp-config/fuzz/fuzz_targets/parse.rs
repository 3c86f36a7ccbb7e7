//! `cargo fuzz run parse`: the keepalived.conf reader on arbitrary bytes. Any panic, hang
//! or overflow is a bug; diagnostics are the expected answer to garbage.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let opts = haxdp_config::ReadOptions {
        config_id: Some("lb1".into()),
    };
    // A name in a directory that does not exist, so `include` lines never read real files.
    let name = std::path::Path::new("/nonexistent/haxdp-fuzz/keepalived.conf");
    if let Ok(l) = haxdp_config::parse_bytes(name, data, &opts) {
        for i in &l.config.instances {
            assert!(i.vrid >= 1 && i.priority >= 1);
        }
    }
});
