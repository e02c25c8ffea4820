//! The YAML port (libyaml-safer) panics on a few inputs where C libyaml reports an error
//! or reads on; the verifier catches those panics and refuses the document
//! (crates/verify/src/document/yaml.rs). libFuzzer's panic hook aborts on any panic,
//! caught or not, so the targets that read YAML let that crate's panics unwind to the
//! verifier's catch instead; every other panic still aborts and counts as a crash.

use std::sync::Once;

pub fn let_the_verifier_catch_yaml_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let abort = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_yaml_port = info
                .location()
                .is_some_and(|l| l.file().contains("libyaml-safer"));
            if !in_yaml_port {
                abort(info);
            }
        }));
    });
}
