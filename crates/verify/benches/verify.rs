//! Benchmarks: the full verification of a Tekton-format TaskRun with ten results, and one
//! ECDSA P-256/SHA-256 signature verification with ring (the backend in use), p256
//! (RustCrypto) and aws-lc-rs side by side. Run with
//! `cargo bench -p tekton-spire-verify --bench verify`; docs/crypto-backend.md has results.
//!
//! The TaskRun and its root come from `tests/python/gen_bench_data.py`.
#![expect(
    clippy::expect_used,
    reason = "a benchmark whose setup fails has nothing to measure"
)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use p256::ecdsa::signature::Verifier as _;
use tekton_spire_verify::{Format, Policy, TaskRun, TrustBundle, TrustDomain, verify};

const TASKRUN: &[u8] = include_bytes!("data/taskrun-10-results.json");
const ROOT_PEM: &[u8] = include_bytes!("data/root.pem");
const TRUST_DOMAIN: &str = "example.org";
const RESULTS: usize = 10;
/// Rounds per case in the closing summary.
const ROUNDS: usize = 15;
/// The length of one round of the closing summary.
const ROUND_TIME: Duration = Duration::from_millis(200);

fn policy() -> Policy {
    let bundle = TrustBundle::load(ROOT_PEM).expect("benches/data/root.pem loads");
    let trust_domain = TrustDomain::new(TRUST_DOMAIN).expect("a valid trust domain");
    Policy::new(trust_domain, bundle).require_format(Format::Tekton)
}

/// The benchmark TaskRun, parsed and checked to verify with all ten results.
fn taskrun(policy: &Policy) -> TaskRun {
    let taskrun = TaskRun::parse(TASKRUN).expect("benches/data TaskRun parses");
    let verified = verify(&taskrun, policy).expect("benches/data TaskRun verifies");
    assert_eq!(
        verified.results().len(),
        RESULTS,
        "regenerate benches/data with tests/python/gen_bench_data.py"
    );
    taskrun
}

fn bench_taskrun(c: &mut Criterion) {
    let policy = policy();
    let taskrun = taskrun(&policy);
    let mut group = c.benchmark_group("tekton_taskrun_10_results");
    // One element is one verification: criterion's "thrpt" reads as verifications/s.
    group.throughput(Throughput::Elements(1));
    group.bench_function("verify", |b| {
        b.iter(|| verify(black_box(&taskrun), black_box(&policy)))
    });
    group.bench_function("parse_and_verify", |b| {
        b.iter(|| {
            let taskrun = TaskRun::parse(black_box(TASKRUN)).expect("parses");
            verify(&taskrun, black_box(&policy))
        })
    });
    group.finish();
}

/// One ECDSA P-256/SHA-256 signature over a 100-byte message, with the public key as an
/// uncompressed SEC1 point and the signature in ASN.1 DER: what an SVID's key and a
/// Tekton `.sig` result hold.
#[derive(Clone)]
struct EcdsaCase {
    public_key: Vec<u8>,
    message: Vec<u8>,
    signature: Vec<u8>,
}

impl EcdsaCase {
    fn new() -> Self {
        use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _};
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            .expect("ring generates a P-256 key");
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
            .expect("ring reads its own key");
        let message = b"sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08,registry.example.org/app/api"
            .to_vec();
        assert_eq!(message.len(), 100);
        let signature = pair
            .sign(&rng, &message)
            .expect("ring signs")
            .as_ref()
            .to_vec();
        let case = Self {
            public_key: pair.public_key().as_ref().to_vec(),
            message,
            signature,
        };
        let mut tampered = case.message.clone();
        tampered[0] ^= 1;
        // docs/seal-format.md: verifiers accept both (r, s) and (r, n-s); one is high-S.
        let mirrored = EcdsaCase {
            signature: mirror_s(&case.signature),
            ..case.clone()
        };
        for (name, check) in BACKENDS {
            assert!(
                check(&mirrored, &mirrored.message),
                "{name} rejects the (r, n-s) form of a good signature"
            );
        }
        for (name, check) in BACKENDS {
            assert!(
                check(&case, &case.message),
                "{name} rejects a good signature"
            );
            assert!(!check(&case, &tampered), "{name} accepts a bad signature");
        }
        case
    }
}

/// The same signature with `s` replaced by `n - s`, DER-encoded.
fn mirror_s(der: &[u8]) -> Vec<u8> {
    use p256::ecdsa::Signature;
    let signature = Signature::from_der(der).expect("ring signs in DER");
    let (r, s) = signature.split_scalars();
    Signature::from_scalars(r.to_bytes(), (-s).to_bytes())
        .expect("n - s is a valid s")
        .to_der()
        .as_bytes()
        .to_vec()
}

