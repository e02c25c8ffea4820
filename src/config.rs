//! The controller's configuration: one YAML file whose keys match Tekton's SPIRE
//! ConfigMap where Tekton has one, defaults applied, then validated.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use tekton_spire_verify::TrustDomain;

/// Why a configuration cannot be used. Not worth retrying: fix the file.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the configuration file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid YAML of the expected shape.
    #[error("the configuration file {path} is malformed")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_yaml_ng::Error,
    },
    /// A value breaks a rule.
    #[error("configuration key {key}: {problem}")]
    Invalid {
        /// The key.
        key: &'static str,
        /// What is wrong.
        problem: String,
    },
}

/// Where the trust bundle that verdicts are judged against comes from.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustBundleSource {
    /// The controller's own Workload API (`spire-socket-path`): the bundle SPIRE hands every
    /// workload, kept current through rotations with no file to distribute.
    WorkloadApi(String),
    /// A file (`trust-bundle-path`), re-read for every verdict: for a controller with no
    /// Workload API, or a bundle kept by other means.
    File(PathBuf),
}

/// How the controller reaches the SPIRE server's Entry API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerConnection {
    /// The server's admin Unix socket (the controller runs beside the server).
    AdminSocket(PathBuf),
    /// TCP with mTLS, authenticating with the controller's own X.509-SVID from the
    /// Workload API and checking the server's SPIFFE ID.
    Mtls {
        /// `host:port` of the server.
        address: String,
        /// The SPIFFE ID the server must present.
        server_id: String,
        /// The controller's Workload API endpoint.
        workload_socket: String,
    },
}

/// The controller's effective configuration.
#[non_exhaustive]
#[derive(Debug, Clone)]
pub struct Config {
    /// The trust domain of the TaskRun SPIFFE IDs.
    pub trust_domain: TrustDomain,
    /// How to reach the SPIRE server.
    pub server: ServerConnection,
    /// Path prefix of the node alias IDs that parent the entries:
    /// `spiffe://<td><prefix><node name>`.
    pub node_alias_prefix: String,
    /// The `k8s_psat` cluster name of the agents; when set, the controller also keeps one
    /// node alias entry per node running TaskRun pods (`spiffe://<td><prefix><node>`,
    /// parent the server, selectors `k8s_psat:cluster` and `k8s_psat:agent_node_name`).
    pub node_alias_cluster: Option<String>,
    /// The container that alone may obtain the SVID (`k8s:container-name`), if narrowed.
    pub signing_container: Option<String>,
    /// Prefix of the IDs of the entries this controller owns.
    pub entry_id_prefix: String,
    /// The `hint` set on owned entries.
    pub entry_hint: String,
    /// Longest X.509-SVID TTL given to a TaskRun (shorter if the TaskRun's timeout is).
    pub max_svid_ttl: Duration,
    /// Interval of the full reconcile pass.
    pub resync_interval: Duration,
    /// Retry delay bounds after a failed pass (jittered, doubling).
    pub retry_min: Duration,
    /// See `retry_min`.
    pub retry_max: Duration,
    /// Deadline of one SPIRE API call.
    pub call_timeout: Duration,
    /// Where verdicts take the trust bundle from (`trust-bundle-path` if set, else the
    /// Workload API at `spire-socket-path`); `None`: no verdicts are recorded.
    pub trust_bundle: Option<TrustBundleSource>,
    /// The namespace of the leader-election Lease; `None` runs without election (one
    /// replica only).
    pub leader_election_namespace: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct File {
    spire_trust_domain: String,
    /// Tekton's key: the Workload API socket of the controller's own agent.
    #[serde(default)]
    spire_socket_path: Option<String>,
    /// Tekton's key: the server's `host:port` (mTLS).
    #[serde(default)]
    spire_server_addr: Option<String>,
    #[serde(default)]
    spire_server_id: Option<String>,
    #[serde(default)]
    spire_server_socket: Option<PathBuf>,
    #[serde(default)]
    spire_node_alias_prefix: Option<String>,
    #[serde(default)]
    node_alias_cluster: Option<String>,
    #[serde(default)]
    signing_container: Option<String>,
    #[serde(default)]
    narrow_to_signing_container: Option<bool>,
    #[serde(default)]
    entry_id_prefix: Option<String>,
    #[serde(default, with = "humantime_serde")]
    max_svid_ttl: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    resync_interval: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    call_timeout: Option<Duration>,
    #[serde(default)]
    trust_bundle_path: Option<PathBuf>,
    #[serde(default)]
    leader_election_namespace: Option<String>,
}

/// Tekton's default node alias prefix.
pub const DEFAULT_NODE_ALIAS_PREFIX: &str = "/tekton-node/";
/// The container Tekton names for a step called `sign`.
pub const DEFAULT_SIGNING_CONTAINER: &str = "step-sign";
/// The ID prefix (and hint) of owned entries.
pub const DEFAULT_ENTRY_ID_PREFIX: &str = "tekton-spire.";
/// The Workload API socket the SPIFFE CSI driver mounts.
pub const DEFAULT_WORKLOAD_SOCKET: &str = "unix:///spiffe-workload-api/spire-agent.sock";

impl Config {
    /// Reads, defaults and validates a configuration file.
    ///
    /// # Errors
    /// When the file cannot be read or parsed, or a value is invalid.
    pub fn load(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text).map_err(|e| match e {
            ConfigError::Parse { source, .. } => ConfigError::Parse {
                path: path.to_owned(),
                source,
            },
            other => other,
        })
    }

