//! Compiles the SPIRE Server Entry API from `proto/` into a gRPC client, with protox (a
//! pure-Rust protobuf compiler) so that builds need no `protoc`.

use std::error::Error;

/// The service files; their imports are found under `proto/` or among the well-known
/// types that protox carries.
const PROTOS: &[&str] = &["spire/api/server/entry/v1/entry.proto"];

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-changed=proto");
    let descriptors = protox::compile(PROTOS, ["proto"])?;
    tonic_prost_build::configure()
        .build_server(false)
        .build_transport(false)
        .include_file("spire_api.rs")
        .compile_fds(descriptors)?;
    Ok(())
}
