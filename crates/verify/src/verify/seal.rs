//! Verification of the tekton-spire seal.

use crate::seal::{RESULT_NAME, Seal, TaskRunIdentity, Version, message};
use crate::taskrun::TaskRun;
use crate::verify::{
    Format, Policy, Rejection, RunTimes, Verified, chain, check_identity, check_signature,
};

/// Checks, in order:
/// 1. the seal result is a string that parses;
/// 2. the TaskRun has a UID, and the seal was made in the attempt the status reports (a
///    `sealv1`, which binds none, only on a TaskRun never retried);
/// 3. the signing time lies within the TaskRun's run, give or take the clock skew;
/// 4. the chain leads to the bundle, judged at the signing time, and its leaf is an
///    X.509-SVID;
/// 5. the leaf's SPIFFE ID is this TaskRun's;
/// 6. the signature verifies over the message rebuilt from the status: identity, attempt,
///    signing time and every result but the seal.
pub(super) fn verify(
    taskrun: &TaskRun,
    policy: &Policy,
    run: RunTimes,
) -> Result<Verified, Rejection> {
    // 1. Parse.
    let malformed = |problem: String| Rejection::MalformedMaterial {
        result: RESULT_NAME.into(),
        problem,
    };
    let value = taskrun
        .result(RESULT_NAME)
        .and_then(|r| r.value.as_str())
        .ok_or_else(|| malformed("it must be a string".into()))?;
    let seal = Seal::parse(value).map_err(|e| malformed(e.to_string()))?;

    // 2. UID and attempt.
    let uid = taskrun
        .uid
        .as_deref()
        .filter(|uid| !uid.is_empty())
        .ok_or(Rejection::MissingUid)?;
    // The attempt is signed (step 6); checking it first names the copy for what it is.
    let earlier = taskrun.earlier_attempts;
    match seal.version() {
        Version::V2 { attempt } if usize::try_from(attempt).ok() != Some(earlier) => {
            return Err(Rejection::AttemptMismatch {
                sealed: attempt,
                reported: earlier,
            });
        }
        Version::V1 if earlier > 0 => return Err(Rejection::AttemptUnbound { earlier }),
        Version::V1 | Version::V2 { .. } => {}
    }

    // 3. Signing time within the run.
    let signed_at = seal.signed_at();
    // Checked: a bound beyond the representable range (year 9999 and skew) is no bound.
    let too_early = run
        .start
        .checked_sub(policy.clock_skew)
        .is_some_and(|earliest| signed_at < earliest);
    let too_late = run
        .completion
        .checked_add(policy.clock_skew)
        .is_some_and(|latest| signed_at > latest);
    if too_early || too_late {
        return Err(Rejection::SignedOutsideRun {
            signed_at,
            start: run.start,
            completion: run.completion,
            skew_seconds: policy.clock_skew.whole_seconds(),
        });
    }

    // 4. Chain, 5. identity.
    let leaf = chain::verify_chain(seal.chain(), &policy.bundle, signed_at)?;
    check_identity(&leaf.spiffe_id, taskrun, policy)?;

    // 6. Signature.
    let identity = TaskRunIdentity {
        namespace: &taskrun.namespace,
        name: &taskrun.name,
        uid,
    };
    let results = taskrun.results.iter().filter(|r| r.name != RESULT_NAME);
    let msg = message(
        identity,
        seal.version(),
        signed_at,
        results.clone().map(|r| (r.name.as_str(), &r.value)),
    );
    check_signature(&leaf.key, &msg, seal.signature(), "the seal's message")?;

    let mut names: Vec<String> = results.map(|r| r.name.clone()).collect();
    names.sort();
    Ok(Verified {
        format: Format::Seal,
        spiffe_id: leaf.spiffe_id,
        signed_at,
        results: names,
    })
}
