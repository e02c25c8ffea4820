//! The signing helper against a real SPIRE server and agent (scripts/spire-local.sh):
//! it signs in both formats and the verifier accepts the result; it waits for an entry
//! that arrives late, gives up with a clear error when none arrives, gets nothing when
//! its selectors do not match, and leaves no private key behind.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use tekton_spire_testbed::spire::Spire;
use tekton_spire_testbed::taskrun::{Meta, from_results_dir};

/// One test's world: a results directory, a private copy of the helper binary (so an
/// entry's `unix:path` selector matches this test's helper and no other), a TaskRun name.
struct Workspace {
    dir: tempfile::TempDir,
    name: String,
}

impl Workspace {
    fn new(name: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("results")).unwrap();
        std::fs::create_dir(dir.path().join("tmp")).unwrap();
        std::fs::copy(
            env!("CARGO_BIN_EXE_tekton-spire-sign"),
            dir.path().join("sign"),
        )
        .unwrap();
        let ws = Self {
            dir,
            name: name.to_owned(),
        };
        ws.write("IMAGE_DIGEST", "sha256:0123456789abcdef");
        ws.write("tags", r#"["v1","latest"]"#);
        ws.write(
            "info",
            r#"{"url":"https://example.org/repo","commit":"abc"}"#,
        );
        ws.write("summary", "built 2 images, pushed 1");
        ws
    }

    fn results(&self) -> PathBuf {
        self.dir.path().join("results")
    }

    fn helper(&self) -> PathBuf {
        self.dir.path().join("sign")
    }

    fn write(&self, name: &str, value: &str) {
        std::fs::write(self.results().join(name), value).unwrap();
    }

    fn spiffe_id(&self, spire: &Spire) -> String {
        format!(
            "spiffe://{}/ns/default/taskrun/{}",
            spire.trust_domain(),
            self.name
        )
    }

    fn register(&self, spire: &Spire) {
        spire
            .register(
                &self.spiffe_id(spire),
                &format!("unix:path:{}", self.helper().display()),
            )
            .unwrap();
    }

    /// The helper `binary` on this workspace's results, claiming attempt 0 of TaskRun
    /// `name`.
    fn command(&self, spire: &Spire, binary: &Path, name: &str, uid: &str) -> Command {
        self.command_for_attempt(spire, binary, (name, uid), "0")
    }

    /// The helper `binary` on this workspace's results, claiming `attempt` (the retry
    /// count as Tekton substitutes it) of TaskRun `name`.
    fn command_for_attempt(
        &self,
        spire: &Spire,
        binary: &Path,
        (name, uid): (&str, &str),
        attempt: &str,
    ) -> Command {
        let mut cmd = Command::new(binary);
        cmd.arg("--results-dir")
            .arg(self.results())
            .args([
                "--taskrun-namespace",
                "default",
                "--taskrun-name",
                name,
                "--taskrun-uid",
                uid,
                "--taskrun-retry-count",
                attempt,
            ])
            .env("SPIFFE_ENDPOINT_SOCKET", spire.workload_socket())
            .env("TMPDIR", self.dir.path().join("tmp"))
            // The attempt is the one given, never one from the environment.
            .env_remove("POD_NAME");
        cmd
    }

    fn sign(&self, spire: &Spire, binary: &Path, format: &str, timeout_secs: u64) -> Output {
        self.command(spire, binary, &self.name, "uid-1")
            .args(["--format", format, "--timeout", &timeout_secs.to_string()])
            .output()
            .unwrap()
    }

    /// Writes the TaskRun as Tekton would report it and runs `tekton-spire verify`.
    fn verify(&self, spire: &Spire, extra: &[&str]) -> Output {
        let bundle_path = self.dir.path().join("bundle.json");
        std::fs::write(&bundle_path, spire.bundle("spiffe").unwrap()).unwrap();
        self.verify_with(&bundle_path, spire.trust_domain(), extra)
    }

    /// The TaskRun as Tekton would report it once the helper has run.
    fn taskrun(&self) -> serde_json::Value {
        let meta = Meta::just_completed("default", &self.name, "uid-1");
        from_results_dir(&self.results(), &meta).unwrap()
    }

