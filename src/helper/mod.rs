//! The signing helper: runs as a Task's last step, fetches the pod's X.509-SVID from the
//! SPIRE agent and signs the results the earlier steps wrote.
//!
//! It never writes or logs the private key: the key lives in memory only, inside the
//! `spiffe` crate's zeroizing type and ring's key pair, for the time it takes to sign.

mod results_dir;
mod signer;
mod svid;

use std::path::PathBuf;
use std::time::Duration;

use tekton_spire_verify::seal::{self, Seal, TaskRunIdentity, Version};
use tekton_spire_verify::{ResultValue, legacy};

pub use results_dir::{DeclaredType, ResultSpec, ResultsDirError};
pub use signer::SignerError;
pub use svid::{Backoff, FetchError};

/// Where Tekton mounts a step's results.
pub const DEFAULT_RESULTS_DIR: &str = "/tekton/results";
/// The Workload API socket the SPIFFE CSI driver mounts into task pods.
pub const DEFAULT_SOCKET: &str = "unix:///spiffe-workload-api/spire-agent.sock";

/// Which format to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// The tekton-spire seal (`sealv2`): one `TEKTON_SPIRE_SEAL` result binding the
    /// TaskRun's identity (from `$(context.taskRun.namespace)`, `.name` and `.uid`) and
    /// attempt (read from the pod's name, `-pod-retry<N>`).
    Seal {
        /// `$(context.taskRun.namespace)`.
        namespace: String,
        /// `$(context.taskRun.name)`.
        name: String,
        /// `$(context.taskRun.uid)`.
        uid: String,
        /// The attempt: 0 for the first, then 1, 2, ... (the pod's `-pod-retry<N>`).
        attempt: u32,
    },
    /// Tekton's TEP-0089 format: `SVID`, `RESULT_MANIFEST` and one `.sig` per result.
    Tekton,
}

/// What the helper does.
#[non_exhaustive]
#[derive(Debug, Clone)]
pub struct Config {
    /// The results directory to read and write.
    pub results_dir: PathBuf,
    /// The Workload API endpoint, `unix:///path` or `unix:/path`.
    pub socket: String,
    /// How long to wait for the SVID before giving up.
    pub deadline: Duration,
    /// The format to write.
    pub output: Output,
    /// The results to sign, with their declared types; empty signs every file in the
    /// results directory, typed by their text. List the Task's declared results when
    /// steps write files the Task does not declare, or a `string` result holds JSON.
    pub results: Vec<ResultSpec>,
}

impl Config {
    /// A configuration with Tekton's results directory, the CSI driver's socket and a
    /// 60-second deadline.
    pub fn new(output: Output) -> Self {
        Self {
            results_dir: DEFAULT_RESULTS_DIR.into(),
            socket: DEFAULT_SOCKET.into(),
            deadline: Duration::from_secs(60),
            output,
            results: Vec::new(),
        }
    }
}

/// Why signing failed. None of these is retried by the helper beyond its deadline.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The results directory could not be read or written.
    #[error(transparent)]
    ResultsDir(#[from] ResultsDirError),
    /// No SVID could be had before the deadline.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The SVID's key could not sign.
    #[error(transparent)]
    Signer(#[from] SignerError),
    /// The TaskRun's identity given on the command line is unusable.
    #[error(
        "--taskrun-{field} is {value:?}: pass $(context.taskRun.{field}) in the step's args so Tekton substitutes it"
    )]
    Identity {
        /// `namespace`, `name` or `uid`.
        field: &'static str,
        /// The value given.
        value: String,
    },
}

/// What the helper wrote.
#[derive(Debug, Clone)]
pub struct Signed {
    /// The SVID's SPIFFE ID.
    pub spiffe_id: String,
    /// Names of the results signed.
    pub results: Vec<String>,
    /// Names of the signature results written.
    pub written: Vec<String>,
}

