//! Registers a CSI driver with the kubelet: the job of Kubernetes' node-driver-registrar,
//! which the Go module proxy does not serve, done here for the test node and the demo.
//!
//! It serves the kubelet's plugin registration API on a socket in the kubelet's
//! `plugins_registry` directory. The kubelet finds the socket, asks what the plugin is
//! (`GetInfo`: a CSI plugin, its name, where its CSI socket is on the node), calls the
//! driver's `NodeGetInfo` itself, and reports the outcome (`NotifyRegistrationStatus`).
//! A refusal is fatal: the process exits so that the kubelet restarts the container and
//! registration is tried again, as node-driver-registrar does.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use tokio::net::UnixListener;
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::{Request, Response, Status};

mod api {
    #![allow(missing_docs, clippy::all)]
    tonic::include_proto!("pluginregistration");
}
use api::registration_server::{Registration, RegistrationServer};

/// Registers a CSI driver with the kubelet (in place of node-driver-registrar, whose
/// flag names it takes, so that a manifest written for it needs only another image).
#[derive(Parser)]
#[command(version, name = "csi-registrar")]
struct Args {
    /// The driver's CSI socket as mounted in this container; registration waits until it
    /// exists.
    #[arg(long, default_value = "/spiffe-csi/csi.sock")]
    csi_address: PathBuf,
    /// The driver's CSI socket as a path on the node (what the kubelet dials).
    #[arg(long, default_value = "/var/lib/kubelet/plugins/csi.spiffe.io/csi.sock")]
    kubelet_registration_path: String,
    /// The kubelet's plugins_registry directory as mounted in this container.
    #[arg(long, default_value = "/registration")]
    plugin_registration_path: PathBuf,
    /// The driver's name, as in its CSIDriver object (node-driver-registrar asks the driver;
    /// the SPIFFE CSI driver's is csi.spiffe.io).
    #[arg(long, default_value = "csi.spiffe.io")]
    driver_name: String,
}

struct Registrar {
    info: api::PluginInfo,
    outcome: mpsc::Sender<Result<(), String>>,
}

#[tonic::async_trait]
impl Registration for Registrar {
    async fn get_info(&self, _: Request<api::InfoRequest>) -> Result<Response<api::PluginInfo>, Status> {
        Ok(Response::new(self.info.clone()))
    }

    async fn notify_registration_status(
        &self,
        request: Request<api::RegistrationStatus>,
    ) -> Result<Response<api::RegistrationStatusResponse>, Status> {
        let status = request.into_inner();
        let outcome = if status.plugin_registered { Ok(()) } else { Err(status.error) };
        // The receiver lives as long as the server; a full channel only drops a repeat.
        let _ = self.outcome.try_send(outcome);
        Ok(Response::new(api::RegistrationStatusResponse {}))
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // Registering before the driver listens would make the kubelet's NodeGetInfo fail.
    while !args.csi_address.exists() {
        eprintln!("csi-registrar: waiting for the driver's socket {}", args.csi_address.display());
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    let registration_socket = args.plugin_registration_path.join(format!("{}-reg.sock", args.driver_name));
    // A socket left by an earlier container would make bind fail.
    match std::fs::remove_file(&registration_socket) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            return Err(err).with_context(|| format!("removing the stale socket {}", registration_socket.display()));
        }
        _ => {}
    }
    let listener = UnixListener::bind(&registration_socket)
        .with_context(|| format!("listening on {} (is the kubelet's plugins_registry mounted there?)", registration_socket.display()))?;
    let (outcome, mut outcomes) = mpsc::channel(4);
    let registrar = Registrar {
        info: api::PluginInfo {
            r#type: "CSIPlugin".into(),
            name: args.driver_name.clone(),
            endpoint: args.kubelet_registration_path.clone(),
            supported_versions: vec!["1.0.0".into()],
        },
        outcome,
    };
    eprintln!(
        "csi-registrar: serving registration of {} (CSI socket {}) on {}",
        args.driver_name,
        args.kubelet_registration_path,
        registration_socket.display()
    );
    let server = tonic::transport::Server::builder()
        .add_service(RegistrationServer::new(registrar))
        .serve_with_incoming(UnixListenerStream::new(listener));
    tokio::pin!(server);
    loop {
        tokio::select! {
            served = &mut server => return served.context("serving the registration API"),
            Some(outcome) = outcomes.recv() => match outcome {
                Ok(()) => eprintln!("csi-registrar: the kubelet registered {}", args.driver_name),
                Err(error) => anyhow::bail!("the kubelet refused to register {}: {error}", args.driver_name),
            },
        }
    }
}
