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
    /// The cluster's name, part of the default entry ID prefix so that two clusters
    /// sharing one SPIRE server never touch each other's entries.
    pub cluster_name: String,
    /// Prefix of the IDs of the entries this controller owns (default
    /// `tekton-spire.<cluster-name>.`). Every entry under it is this controller's: listed,
    /// updated and deleted whatever its hint.
    pub entry_id_prefix: String,
    /// A prefix this controller used before (a migration): entries under it, in the
    /// shapes the controller writes (`<prefix><pod UID>`, `<prefix>node.<node>`), are
    /// deleted and never created. Entries under `entry_id_prefix` are never matched.
    pub entry_id_prefix_cleanup: Option<String>,
    /// The `hint` set on owned entries.
    pub entry_hint: String,
    /// How long after a TaskRun's timeout its entry expires on the server (`expires_at`),
    /// so that SPIRE prunes entries that nobody deletes (an uninstalled controller).
    pub entry_expiry_margin: Duration,
    /// Longest X.509-SVID TTL given to a TaskRun (shorter if the TaskRun's timeout is).
    pub max_svid_ttl: Duration,
    /// Interval of the full reconcile pass.
    pub resync_interval: Duration,
    /// Retry delay bounds after a failed pass (jittered, doubling).
    pub retry_min: Duration,
    /// See `retry_min`.
    pub retry_max: Duration,
    /// Deadline of one SPIRE API call (batch writes get one second more per entry).
    pub call_timeout: Duration,
    /// Where verdicts take the trust bundle from (`trust-bundle-path` if set, else the
    /// Workload API at `spire-socket-path`); `None`: no verdicts are recorded.
    pub trust_bundle: Option<TrustBundleSource>,
    /// Interval of the HTTP/2 (and TCP) keepalives on the SPIRE connection; `None` sends
    /// none.
    pub spire_keepalive: Option<Duration>,
    /// Consecutive failed SPIRE calls after which the connection is rebuilt; 0 never.
    pub spire_reconnect_after: u32,
    /// The namespace of the leader-election Lease; `None` runs without election (one
    /// replica only).
    pub leader_election_namespace: Option<String>,
    /// Lease timings (client-go's semantics and defaults).
    pub leader_election: LeaseTimings,
    /// What a verdict writes.
    pub verdicts: VerdictOutput,
    /// TaskRuns in these namespaces are judged; elsewhere only TaskRuns labelled
    /// [`VERDICT_OPT_IN_LABEL`]`: "true"`.
    pub verdict_namespaces: Vec<String>,
    /// How many TaskRuns are judged at once.
    pub verdict_concurrency: u16,
    /// Whether verdicts accept Tekton's TEP-0089 format (unsigned result names, no UID,
    /// ambiguous comma join, leaf only); the seal alone is accepted otherwise.
    pub accept_tekton_format: bool,
    /// Where `/metrics`, `/healthz` and `/readyz` are served; `None` serves nothing.
    pub metrics_address: Option<std::net::SocketAddr>,
}

/// The label that opts a TaskRun in to verdicts in any namespace.
pub const VERDICT_OPT_IN_LABEL: &str = "tekton-spire.dev/verify";

/// What the verdict controller writes for a judged TaskRun.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum VerdictOutput {
    /// The `SignedResultsVerified` condition (needs `taskruns/status` patch) and an event.
    Condition,
    /// An event only (needs no write access to TaskRuns).
    Event,
}

/// Leader election timings, as client-go's: a leader that has not renewed within
/// `renew_deadline` stops acting; a follower takes over once it has seen the lease
/// unchanged for `lease_duration` on its own clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct LeaseTimings {
    /// How long a lease is valid after its last observed change.
    pub lease_duration: Duration,
    /// How long the leader keeps trying to renew before it stops acting.
    pub renew_deadline: Duration,
    /// Pause between two attempts.
    pub retry_period: Duration,
}