    /// Runs `tekton-spire verify -o json` on `taskrun` with SPIRE's bundle.
    fn verify_document(&self, spire: &Spire, taskrun: &serde_json::Value) -> Output {
        let bundle_path = self.dir.path().join("bundle.json");
        std::fs::write(&bundle_path, spire.bundle("spiffe").unwrap()).unwrap();
        let tr_path = self.dir.path().join("taskrun.json");
        std::fs::write(&tr_path, serde_json::to_vec(taskrun).unwrap()).unwrap();
        Command::new(env!("CARGO_BIN_EXE_tekton-spire"))
            .args(["verify", "--output", "json", "--trust-domain"])
            .arg(spire.trust_domain())
            .arg("--taskrun")
            .arg(&tr_path)
            .arg("--bundle")
            .arg(&bundle_path)
            .output()
            .unwrap()
    }

    fn verify_with(&self, bundle: &Path, trust_domain: &str, extra: &[&str]) -> Output {
        let taskrun = self.taskrun();
        let tr_path = self.dir.path().join("taskrun.json");
        std::fs::write(&tr_path, serde_json::to_vec(&taskrun).unwrap()).unwrap();
        Command::new(env!("CARGO_BIN_EXE_tekton-spire"))
            .args([
                "verify",
                "--output",
                "json",
                "--accept-tekton-format",
                "--trust-domain",
                trust_domain,
            ])
            .arg("--taskrun")
            .arg(&tr_path)
            .arg("--bundle")
            .arg(bundle)
            .args(extra)
            .output()
            .unwrap()
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stderr(out)))
}

#[test]
fn the_helper_seals_results_and_the_verifier_accepts_them() {
    let spire = Spire::shared();
    let ws = Workspace::new("seal-ok");
    ws.register(spire);
    let out = ws.sign(spire, &ws.helper(), "seal", 30);
    assert!(out.status.success(), "helper failed: {}", stderr(&out));
    assert!(ws.results().join("TEKTON_SPIRE_SEAL").exists());

    let verdict = ws.verify(spire, &["--require-format", "seal"]);
    assert_eq!(verdict.status.code(), Some(0), "{}", stderr(&verdict));
    let v = json(&verdict);
    assert_eq!(v["format"], "seal");
    assert_eq!(v["spiffeId"], ws.spiffe_id(spire));
    assert_eq!(v["results"].as_array().unwrap().len(), 4);

    // The same status with one result changed after signing is rejected.
    ws.write("IMAGE_DIGEST", "sha256:fedcba9876543210");
    let tampered = ws.verify(spire, &[]);
    assert_eq!(tampered.status.code(), Some(1));
    assert_eq!(json(&tampered)["reason"]["code"], "signature.invalid");
}

