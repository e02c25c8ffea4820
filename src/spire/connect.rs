//! Where the SPIRE server is and how to reach it: its admin Unix socket, or its TCP
//! port with mutual TLS under this workload's X509-SVID.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use spiffe::{SpiffeId, TrustDomain, X509Source};
use tokio::net::{TcpStream, UnixStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls;
use tonic::transport::{Channel, Uri};

use super::error::Error;

/// How to reach the SPIRE server.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Endpoint {
    /// The server's local admin socket (`socket_path` in its configuration). The server
    /// authorizes every caller that can open it, so it must be reachable only by the
    /// controller.
    AdminSocket(PathBuf),
    /// The server's TCP endpoint (`bind_address:bind_port`), with mutual TLS: this
    /// workload presents its X509-SVID from the Workload API, which needs an entry with
    /// `admin` set (or a place in the server's `admin_ids`), and the server must present
    /// an X509-SVID for `server_id` that chains to the trust bundle of `server_id`'s
    /// trust domain from the Workload API.
    Tcp {
        /// `host:port`, `[v6addr]:port` or `v4addr:port`.
        addr: String,
        /// The server's SPIFFE ID, normally `spiffe://<trust domain>/spire/server`.
        server_id: SpiffeId,
    },
}

impl Endpoint {
    /// The TCP endpoint of the server of `trust_domain`, which SPIRE names
    /// `spiffe://<trust domain>/spire/server`.
    pub fn tcp(addr: impl Into<String>, trust_domain: &TrustDomain) -> Self {
        Endpoint::Tcp {
            addr: addr.into(),
            server_id: server_id(trust_domain),
        }
    }
}

/// The SPIFFE ID SPIRE gives its server: `spiffe://<trust domain>/spire/server`.
#[expect(
    clippy::expect_used,
    reason = "fixed valid segments under an already valid trust domain"
)]
pub fn server_id(trust_domain: &TrustDomain) -> SpiffeId {
    SpiffeId::from_segments(trust_domain.clone(), &["spire", "server"])
        .expect("/spire/server under a valid trust domain is a valid SPIFFE ID")
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::AdminSocket(path) => write!(f, "unix://{}", path.display()),
            Endpoint::Tcp { addr, server_id } => write!(f, "{addr} ({server_id})"),
        }
    }
}

/// Timeouts and the Workload API location. Batch sizes and the page size are fixed
/// (those of spire-controller-manager: 50 creates or updates, 200 deletes, 200 entries
/// a page).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientConfig {
    /// Limit for each RPC, also sent to the server as the call's deadline. Default 30 s.
    pub call_timeout: Duration,
    /// Limit for opening a connection, TLS handshake included. Default 10 s.
    pub connect_timeout: Duration,
    /// The Workload API endpoint (`unix:///...`) for [`Endpoint::Tcp`]; `None` reads
    /// `SPIFFE_ENDPOINT_SOCKET`. Default `None`.
    pub workload_api: Option<String>,
    /// How long [`Endpoint::Tcp`] waits for this workload's first X509-SVID. Default 30 s,
    /// enough for a new entry to reach the agent with SPIRE's default sync intervals.
    pub svid_timeout: Duration,
    /// Interval of HTTP/2 keepalive pings (also while idle) and, over TCP, of TCP
    /// keepalive probes; a ping unanswered within as long again closes the connection,
    /// which is then opened anew. `None` sends none. Default 10 s.
    pub keepalive: Option<Duration>,
    /// After this many consecutive calls that found the server unavailable (or, without
    /// keepalives, timed out), the channel is rebuilt from scratch; 0 never. Default 3. A
    /// call that merely timed out with keepalives on met a busy server, not a dead
    /// connection: it does not count.
    pub reconnect_after: u32,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            call_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            workload_api: None,
            svid_timeout: Duration::from_secs(30),
            keepalive: Some(Duration::from_secs(10)),
            reconnect_after: 3,
        }
    }
}

impl ClientConfig {
    /// Sets [`ClientConfig::call_timeout`].
    #[must_use]
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// Sets [`ClientConfig::connect_timeout`].
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets [`ClientConfig::workload_api`].
    #[must_use]
    pub fn workload_api(mut self, endpoint: impl Into<String>) -> Self {
        self.workload_api = Some(endpoint.into());
        self
    }

