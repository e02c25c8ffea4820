//! A local etcd and kube-apiserver with Tekton's TaskRun CRD, started by
//! scripts/kube-local.sh and stopped on drop (or, for a shared instance, by its watchdog
//! when the test process exits).
//!
//! The API server is real (RBAC, admission, the CRD's schema, pruning and status
//! subresource), but nothing runs pods: no kubelet, scheduler or controller-manager. A test
//! creates pods with `spec.nodeName` already set and writes their status itself.

use std::future::Future;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Context as _, bail};

use crate::instance::Instance;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config, ResourceExt as _};

/// A running etcd and kube-apiserver.
#[derive(Debug)]
pub struct Kube {
    instance: Instance,
}

impl Kube {
    /// Starts a private instance, stopped when dropped.
    ///
    /// # Errors
    /// When etcd or kube-apiserver is not built (run ./scripts/test.sh) or does not become
    /// ready.
    pub fn start() -> anyhow::Result<Self> {
        Self::start_inner(false)
    }

    /// One instance per test process, shared by its tests. Give each test its own
    /// namespace ([`create_namespace`]) and its own [`Client`] ([`Kube::client`]): a client
    /// belongs to the tokio runtime it was made in, and every `#[tokio::test]` has its own.
    ///
    /// # Panics
    /// When the API server cannot start: every test that needs it fails with the reason.
    #[expect(
        clippy::panic,
        reason = "test support: a test that needs the API server must fail loudly without it"
    )]
    pub fn shared() -> &'static Kube {
        static SHARED: OnceLock<Kube> = OnceLock::new();
        SHARED.get_or_init(|| match Self::start_inner(true) {
            Ok(kube) => kube,
            Err(e) => panic!("cannot start the shared API server: {e:#}"),
        })
    }

    fn start_inner(shared: bool) -> anyhow::Result<Self> {
        let instance = Instance::start("kube-local.sh", "KUBE_NO_BUILD", &[], shared)?;
        Ok(Self { instance })
    }

    fn var(&self, key: &str) -> &str {
        self.instance.var(key)
    }

    /// The admin's kubeconfig (client certificate in group `system:masters`, data inline,
    /// default namespace `default`).
    pub fn kubeconfig_path(&self) -> &Path {
        Path::new(self.var("KUBECONFIG"))
    }

    /// The API server's URL, `https://127.0.0.1:<port>`.
    pub fn api_url(&self) -> &str {
        self.var("KUBE_API_URL")
    }

    /// The CA certificate (PEM file) that signed the API server's serving certificate.
    pub fn ca_path(&self) -> &Path {
        Path::new(self.var("KUBE_CA"))
    }

    /// kube-apiserver's version, `v1.X.Y`.
    pub fn version(&self) -> &str {
        self.var("KUBE_VERSION")
    }

    /// The Tekton Pipelines release whose TaskRun CRD is installed.
    pub fn tekton_version(&self) -> &str {
        self.var("TEKTON_VERSION")
    }

    /// How long the start took, from generating the PKI to the CRD being served.
    pub fn ready_after(&self) -> Duration {
        Duration::from_millis(self.var("KUBE_READY_MS").parse().unwrap_or_default())
    }

    /// The directory holding etcd, kube-apiserver and the CRD files.
    pub fn bin_dir(&self) -> &Path {
        Path::new(self.var("KUBE_BIN"))
    }

    /// The instance's directory (PKI, etcd data, logs, kubeconfig).
    pub fn dir(&self) -> &Path {
        self.instance.dir()
    }

    /// The admin's client configuration, from the kubeconfig.
    ///
    /// # Errors
    /// When the kubeconfig cannot be read.
    pub async fn config(&self) -> anyhow::Result<Config> {
        let kubeconfig = Kubeconfig::read_from(self.kubeconfig_path())
            .with_context(|| format!("reading {}", self.kubeconfig_path().display()))?;
        Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .context("loading the harness kubeconfig")
    }

    /// A client acting as the admin. Call it inside the tokio runtime that will use it.
    ///
    /// # Errors
    /// When the kubeconfig cannot be read or the client cannot be built.
    pub async fn client(&self) -> anyhow::Result<Client> {
        Client::try_from(self.config().await?).context("building a kube client")
    }
}

/// `tekton.dev/v1` `TaskRun`, for [`Api<DynamicObject>`].
pub fn taskrun_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("tekton.dev", "v1", "TaskRun"),
        "taskruns",
    )
}

/// The `tekton.dev/v1` TaskRuns of `namespace`.
pub fn taskruns(client: Client, namespace: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client, namespace, &taskrun_resource())
}

/// Creates a namespace named `PREFIX<random suffix>` and returns its name.
///
/// # Errors
/// When the API server refuses.
pub async fn create_namespace(client: Client, prefix: &str) -> anyhow::Result<String> {
    let namespace = Namespace {
        metadata: ObjectMeta {
            generate_name: Some(prefix.to_owned()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    let created = Api::<Namespace>::all(client)
        .create(&PostParams::default(), &namespace)
        .await
        .with_context(|| format!("creating a namespace {prefix}…"))?;
    Ok(created.name_any())
}

/// Polls `probe` every 100 ms until it returns `Some`, for at most `timeout`.
///
/// # Errors
/// The last error of `probe`, or a timeout.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut probe: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let last = probe().await;
        match last {
            Ok(Some(value)) => return Ok(value),
            Ok(None) if tokio::time::Instant::now() >= deadline => {
                bail!("timed out after {timeout:?} waiting for {what}")
            }
            Err(e) if tokio::time::Instant::now() >= deadline => {
                return Err(e.context(format!("timed out after {timeout:?} waiting for {what}")));
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}
