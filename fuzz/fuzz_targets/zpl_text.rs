//! Parse arbitrary text as ZPL; whatever parses must print to text that
//! parses again to the same text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zgossip::config::Config;

fuzz_target!(|text: &str| {
    if let Ok(config) = Config::parse(text) {
        let printed = config.to_text();
        let again = Config::parse(&printed).expect("printed ZPL must parse again");
        assert_eq!(again.to_text(), printed, "ZPL print/parse is not stable");
    }
});