/// A backend's name and its verification of a case's signature over a message.
type Backend = (&'static str, fn(&EcdsaCase, &[u8]) -> bool);

/// Each backend verifies from the encoded key and signature, as crypto.rs does with ring:
/// key decoding and the on-curve check are part of every verification there.
const BACKENDS: [Backend; 3] = [
    ("ring", |c, message| {
        use ring::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &c.public_key)
            .verify(message, &c.signature)
            .is_ok()
    }),
    ("p256", |c, message| {
        use p256::ecdsa::{DerSignature, VerifyingKey};
        let Ok(key) = VerifyingKey::from_sec1_bytes(&c.public_key) else {
            return false;
        };
        let Ok(signature) = DerSignature::try_from(c.signature.as_slice()) else {
            return false;
        };
        key.verify(message, &signature).is_ok()
    }),
    ("aws-lc-rs", |c, message| {
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &c.public_key)
            .verify(message, &c.signature)
            .is_ok()
    }),
];

fn bench_ecdsa(c: &mut Criterion) {
    let case = EcdsaCase::new();
    let mut group = c.benchmark_group("ecdsa_p256_sha256_verify_100_bytes");
    group.throughput(Throughput::Elements(1));
    for (name, check) in BACKENDS {
        group.bench_function(name, |b| {
            b.iter(|| check(black_box(&case), black_box(&case.message)))
        });
    }
    group.finish();
}

/// Calls per round so that one round of `f` takes about [`ROUND_TIME`].
fn calibrate(f: &mut dyn FnMut()) -> u32 {
    let mut calls = 1u32;
    loop {
        let start = Instant::now();
        for _ in 0..calls {
            f();
        }
        let elapsed = start.elapsed();
        if elapsed >= ROUND_TIME / 4 {
            let scale = ROUND_TIME.as_secs_f64() / elapsed.as_secs_f64();
            return ((f64::from(calls) * scale) as u32).max(1);
        }
        calls = calls.saturating_mul(2);
    }
}

/// A short table after criterion's output, with the figures docs/crypto-backend.md
/// quotes. The cases run in interleaved rounds and each reports its median round, so a
/// burst of other work on the machine skews neither one case nor the ratios.
fn summary() {
    let policy = policy();
    let taskrun = taskrun(&policy);
    let ecdsa = EcdsaCase::new();
    let mut cases: Vec<(String, Box<dyn FnMut() + '_>)> = vec![(
        format!("verify, Tekton TaskRun with {RESULTS} results"),
        Box::new(|| {
            let _ = black_box(verify(black_box(&taskrun), black_box(&policy)));
        }),
    )];
    for (name, check) in BACKENDS {
        let ecdsa = &ecdsa;
        cases.push((
            format!("ECDSA P-256/SHA-256 verify, {name}"),
            Box::new(move || {
                black_box(check(black_box(ecdsa), black_box(&ecdsa.message)));
            }),
        ));
    }
    let calls: Vec<u32> = cases.iter_mut().map(|(_, f)| calibrate(f)).collect();
    let mut rounds = vec![Vec::with_capacity(ROUNDS); cases.len()];
    for _ in 0..ROUNDS {
        for ((_, f), (calls, times)) in cases.iter_mut().zip(calls.iter().zip(&mut rounds)) {
            let start = Instant::now();
            for _ in 0..*calls {
                f();
            }
            times.push(start.elapsed() / *calls);
        }
    }
    let medians: Vec<Duration> = rounds
        .iter_mut()
        .map(|times| {
            times.sort();
            times[times.len() / 2]
        })
        .collect();
    println!(
        "\nsummary: median of {ROUNDS} interleaved rounds of about {} ms each",
        ROUND_TIME.as_millis()
    );
    let ring = medians[1];
    for (i, ((name, _), time)) in cases.iter().zip(&medians).enumerate() {
        let ratio = if i == 0 {
            String::new()
        } else {
            format!(
                "  {:.2}x ring's time",
                time.as_secs_f64() / ring.as_secs_f64()
            )
        };
        println!(
            "  {name:<44} {:>9.1} us  {:>8.0} verifications/s{ratio}",
            micros(*time),
            1.0 / time.as_secs_f64()
        );
    }
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    bench_taskrun(&mut criterion);
    bench_ecdsa(&mut criterion);
    criterion.final_summary();
    // `cargo bench` passes --bench; `cargo test --benches` runs each case once without it.
    if std::env::args().any(|a| a == "--bench") {
        summary();
    }
}
