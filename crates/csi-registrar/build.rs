//! Compiles the kubelet's plugin registration API from the workspace's `proto/` with
//! protox, so that builds need no `protoc`.

use std::error::Error;

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-changed=../../proto/kubelet");
    let descriptors = protox::compile(["kubelet/pluginregistration.proto"], ["../../proto"])?;
    tonic_prost_build::configure()
        .build_client(false)
        .build_transport(false)
        .compile_fds(descriptors)?;
    Ok(())
}