/// Issue 11, "bundles as they come": what `spire-server bundle show` prints, in each of
/// its formats, as DER, and as a directory, is trust material as it is; so is the trust
/// domain in go-spiffe's `spiffe://` form.
#[test]
fn the_verifier_takes_spires_bundle_in_every_form_spire_prints_it() {
    let spire = Spire::shared();
    let ws = Workspace::new("bundle-forms");
    ws.register(spire);
    let out = ws.sign(spire, &ws.helper(), "seal", 30);
    assert!(out.status.success(), "helper failed: {}", stderr(&out));

    let forms = ws.dir.path().join("forms");
    std::fs::create_dir(&forms).unwrap();
    let pem = spire.bundle("pem").unwrap();
    let spiffe = spire.bundle("spiffe").unwrap();
    let json_output = spire
        .server_cli(&["bundle", "show"], &["-output", "json"])
        .unwrap();
    let der: Vec<u8> = pem::parse_many(&pem)
        .unwrap()
        .into_iter()
        .flat_map(pem::Pem::into_contents)
        .collect();
    std::fs::write(forms.join("bundle.pem"), &pem).unwrap();
    std::fs::write(forms.join("bundle.spiffe.json"), &spiffe).unwrap();
    std::fs::write(forms.join("bundle.spire.json"), &json_output).unwrap();
    std::fs::write(forms.join("bundle.der"), &der).unwrap();
    let td = spire.trust_domain();
    let spiffe_td = format!("spiffe://{td}");
    for (bundle, trust_domain) in [
        (forms.join("bundle.pem"), td),
        (forms.join("bundle.spiffe.json"), td),
        (forms.join("bundle.spire.json"), td),
        (forms.join("bundle.der"), td),
        (forms.clone(), td),
        (forms.join("bundle.pem"), spiffe_td.as_str()),
    ] {
        let verdict = ws.verify_with(&bundle, trust_domain, &[]);
        assert_eq!(
            verdict.status.code(),
            Some(0),
            "{} with --trust-domain {trust_domain}: {}\nbundle: {}",
            bundle.display(),
            stderr(&verdict),
            std::fs::read_to_string(&bundle).unwrap_or_default()
        );
    }

    // What cannot be used says what it found and what it expected.
    let key = forms.join("key.pem");
    std::fs::write(
        &key,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let verdict = ws.verify_with(&key, td, &[]);
    assert_eq!(verdict.status.code(), Some(2));
    let message = json(&verdict)["reason"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains("found a PRIVATE KEY block; expected CERTIFICATE"),
        "{message}"
    );
}

#[test]
fn the_helper_signs_tektons_format_and_the_verifier_accepts_it() {
    let spire = Spire::shared();
    let ws = Workspace::new("tekton-ok");
    ws.register(spire);
    let out = ws.sign(spire, &ws.helper(), "tekton", 30);
    assert!(out.status.success(), "helper failed: {}", stderr(&out));
    for name in [
        "SVID",
        "RESULT_MANIFEST",
        "RESULT_MANIFEST.sig",
        "IMAGE_DIGEST.sig",
        "tags.sig",
        "info.sig",
    ] {
        assert!(ws.results().join(name).exists(), "{name} missing");
    }
    let verdict = ws.verify(spire, &[]);
    assert_eq!(verdict.status.code(), Some(0), "{}", stderr(&verdict));
    assert_eq!(json(&verdict)["format"], "tekton");

    // Signing twice is refused: the signature results exist.
    let again = ws.sign(spire, &ws.helper(), "tekton", 5);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains("refusing to overwrite"),
        "{}",
        stderr(&again)
    );
}

#[test]
fn the_helper_started_before_its_entry_exists_signs_once_the_entry_arrives() {
    let spire = Spire::shared();
    let ws = Workspace::new("late-entry");
    let mut child = ws
        .command(spire, &ws.helper(), &ws.name, "uid-1")
        .args(["--timeout", "60"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the helper must still be waiting"
    );
    let registered = Instant::now();
    ws.register(spire);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "helper failed: {}", stderr(&out));
    eprintln!("entry to signed results: {:?}", registered.elapsed());
    assert!(
        stderr(&out).contains("waiting for the registration entry"),
        "{}",
        stderr(&out)
    );
    assert_eq!(ws.verify(spire, &[]).status.code(), Some(0));
}

#[test]
fn without_an_entry_the_helper_gives_up_at_its_deadline_with_advice() {
    let spire = Spire::shared();
    let ws = Workspace::new("no-entry");
    let started = Instant::now();
    let out = ws.sign(spire, &ws.helper(), "seal", 3);
    assert_eq!(out.status.code(), Some(1));
    assert!(started.elapsed() >= Duration::from_secs(3));
    let err = stderr(&out);
    assert!(
        err.contains("no X.509-SVID was issued to this process"),
        "{err}"
    );
    assert!(err.contains("registration entry"), "{err}");
    assert!(!ws.results().join("TEKTON_SPIRE_SEAL").exists());
}

#[test]
fn a_process_whose_selectors_do_not_match_gets_no_svid() {
    let spire = Spire::shared();
    let ws = Workspace::new("wrong-selector");
    ws.register(spire);
    // Same program, other path: the unix:path selector does not match it.
    let impostor = ws.dir.path().join("impostor");
    std::fs::copy(ws.helper(), &impostor).unwrap();
    let out = ws.sign(spire, &impostor, "seal", 4);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no X.509-SVID was issued"),
        "{}",
        stderr(&out)
    );
    // While the right binary gets it.
    assert!(ws.sign(spire, &ws.helper(), "seal", 30).status.success());
}

