//! Verification of Tekton's TEP-0089 format.

use std::collections::BTreeSet;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::legacy::{MANIFEST, SIGNATURE_SUFFIX, SVID, is_material, signed_string};
use crate::taskrun::TaskRun;
use crate::verify::{
    Format, Policy, Rejection, RunTimes, Verified, chain, check_identity, check_signature,
};

/// Checks, in order:
/// 1. `SVID`, `RESULT_MANIFEST` and `RESULT_MANIFEST.sig` are present and parse;
/// 2. the SVID's chain leads to the bundle, judged at the completion time (the format
///    signs no time), and its leaf is an X.509-SVID;
/// 3. the leaf's SPIFFE ID is this TaskRun's;
/// 4. `RESULT_MANIFEST.sig` verifies over the manifest;
/// 5. the manifest's names equal the status's results (signature material aside), and
///    every `.sig` belongs to one of them;
/// 6. every result's signature verifies over Tekton's signed string.
pub(super) fn verify(
    taskrun: &TaskRun,
    policy: &Policy,
    run: RunTimes,
) -> Result<Verified, Rejection> {
    // 1. Material.
    let svid = material(taskrun, SVID)?;
    let chain = parse_pem_chain(svid)?;
    let manifest = material(taskrun, MANIFEST)?;
    let manifest_signature = signature(taskrun, MANIFEST)?;

    // 2. Chain, 3. identity.
    let leaf = chain::verify_chain(&chain, &policy.bundle, run.completion)?;
    check_identity(&leaf.spiffe_id, taskrun, policy)?;

    // 4. The manifest.
    check_signature(
        &leaf.key,
        manifest.as_bytes(),
        &manifest_signature,
        MANIFEST,
    )?;

    // 5. Completeness.
    let mut signed = BTreeSet::new();
    for name in manifest.split(',').filter(|n| !n.is_empty()) {
        if !signed.insert(name) {
            return Err(Rejection::MalformedMaterial {
                result: MANIFEST.into(),
                problem: format!("{name:?} is listed twice"),
            });
        }
    }
    let results: BTreeSet<&str> = taskrun
        .results
        .iter()
        .map(|r| r.name.as_str())
        .filter(|n| !is_material(n))
        .collect();
    if let Some(missing) = signed.difference(&results).next() {
        return Err(Rejection::MissingResult {
            result: (*missing).into(),
        });
    }
    if let Some(unsigned) = results.difference(&signed).next() {
        return Err(Rejection::UnsignedResult {
            result: (*unsigned).into(),
        });
    }
    for r in &taskrun.results {
        if let Some(target) = r.name.strip_suffix(SIGNATURE_SUFFIX)
            && target != MANIFEST
            && !results.contains(target)
        {
            return Err(Rejection::StraySignature {
                signature: r.name.clone(),
            });
        }
    }

    // 6. Every result's signature.
    for r in taskrun
        .results
        .iter()
        .filter(|r| results.contains(r.name.as_str()))
    {
        let sig = signature(taskrun, &r.name).map_err(|e| match e {
            Rejection::MissingMaterial { .. } => Rejection::UnsignedResult {
                result: r.name.clone(),
            },
            other => other,
        })?;
        check_signature(&leaf.key, signed_string(&r.value).as_bytes(), &sig, &r.name)?;
    }

    Ok(Verified {
        format: Format::Tekton,
        spiffe_id: leaf.spiffe_id,
        signed_at: run.completion,
        results: results.into_iter().map(str::to_owned).collect(),
    })
}

/// A material result's string value.
fn material<'t>(taskrun: &'t TaskRun, name: &str) -> Result<&'t str, Rejection> {
    let result = taskrun
        .result(name)
        .ok_or_else(|| Rejection::MissingMaterial {
            result: name.into(),
        })?;
    result
        .value
        .as_str()
        .ok_or_else(|| Rejection::MalformedMaterial {
            result: name.into(),
            problem: format!("it must be a string, not an {}", result.value.type_name()),
        })
}

/// The decoded `<name>.sig` result.
fn signature(taskrun: &TaskRun, name: &str) -> Result<Vec<u8>, Rejection> {
    let sig_name = format!("{name}{SIGNATURE_SUFFIX}");
    let text = material(taskrun, &sig_name)?;
    STANDARD
        .decode(text)
        .map_err(|e| Rejection::MalformedMaterial {
            result: sig_name,
            problem: format!("not standard base64: {e}"),
        })
}

fn parse_pem_chain(text: &str) -> Result<Vec<Vec<u8>>, Rejection> {
    let malformed = |problem: String| Rejection::MalformedMaterial {
        result: SVID.into(),
        problem,
    };
    let blocks = pem::parse_many(text).map_err(|e| malformed(format!("not PEM: {e}")))?;
    if blocks.is_empty() {
        return Err(malformed("no PEM CERTIFICATE block".into()));
    }
    if blocks.len() > chain::MAX_CHAIN_LEN {
        return Err(malformed(format!(
            "more than {} certificates",
            chain::MAX_CHAIN_LEN
        )));
    }
    blocks
        .into_iter()
        .map(|b| {
            if b.tag() == "CERTIFICATE" {
                Ok(b.into_contents())
            } else {
                Err(malformed(format!("unexpected {} PEM block", b.tag())))
            }
        })
        .collect()
}