    /// Sets [`ClientConfig::svid_timeout`].
    #[must_use]
    pub fn svid_timeout(mut self, timeout: Duration) -> Self {
        self.svid_timeout = timeout;
        self
    }

    /// Sets [`ClientConfig::keepalive`].
    #[must_use]
    pub fn keepalive(mut self, interval: Option<Duration>) -> Self {
        self.keepalive = interval;
        self
    }

    /// Sets [`ClientConfig::reconnect_after`].
    #[must_use]
    pub fn reconnect_after(mut self, failures: u32) -> Self {
        self.reconnect_after = failures;
        self
    }

    /// A tonic endpoint with these timeouts and keepalives.
    fn channel(&self, uri: Uri) -> tonic::transport::Endpoint {
        let mut endpoint =
            tonic::transport::Endpoint::from(uri).connect_timeout(self.connect_timeout);
        if let Some(interval) = self.keepalive {
            endpoint = endpoint
                .http2_keep_alive_interval(interval)
                .keep_alive_timeout(interval)
                .keep_alive_while_idle(true);
        }
        endpoint
    }
}

/// An open channel, and for mTLS the source of this workload's SVID and bundle, which
/// must live as long as the channel may reconnect.
pub(crate) struct Connection {
    pub(crate) channel: Channel,
    pub(crate) source: Option<X509Source>,
}

/// Connects eagerly, so that a wrong address or identity shows at once; the channel
/// reconnects by itself afterwards. `source`, when given, is the Workload API source of
/// an earlier connection, reused for a rebuilt one.
pub(crate) async fn connect(
    endpoint: &Endpoint,
    config: &ClientConfig,
    source: Option<X509Source>,
) -> Result<Connection, Error> {
    match endpoint {
        Endpoint::AdminSocket(path) => {
            let path = path.clone();
            let connector = tower::service_fn(move |_: Uri| {
                let path = path.clone();
                async move { UnixStream::connect(path).await.map(TokioIo::new) }
            });
            // The authority is not looked at by the server; the socket path decides.
            let channel = config
                .channel(Uri::from_static("http://localhost"))
                .connect_with_connector(connector)
                .await
                .map_err(|source| Error::Connect {
                    endpoint: endpoint.to_string(),
                    source,
                })?;
            Ok(Connection {
                channel,
                source: None,
            })
        }
        Endpoint::Tcp { addr, server_id } => {
            let invalid = |reason| Error::InvalidAddress {
                addr: addr.clone(),
                reason,
            };
            let host = host_of(addr).ok_or_else(|| invalid("expected host:port"))?;
            let server_name = rustls::pki_types::ServerName::try_from(host.to_owned())
                .map_err(|_| invalid("the host is neither a DNS name nor an IP address"))?;
            let uri = Uri::try_from(format!("http://{addr}"))
                .map_err(|_| invalid("not usable as a URI authority"))?;

            if let Some(source) = source {
                return connect_tls(addr, server_id, server_name, uri, &source, config)
                    .await
                    .map(|channel| Connection {
                        channel,
                        source: Some(source),
                    });
            }
            let mut builder = X509Source::builder().initial_sync_timeout(config.svid_timeout);
            if let Some(workload_api) = &config.workload_api {
                builder = builder.endpoint(workload_api);
            }
            let source = builder
                .build()
                .await
                .map_err(|source| Error::WorkloadApi { source })?;
            let result = if source
                .try_bundle_for_trust_domain(server_id.trust_domain())
                .is_none()
            {
                Err(Error::NoTrustBundle {
                    trust_domain: server_id.trust_domain().clone(),
                })
            } else {
                connect_tls(addr, server_id, server_name, uri, &source, config).await
            };
            if result.is_err() {
                source.shutdown().await;
            }
            result.map(|channel| Connection {
                channel,
                source: Some(source),
            })
        }
    }
}