#[test]
fn signing_leaves_no_private_key_in_the_results_or_temporary_files() {
    let spire = Spire::shared();
    let ws = Workspace::new("no-key-left");
    ws.register(spire);
    assert!(ws.sign(spire, &ws.helper(), "tekton", 30).status.success());
    std::fs::remove_dir_all(ws.results()).unwrap();
    std::fs::create_dir(ws.results()).unwrap();
    ws.write("IMAGE_DIGEST", "sha256:0");
    assert!(ws.sign(spire, &ws.helper(), "seal", 30).status.success());

    // PKCS#8 and SEC1 encodings of an EC key, and every PEM private key label.
    let ec_pkcs8_prefix: &[u8] = &[
        0x02, 0x01, 0x00, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
    ];
    let sec1_prefix: &[u8] = &[0x02, 0x01, 0x01, 0x04, 0x20];
    let mut scanned = 0;
    for dir in [ws.results(), ws.dir.path().join("tmp")] {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            scanned += 1;
            let mut views = vec![bytes.clone()];
            // Also look inside every base64 and base64url field of the file.
            for field in String::from_utf8_lossy(&bytes).split(['.', '\n', '"', ',']) {
                use base64::Engine as _;
                for engine in [
                    base64::engine::general_purpose::STANDARD,
                    base64::engine::general_purpose::URL_SAFE_NO_PAD,
                ] {
                    if let Ok(decoded) = engine.decode(field.trim()) {
                        views.push(decoded);
                    }
                }
            }
            for view in views {
                let text = String::from_utf8_lossy(&view);
                assert!(
                    !text.contains("PRIVATE KEY"),
                    "{} holds a PEM private key",
                    path.display()
                );
                for prefix in [ec_pkcs8_prefix, sec1_prefix] {
                    assert!(
                        !view.windows(prefix.len()).any(|w| w == prefix),
                        "{} holds DER private key material",
                        path.display()
                    );
                }
            }
        }
    }
    assert!(scanned >= 2, "nothing was scanned");
    assert_eq!(
        std::fs::read_dir(ws.dir.path().join("tmp"))
            .unwrap()
            .count(),
        0,
        "the helper left temporary files"
    );
}