    /// Parses, defaults and validates configuration text.
    ///
    /// # Errors
    /// As [`Config::load`].
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let file: File = serde_yaml_ng::from_str(text).map_err(|source| ConfigError::Parse {
            path: PathBuf::new(),
            source,
        })?;
        let invalid = |key, problem: &str| ConfigError::Invalid {
            key,
            problem: problem.to_owned(),
        };
        let trust_domain = TrustDomain::new(&file.spire_trust_domain)
            .map_err(|e| invalid("spire-trust-domain", &e.to_string()))?;
        let server = match (file.spire_server_socket, file.spire_server_addr) {
            (Some(path), None) => ServerConnection::AdminSocket(path),
            (None, Some(address)) => ServerConnection::Mtls {
                address,
                server_id: match file.spire_server_id {
                    Some(id) => {
                        tekton_spire_verify::SpiffeId::parse(&id)
                            .map_err(|e| invalid("spire-server-id", &e.to_string()))?;
                        id
                    }
                    None => format!("spiffe://{trust_domain}/spire/server"),
                },
                workload_socket: file
                    .spire_socket_path
                    .clone()
                    .unwrap_or_else(|| DEFAULT_WORKLOAD_SOCKET.to_owned()),
            },
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "spire-server-socket",
                    "set either spire-server-socket (admin socket) or spire-server-addr (mTLS), not both",
                ));
            }
            (None, None) => {
                return Err(invalid(
                    "spire-server-addr",
                    "set spire-server-addr (host:port, mTLS) or spire-server-socket (the server's admin socket)",
                ));
            }
        };
        let node_alias_prefix = file
            .spire_node_alias_prefix
            .unwrap_or_else(|| DEFAULT_NODE_ALIAS_PREFIX.to_owned());
        if !node_alias_prefix.starts_with('/') || !node_alias_prefix.ends_with('/') {
            return Err(invalid(
                "spire-node-alias-prefix",
                "must start and end with '/', like /tekton-node/",
            ));
        }
        let signing_container = match file.narrow_to_signing_container {
            Some(false) => None,
            _ => Some(
                file.signing_container
                    .unwrap_or_else(|| DEFAULT_SIGNING_CONTAINER.to_owned()),
            ),
        };
        let entry_id_prefix = file
            .entry_id_prefix
            .unwrap_or_else(|| DEFAULT_ENTRY_ID_PREFIX.to_owned());
        if entry_id_prefix.len() < 4
            || !entry_id_prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        {
            return Err(invalid(
                "entry-id-prefix",
                "must be at least 4 characters of [A-Za-z0-9._-]; it is how the controller recognizes its own entries",
            ));
        }
        let max_svid_ttl = file.max_svid_ttl.unwrap_or(Duration::from_secs(3600));
        if max_svid_ttl < Duration::from_secs(60) {
            return Err(invalid("max-svid-ttl", "must be at least 1m"));
        }
        let trust_bundle = match (&file.trust_bundle_path, &server) {
            (Some(path), _) => Some(TrustBundleSource::File(path.clone())),
            (
                None,
                ServerConnection::Mtls {
                    workload_socket, ..
                },
            ) => Some(TrustBundleSource::WorkloadApi(workload_socket.clone())),
            (None, ServerConnection::AdminSocket(_)) => file
                .spire_socket_path
                .clone()
                .map(TrustBundleSource::WorkloadApi),
        };
        Ok(Self {
            trust_domain,
            server,
            node_alias_prefix,
            node_alias_cluster: file.node_alias_cluster,
            signing_container,
            entry_hint: entry_id_prefix.trim_end_matches(['.', '-', '_']).to_owned(),
            entry_id_prefix,
            max_svid_ttl,
            resync_interval: file.resync_interval.unwrap_or(Duration::from_secs(10)),
            retry_min: Duration::from_millis(200),
            retry_max: Duration::from_secs(10),
            call_timeout: file.call_timeout.unwrap_or(Duration::from_secs(10)),
            trust_bundle,
            leader_election_namespace: file.leader_election_namespace,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tekton_keys_with_defaults_make_a_working_configuration() {
        let c = Config::parse(
            "spire-trust-domain: example.org\nspire-server-addr: spire-server:8081\n",
        )
        .unwrap();
        assert_eq!(c.node_alias_prefix, "/tekton-node/");
        assert_eq!(c.signing_container.as_deref(), Some("step-sign"));
        assert_eq!(c.entry_id_prefix, "tekton-spire.");
        assert_eq!(c.entry_hint, "tekton-spire");
        assert_eq!(
            c.server,
            ServerConnection::Mtls {
                address: "spire-server:8081".into(),
                server_id: "spiffe://example.org/spire/server".into(),
                workload_socket: DEFAULT_WORKLOAD_SOCKET.into(),
            }
        );
    }

    #[test]
    fn narrowing_to_the_signing_container_can_be_turned_off() {
        let c = Config::parse(
            "spire-trust-domain: example.org\nspire-server-socket: /run/spire/api.sock\nnarrow-to-signing-container: false\n",
        )
        .unwrap();
        assert_eq!(c.signing_container, None);
        assert_eq!(
            c.server,
            ServerConnection::AdminSocket("/run/spire/api.sock".into())
        );
    }

    #[test]
    fn each_bad_value_is_named() {
        let cases = [
            (
                "spire-trust-domain: Example.org\nspire-server-addr: a:1\n",
                "spire-trust-domain",
            ),
            ("spire-trust-domain: example.org\n", "spire-server-addr"),
            (
                "spire-trust-domain: example.org\nspire-server-addr: a:1\nspire-server-socket: /s\n",
                "spire-server-socket",
            ),
            (
                "spire-trust-domain: example.org\nspire-server-addr: a:1\nspire-node-alias-prefix: node\n",
                "spire-node-alias-prefix",
            ),
            (
                "spire-trust-domain: example.org\nspire-server-addr: a:1\nentry-id-prefix: a/\n",
                "entry-id-prefix",
            ),
            (
                "spire-trust-domain: example.org\nspire-server-addr: a:1\nmax-svid-ttl: 5s\n",
                "max-svid-ttl",
            ),
        ];
        for (text, key) in cases {
            match Config::parse(text) {
                Err(ConfigError::Invalid { key: k, .. }) => assert_eq!(k, key, "{text}"),
                other => panic!("{text}: expected an error on {key}, got {other:?}"),
            }
        }
        assert!(matches!(
            Config::parse("spire-trust-domain: x\nunknown-key: 1\n"),
            Err(ConfigError::Parse { .. })
        ));
    }
}
