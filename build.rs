//! Compiles `proto/` with protox (a pure-Rust protobuf compiler) so that builds need no
//! `protoc`: the SPIRE Server Entry API into a gRPC client, and the few Kubernetes
//! messages the controller's pod watch reads into plain messages.

use std::error::Error;

/// The SPIRE service files; their imports are found under `proto/` or among the
/// well-known types that protox carries.
const SPIRE_PROTOS: &[&str] = &["spire/api/server/entry/v1/entry.proto"];

/// The Kubernetes messages (src/controller/protobuf_pods.rs).
const KUBERNETES_PROTOS: &[&str] = &["k8s/watch.proto"];

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-changed=proto");
    tonic_prost_build::configure()
        .build_server(false)
        .build_transport(false)
        .include_file("spire_api.rs")
        .compile_fds(protox::compile(SPIRE_PROTOS, ["proto"])?)?;
    tonic_prost_build::configure()
        .build_client(false)
        .build_server(false)
        .include_file("kubernetes.rs")
        .compile_fds(protox::compile(KUBERNETES_PROTOS, ["proto"])?)?;
    Ok(())
}