#[test]
fn an_unreadable_results_directory_fails_fast_with_advice() {
    let spire = Spire::shared();
    let out = Command::new(env!("CARGO_BIN_EXE_tekton-spire-sign"))
        .args([
            "--results-dir",
            "/nonexistent/results",
            "--format",
            "tekton",
            "--timeout",
            "30",
        ])
        .env("SPIFFE_ENDPOINT_SOCKET", spire.workload_socket())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("cannot read the results directory"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_unsubstituted_taskrun_identity_is_refused_before_anything_is_fetched() {
    let spire = Spire::shared();
    let ws = Workspace::new("unsubstituted");
    let out = ws
        .command(spire, &ws.helper(), &ws.name, "$(context.taskRun.uid)")
        .args(["--timeout", "30"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("pass $(context.taskRun.uid)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_svid_naming_another_taskrun_is_not_used_to_seal() {
    let spire = Spire::shared();
    let ws = Workspace::new("entry-for-a");
    ws.register(spire);
    let out = ws
        .command(spire, &ws.helper(), "b-instead", "uid-1")
        .args(["--timeout", "30"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    // It waited for the TaskRun's SVID, and names the one it got instead.
    assert!(
        stderr(&out).contains("none of the X.509-SVIDs issued to this process")
            && stderr(&out).contains("/taskrun/entry-for-a"),
        "{}",
        stderr(&out)
    );
    assert!(!ws.results().join("TEKTON_SPIRE_SEAL").exists());
}

/// Issue 13, `retries`: Tekton retries a TaskRun by moving the failed attempt's status,
/// its sealed results included, to `status.retriesStatus`, and names the next pod
/// `-pod-retry<N>` (the helper reads it from POD_NAME). Each attempt's helper
/// seals its attempt with the real SVID; the final status verifies, and the first
/// attempt's sealed results copied into the final status are rejected.
#[test]
fn a_seal_copied_from_an_earlier_attempt_is_rejected_and_the_last_attempt_verifies() {
    let spire = Spire::shared();
    let ws = Workspace::new("retried");
    ws.register(spire);
    let sign = |attempt: &str| {
        let out = ws
            .command_for_attempt(spire, &ws.helper(), (&ws.name, "uid-1"), attempt)
            .args(["--timeout", "30"])
            .output()
            .unwrap();
        assert!(out.status.success(), "attempt {attempt}: {}", stderr(&out));
    };

    // Attempt 0 seals its results, then fails; Tekton archives its status.
    ws.write("IMAGE_DIGEST", "sha256:first-attempt");
    sign("0");
    let mut first = ws.taskrun()["status"].clone();
    first["conditions"] = serde_json::json!([{"type": "Succeeded", "status": "False",
                                              "reason": "Failed"}]);
    first["podName"] = "retried-pod".into();
    // Attempt 1: a new pod, a new results directory, sealed as attempt 1.
    std::fs::remove_file(ws.results().join("TEKTON_SPIRE_SEAL")).unwrap();
    ws.write("IMAGE_DIGEST", "sha256:second-attempt");
    sign("1");
    let mut last = ws.taskrun();
    last["status"]["podName"] = "retried-pod-retry1".into();
    last["status"]["retriesStatus"] = serde_json::json!([first.clone()]);

    let verdict = ws.verify_document(spire, &last);
    assert_eq!(verdict.status.code(), Some(0), "{}", stderr(&verdict));
    assert_eq!(json(&verdict)["verdict"], "verified");

    // Whoever writes taskruns/status copies attempt 0's sealed results and run times.
    let mut copied = last.clone();
    for field in ["results", "startTime", "completionTime"] {
        copied["status"][field] = first[field].clone();
    }
    let verdict = ws.verify_document(spire, &copied);
    assert_eq!(verdict.status.code(), Some(1), "{}", stderr(&verdict));
    assert_eq!(json(&verdict)["reason"]["code"], "seal.attempt-mismatch");

    // Attempt 1's own seal, with the history dropped, names an attempt the status lacks.
    let mut dropped = last.clone();
    dropped["status"]
        .as_object_mut()
        .unwrap()
        .remove("retriesStatus");
    let verdict = ws.verify_document(spire, &dropped);
    assert_eq!(verdict.status.code(), Some(1), "{}", stderr(&verdict));
    assert_eq!(json(&verdict)["reason"]["code"], "seal.attempt-mismatch");
}

#[test]
fn the_helper_refuses_to_seal_without_the_retry_count_and_says_what_to_pass() {
    let spire = Spire::shared();
    let ws = Workspace::new("no-retry-count");
    // The helper asked to seal, with no attempt given (POD_NAME unset).
    let without_attempt = || {
        let mut cmd = Command::new(ws.helper());
        cmd.arg("--results-dir")
            .arg(ws.results())
            .args(["--taskrun-namespace", "default", "--taskrun-name", "b"])
            .args(["--taskrun-uid", "uid-1", "--timeout", "1"])
            .env("SPIFFE_ENDPOINT_SOCKET", spire.workload_socket())
            .env_remove("POD_NAME");
        cmd
    };
    let out = without_attempt().output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--taskrun-retry-count"),
        "{}",
        stderr(&out)
    );

    // The attempt from the pod's name: only the names Tekton gives its pods.
    for pod in ["build-abc", "build-abc-pod-retry0", "build-abc-pod-retry01"] {
        let out = without_attempt().env("POD_NAME", pod).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{pod}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("does not say which attempt"),
            "{pod}: {}",
            stderr(&out)
        );
    }

    for (given, advice) in [
        ("$(context.task.retry-count)", "was not substituted"),
        ("01", "not a retry count"),
    ] {
        let out = ws
            .command_for_attempt(spire, &ws.helper(), (&ws.name, "uid-1"), given)
            .args(["--timeout", "1"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{given}: {}", stderr(&out));
        assert!(stderr(&out).contains(advice), "{given}: {}", stderr(&out));
    }
    assert!(!ws.results().join("TEKTON_SPIRE_SEAL").exists());
}