async fn connect_tls(
    addr: &str,
    server_id: &SpiffeId,
    server_name: rustls::pki_types::ServerName<'static>,
    uri: Uri,
    source: &X509Source,
    config: &ClientConfig,
) -> Result<Channel, Error> {
    let expected = server_id.clone();
    // 1. The chain must verify against the bundle of the server ID's trust domain (and
    //    only that one), 2. the leaf must be an X509-SVID, 3. its URI SAN must be exactly
    //    the expected server ID. spiffe-rustls does 1 and 2 before asking us about 3.
    let tls = spiffe_rustls::mtls_client(source.clone())
        .trust_domain_policy(spiffe_rustls::LocalOnly(server_id.trust_domain().clone()))
        .authorize(move |id: &SpiffeId| *id == expected)
        .with_alpn_protocols([b"h2"])
        .build()
        .map_err(|source| Error::TlsConfig { source })?;
    let tls = TlsConnector::from(Arc::new(tls));
    let target = addr.to_owned();
    let keepalive = config.keepalive;
    let connector = tower::service_fn(move |_: Uri| {
        let (tls, target, server_name) = (tls.clone(), target.clone(), server_name.clone());
        async move {
            let tcp = TcpStream::connect(target.as_str()).await?;
            tcp.set_nodelay(true)?;
            if let Some(interval) = keepalive {
                // The kernel's probes catch a peer that vanished even when no HTTP/2
                // ping is due; tonic cannot set them through a custom connector.
                socket2::SockRef::from(&tcp).set_tcp_keepalive(
                    &socket2::TcpKeepalive::new()
                        .with_time(interval)
                        .with_interval(interval)
                        .with_retries(3),
                )?;
            }
            let stream = tls.connect(server_name, tcp).await?;
            Ok::<_, std::io::Error>(TokioIo::new(stream))
        }
    });
    config
        .channel(uri)
        .connect_with_connector(connector)
        .await
        .map_err(|source| {
            if server_unauthenticated(&source) {
                Error::ServerNotAuthenticated {
                    addr: addr.to_owned(),
                    server_id: server_id.clone(),
                    source,
                }
            } else {
                Error::Connect {
                    endpoint: format!("{addr} ({server_id})"),
                    source,
                }
            }
        })
}

/// The host part of `host:port` or `[v6]:port`.
fn host_of(addr: &str) -> Option<&str> {
    let (host, port) = addr.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    (!host.is_empty()).then_some(host)
}

/// Whether a connection failed because our verifier refused the server's certificate
/// (as opposed to the network, or the server refusing us).
fn server_unauthenticated(err: &tonic::transport::Error) -> bool {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = next {
        let tls = e.downcast_ref::<rustls::Error>().or_else(|| {
            e.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        if let Some(tls) = tls {
            return matches!(
                tls,
                rustls::Error::InvalidCertificate(_)
                    | rustls::Error::NoCertificatesPresented
                    | rustls::Error::Other(_)
            );
        }
        next = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_of_handles_names_and_addresses() {
        assert_eq!(
            host_of("spire-server.spire:8081"),
            Some("spire-server.spire")
        );
        assert_eq!(host_of("127.0.0.1:8081"), Some("127.0.0.1"));
        assert_eq!(host_of("[::1]:8081"), Some("::1"));
        assert_eq!(host_of("spire-server"), None);
        assert_eq!(host_of(":8081"), None);
        assert_eq!(host_of("host:port"), None);
    }

    #[test]
    fn the_server_id_is_under_spire() {
        let td = TrustDomain::new("example.org").unwrap();
        assert_eq!(
            server_id(&td).to_string(),
            "spiffe://example.org/spire/server"
        );
        assert!(matches!(
            Endpoint::tcp("h:1", &td),
            Endpoint::Tcp { server_id: s, .. } if s == server_id(&td)
        ));
    }

    #[test]
    fn config_setters_chain() {
        let c = ClientConfig::default()
            .call_timeout(Duration::from_secs(1))
            .connect_timeout(Duration::from_secs(2))
            .svid_timeout(Duration::from_secs(3))
            .workload_api("unix:///tmp/a.sock")
            .keepalive(None)
            .reconnect_after(0);
        assert_eq!((c.keepalive, c.reconnect_after), (None, 0));
        assert_eq!(c.call_timeout, Duration::from_secs(1));
        assert_eq!(c.connect_timeout, Duration::from_secs(2));
        assert_eq!(c.svid_timeout, Duration::from_secs(3));
        assert_eq!(c.workload_api.as_deref(), Some("unix:///tmp/a.sock"));
    }
}