/// Reads the results, fetches the SVID, signs and writes the signature results.
///
/// # Errors
/// When the directory cannot be read, already holds signature results, no SVID arrives
/// before the deadline, or writing fails. Nothing is half-written: each result file is
/// written to a temporary file and renamed into place.
pub async fn run(config: &Config) -> Result<Signed, Error> {
    if let Output::Seal {
        namespace,
        name,
        uid,
        ..
    } = &config.output
    {
        for (field, value) in [("namespace", namespace), ("name", name), ("uid", uid)] {
            if value.is_empty() || value.contains("$(") {
                return Err(Error::Identity {
                    field,
                    value: value.clone(),
                });
            }
        }
    }
    let dir = results_dir::ResultsDir::open(&config.results_dir)?;
    let signature_names = match &config.output {
        Output::Seal { .. } => vec![seal::RESULT_NAME.to_owned()],
        Output::Tekton => Vec::new(),
    };
    dir.refuse_existing_signatures(&signature_names)?;
    let results = dir.read_results(&config.results)?;
    tracing::info!(
        results = results.len(),
        dir = %config.results_dir.display(),
        "read results; fetching the X.509-SVID"
    );

    let expected_path = match &config.output {
        Output::Seal {
            namespace, name, ..
        } => Some(format!("/ns/{namespace}/taskrun/{name}")),
        Output::Tekton => None,
    };
    let wanted = match &expected_path {
        Some(path) => svid::Wanted::Path(path),
        None => svid::Wanted::Default,
    };
    let svid = svid::fetch(&config.socket, config.deadline, &Backoff::default(), wanted).await?;
    let spiffe_id = svid.spiffe_id().to_string();
    let signer = signer::Signer::from_pkcs8(svid.private_key().as_ref())?;
    let chain: Vec<Vec<u8>> = svid
        .cert_chain()
        .iter()
        .map(|c| c.as_ref().to_vec())
        .collect();
    drop(svid);

    let names: Vec<String> = results.iter().map(|(n, _)| n.clone()).collect();
    let files = match &config.output {
        Output::Seal {
            namespace,
            name,
            uid,
            attempt,
        } => {
            let signed_at = time::OffsetDateTime::now_utc();
            let identity = TaskRunIdentity {
                namespace,
                name,
                uid,
            };
            let msg = seal::message(
                identity,
                Version::V2 { attempt: *attempt },
                signed_at,
                results.iter().map(|(n, v)| (n.as_str(), v)),
            );
            let seal = Seal::new(*attempt, signed_at, signer.sign(&msg)?, chain);
            vec![(seal::RESULT_NAME.to_owned(), seal.encode())]
        }
        Output::Tekton => tekton_files(&signer, &results, &chain)?,
    };
    dir.write_results(&files)?;
    Ok(Signed {
        spiffe_id,
        results: names,
        written: files.into_iter().map(|(n, _)| n).collect(),
    })
}

/// Tekton's format: a signature per result, the manifest and its signature, the chain.
fn tekton_files(
    signer: &signer::Signer,
    results: &[(String, ResultValue)],
    chain: &[Vec<u8>],
) -> Result<Vec<(String, String)>, Error> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut files = Vec::with_capacity(results.len() + 3);
    for (name, value) in results {
        let sig = signer.sign(legacy::signed_string(value).as_bytes())?;
        files.push((
            format!("{name}{}", legacy::SIGNATURE_SUFFIX),
            b64.encode(sig),
        ));
    }
    let manifest = results
        .iter()
        .map(|(n, _)| n.as_str())
        .collect::<Vec<_>>()
        .join(",");
    let manifest_sig = signer.sign(manifest.as_bytes())?;
    files.push((
        format!("{}{}", legacy::MANIFEST, legacy::SIGNATURE_SUFFIX),
        b64.encode(manifest_sig),
    ));
    files.push((legacy::MANIFEST.to_owned(), manifest));
    let pem: String = chain
        .iter()
        .map(|der| {
            let block = pem::Pem::new("CERTIFICATE", der.clone());
            pem::encode_config(
                &block,
                pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
            )
        })
        .collect();
    files.push((legacy::SVID.to_owned(), pem));
    Ok(files)
}