impl Default for LeaseTimings {
    fn default() -> Self {
        Self {
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
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
    cluster_name: String,
    #[serde(default)]
    entry_id_prefix: Option<String>,
    #[serde(default)]
    entry_id_prefix_cleanup: Option<String>,
    #[serde(default, with = "humantime_serde")]
    entry_expiry_margin: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    max_svid_ttl: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    resync_interval: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    call_timeout: Option<Duration>,
    #[serde(default)]
    spire_keepalive: Option<String>,
    #[serde(default)]
    spire_reconnect_after: Option<u32>,
    #[serde(default)]
    trust_bundle_path: Option<PathBuf>,
    #[serde(default)]
    leader_election_namespace: Option<String>,
    #[serde(default, with = "humantime_serde")]
    leader_election_lease_duration: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    leader_election_renew_deadline: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    leader_election_retry_period: Option<Duration>,
    #[serde(default)]
    verdicts: Option<VerdictOutput>,
    #[serde(default)]
    verdict_namespaces: Vec<String>,
    #[serde(default)]
    verdict_concurrency: Option<u16>,
    #[serde(default)]
    accept_tekton_format: bool,
    #[serde(default)]
    metrics_address: Option<String>,
}

/// Tekton's default node alias prefix.
pub const DEFAULT_NODE_ALIAS_PREFIX: &str = "/tekton-node/";
/// The container Tekton names for a step called `sign`.
pub const DEFAULT_SIGNING_CONTAINER: &str = "step-sign";
/// The start of the default ID prefix of owned entries, `tekton-spire.<cluster-name>.`.
pub const ENTRY_ID_PREFIX_BASE: &str = "tekton-spire.";
/// The hint of owned entries.
pub const ENTRY_HINT: &str = "tekton-spire";
/// Where metrics and health are served by default.
pub const DEFAULT_METRICS_ADDRESS: &str = "0.0.0.0:9090";
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
        let cluster_name = file.cluster_name;
        if cluster_name.is_empty()
            || cluster_name.len() > 63
            || !cluster_name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            || cluster_name == "node"
        {
            return Err(invalid(
                "cluster-name",
                "must be 1 to 63 characters of [a-z0-9-], and not \"node\"; it names this cluster's entries on a SPIRE server that other clusters may share",
            ));
        }
        let valid_prefix = |p: &str| {
            p.len() >= 4
                && p.len() <= 160
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        };
        let entry_id_prefix = file
            .entry_id_prefix
            .unwrap_or_else(|| format!("{ENTRY_ID_PREFIX_BASE}{cluster_name}."));
        if !valid_prefix(&entry_id_prefix) {
            return Err(invalid(
                "entry-id-prefix",
                "must be 4 to 160 characters of [A-Za-z0-9._-]; it is how the controller recognizes its own entries",
            ));
        }
        if let Some(cleanup) = &file.entry_id_prefix_cleanup
            && (!valid_prefix(cleanup) || cleanup == &entry_id_prefix)
        {
            return Err(invalid(
                "entry-id-prefix-cleanup",
                "must be 4 to 160 characters of [A-Za-z0-9._-] and differ from entry-id-prefix",
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
        let entry_expiry_margin = file
            .entry_expiry_margin
            .unwrap_or(Duration::from_secs(30 * 60));
        if entry_expiry_margin < Duration::from_secs(10) {
            return Err(invalid("entry-expiry-margin", "must be at least 10s"));
        }
        let defaults = LeaseTimings::default();
        let leader_election = LeaseTimings {
            lease_duration: file
                .leader_election_lease_duration
                .unwrap_or(defaults.lease_duration),
            renew_deadline: file
                .leader_election_renew_deadline
                .unwrap_or(defaults.renew_deadline),
            retry_period: file
                .leader_election_retry_period
                .unwrap_or(defaults.retry_period),
        };
        if leader_election.retry_period.is_zero()
            || leader_election.retry_period >= leader_election.renew_deadline
            || leader_election.renew_deadline >= leader_election.lease_duration
        {
            return Err(invalid(
                "leader-election-renew-deadline",
                "the timings must satisfy 0 < retry period < renew deadline < lease duration",
            ));
        }
        let metrics_address = match file.metrics_address.as_deref() {
            None => Some(DEFAULT_METRICS_ADDRESS),
            Some("" | "off") => None,
            Some(address) => Some(address),
        }
        .map(|a| a.parse::<std::net::SocketAddr>())
        .transpose()
        .map_err(|_| invalid("metrics-address", "must be IP:PORT, or off"))?;
        let spire_keepalive = match file.spire_keepalive.as_deref() {
            None => Some(Duration::from_secs(10)),
            Some("off") => None,
            Some(text) => Some(
                humantime::parse_duration(text)
                    .ok()
                    .filter(|d| *d >= Duration::from_secs(1))
                    .ok_or_else(|| {
                        invalid(
                            "spire-keepalive",
                            "must be a duration of at least 1s, or off",
                        )
                    })?,
            ),
        };
        let verdict_concurrency = file.verdict_concurrency.unwrap_or(4);
        if verdict_concurrency == 0 {
            return Err(invalid("verdict-concurrency", "must be at least 1"));
        }
        Ok(Self {
            trust_domain,
            server,
            node_alias_prefix,
            node_alias_cluster: file.node_alias_cluster,
            signing_container,
            cluster_name,
            entry_id_prefix,
            entry_id_prefix_cleanup: file.entry_id_prefix_cleanup,
            entry_hint: ENTRY_HINT.to_owned(),
            entry_expiry_margin,
            max_svid_ttl,
            resync_interval: file.resync_interval.unwrap_or(Duration::from_secs(10)),
            retry_min: Duration::from_millis(200),
            retry_max: Duration::from_secs(10),
            call_timeout: file.call_timeout.unwrap_or(Duration::from_secs(10)),
            trust_bundle,
            spire_keepalive,
            spire_reconnect_after: file.spire_reconnect_after.unwrap_or(3),
            leader_election_namespace: file.leader_election_namespace,
            leader_election,
            verdicts: file.verdicts.unwrap_or(VerdictOutput::Condition),
            verdict_namespaces: file.verdict_namespaces,
            verdict_concurrency,
            accept_tekton_format: file.accept_tekton_format,
            metrics_address,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tekton_keys_with_defaults_make_a_working_configuration() {
        let c = Config::parse(
            "spire-trust-domain: example.org\nspire-server-addr: spire-server:8081\ncluster-name: prod\n",
        )
        .unwrap();
        assert_eq!(c.node_alias_prefix, "/tekton-node/");
        assert_eq!(c.signing_container.as_deref(), Some("step-sign"));
        assert_eq!(c.entry_id_prefix, "tekton-spire.prod.");
        assert_eq!(c.entry_id_prefix_cleanup, None);
        assert_eq!(c.entry_hint, "tekton-spire");
        assert_eq!(c.entry_expiry_margin, Duration::from_secs(1800));
        assert_eq!(c.leader_election, LeaseTimings::default());
        assert_eq!(c.verdicts, VerdictOutput::Condition);
        assert!(c.verdict_namespaces.is_empty());
        assert!(
            !c.accept_tekton_format,
            "the seal alone is accepted by default"
        );
        assert_eq!(c.metrics_address, Some("0.0.0.0:9090".parse().unwrap()));
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
            "spire-trust-domain: example.org\nspire-server-socket: /run/spire/api.sock\nnarrow-to-signing-container: false\ncluster-name: c\n",
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
                "spire-trust-domain: Example.org\nspire-server-addr: a:1\ncluster-name: c\n",
                "spire-trust-domain",
            ),
            (
                "spire-trust-domain: example.org\ncluster-name: c\n",
                "spire-server-addr",
            ),
            (
                "spire-trust-domain: example.org\nspire-server-addr: a:1\nspire-server-socket: /s\ncluster-name: c\n",
                "spire-server-socket",
            ),
            (
                "spire-trust-domain: example.org\nspire-server-addr: a:1\nspire-node-alias-prefix: node\ncluster-name: c\n",
                "spire-node-alias-prefix",
            ),
            (
                "spire-trust-domain: example.org\nspire-server-addr: a:1\nentry-id-prefix: a/\ncluster-name: c\n",
                "entry-id-prefix",
            ),
            (
                "spire-trust-domain: example.org\nspire-server-addr: a:1\nmax-svid-ttl: 5s\ncluster-name: c\n",
                "max-svid-ttl",
            ),
            (
                "spire-trust-domain: example.org\nspire-server-addr: a:1\ncluster-name: Prod\n",
                "cluster-name",
            ),
            (
                "spire-trust-domain: example.org\nspire-server-addr: a:1\ncluster-name: node\n",
                "cluster-name",
            ),
            (
                "spire-trust-domain: example.org\nspire-server-addr: a:1\ncluster-name: c\nentry-id-prefix-cleanup: tekton-spire.c.\n",
                "entry-id-prefix-cleanup",
            ),
            (
                "spire-trust-domain: example.org\nspire-server-addr: a:1\ncluster-name: c\nleader-election-renew-deadline: 20s\n",
                "leader-election-renew-deadline",
            ),
            (
                "spire-trust-domain: example.org\nspire-server-addr: a:1\ncluster-name: c\nmetrics-address: nowhere\n",
                "metrics-address",
            ),
            (
                "spire-trust-domain: example.org\nspire-server-addr: a:1\ncluster-name: c\nentry-expiry-margin: 1s\n",
                "entry-expiry-margin",
            ),
        ];
        for (text, key) in cases {
            match Config::parse(text) {
                Err(ConfigError::Invalid { key: k, .. }) => assert_eq!(k, key, "{text}"),
                other => panic!("{text}: expected an error on {key}, got {other:?}"),
            }
        }
        assert!(matches!(
            Config::parse("spire-trust-domain: x\ncluster-name: c\nunknown-key: 1\n"),
            Err(ConfigError::Parse { .. })
        ));
        assert!(
            matches!(
                Config::parse("spire-trust-domain: example.org\nspire-server-addr: a:1\n"),
                Err(ConfigError::Parse { .. })
            ),
            "cluster-name is required"
        );
    }
}
