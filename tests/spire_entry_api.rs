//! The SPIRE client (`tekton_spire::spire`) against a real spire-server and spire-agent
//! (scripts/spire-local.sh): paging through hundreds of entries, idempotent batch creates
//! and deletes with caller-chosen IDs, what the server does with taken or duplicate IDs,
//! the hint filter, error classification, and mutual TLS with an admin X509-SVID.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::BTreeSet;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use spiffe::{SpiffeId, TrustDomain};
use tekton_spire::spire::{
    Client, ClientConfig, CreateOutcome, DeleteOutcome, Endpoint, EntryId, EntrySpec, Error,
    LIST_PAGE_SIZE, ListFilter, SelectorMatch,
};
use tekton_spire_testbed::spire::{Propagation, Spire};
use tonic::Code;

/// Entries listed back in the paging test: below a page, one page, several pages.
const PAGING_COUNTS: [usize; 3] = [120, LIST_PAGE_SIZE, 2 * LIST_PAGE_SIZE + 50];

/// Fails the test instead of hanging it.
async fn within<F: Future>(secs: u64, fut: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(secs), fut)
        .await
        .unwrap_or_else(|_| panic!("test did not finish within {secs} s"))
}

async fn admin_socket_client(spire: &Spire) -> Client {
    Client::connect(
        Endpoint::AdminSocket(spire.server_socket().to_path_buf()),
        ClientConfig::default().call_timeout(Duration::from_secs(20)),
    )
    .await
    .unwrap()
}

fn trust_domain(spire: &Spire) -> TrustDomain {
    TrustDomain::new(spire.trust_domain()).unwrap()
}

fn id(s: &str) -> SpiffeId {
    SpiffeId::new(s).unwrap()
}

/// A TaskRun-pod-shaped entry, tagged with `hint` (unique per test).
fn spec(spire: &Spire, hint: &str, n: usize) -> EntrySpec {
    let mut spec = EntrySpec::new(
        EntryId::new(format!("{hint}.{n:04}")).unwrap(),
        id(&format!(
            "spiffe://{}/ns/{hint}/taskrun/run-{n}",
            spire.trust_domain()
        )),
        id(spire.agent_id()),
        [
            format!("k8s:pod-uid:{hint}-uid-{n}").parse().unwrap(),
            format!("k8s:pod-name:run-{n}-pod").parse().unwrap(),
            format!("k8s:ns:{hint}").parse().unwrap(),
        ],
    );
    spec.hint = hint.to_owned();
    spec.x509_svid_ttl = Some(Duration::from_secs(600));
    spec
}

fn specs(spire: &Spire, hint: &str, count: usize) -> Vec<EntrySpec> {
    (0..count).map(|n| spec(spire, hint, n)).collect()
}

fn ids(specs: &[EntrySpec]) -> Vec<EntryId> {
    specs.iter().map(|s| s.id.clone()).collect()
}

async fn create_all(client: &Client, specs: &[EntrySpec]) {
    let outcomes = client.batch_create(specs).await.unwrap();
    assert_eq!(outcomes.len(), specs.len());
    for (spec, outcome) in specs.iter().zip(outcomes) {
        match outcome {
            Ok(CreateOutcome::Created(entry)) => assert_eq!(entry.spec, *spec),
            other => panic!("{}: {other:?}", spec.id),
        }
    }
}

async fn listed_ids(client: &Client, hint: &str) -> Vec<String> {
    client
        .list_entries(&ListFilter::default().by_hint(hint))
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.spec.id.to_string())
        .collect()
}

fn sorted_unique(ids: &[String]) -> BTreeSet<String> {
    let set: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(set.len(), ids.len(), "an entry was listed twice");
    set
}

/// Counts the client's `ListEntries` calls. An observer belongs to its client, so tests
/// running alongside cannot add to the count (a thread-scoped log subscriber can miss
/// events when another thread registers the same callsite first).
fn counting_list_calls(client: Client) -> (Client, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let client = client.with_observer(Arc::new(move |method, _| {
        if method == "ListEntries" {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    }));
    (client, calls)
}

#[tokio::test]
async fn entries_created_in_batches_are_listed_back_across_page_boundaries() {
    let spire = Spire::shared();
    within(240, async {
        let (client, list_calls) = counting_list_calls(admin_socket_client(spire).await);
        // Below a page, exactly one page (the server then sends a token and an empty
        // last page), and several pages with a partial last one.
        for count in PAGING_COUNTS {
            let hint = format!("paging-{count}");
            let specs = specs(spire, &hint, count);
            let started = Instant::now();
            create_all(&client, &specs).await;
            let created = started.elapsed();

            list_calls.store(0, Ordering::SeqCst);
            let started = Instant::now();
            let listed = client
                .list_entries(&ListFilter::default().by_hint(&hint))
                .await
                .unwrap();
            let elapsed = started.elapsed();
            let calls = list_calls.load(Ordering::SeqCst);
            eprintln!(
                "{count} entries: created in {created:?}, listed in {elapsed:?} with {calls} \
                 ListEntries calls"
            );
            // Full pages of LIST_PAGE_SIZE, a partial one if anything is left, and an empty
            // last one: the server hands out a next-page token with every non-empty page.
            assert_eq!(calls, count.div_ceil(LIST_PAGE_SIZE) + 1);
            let listed_ids: Vec<String> = listed.iter().map(|e| e.spec.id.to_string()).collect();
            let expected: BTreeSet<String> = specs.iter().map(|s| s.id.to_string()).collect();
            assert_eq!(sorted_unique(&listed_ids), expected);
            for entry in &listed {
                let n: usize = entry.spec.id.as_str()[hint.len() + 1..].parse().unwrap();
                assert_eq!(entry.spec, specs[n]);
                assert!(entry.revision_number >= 0);
                assert!(entry.created_at > 0);
            }
            let count_on_server = client
                .count_entries(&ListFilter::default().by_hint(&hint))
                .await
                .unwrap();
            assert_eq!(count_on_server, count as u64);
        }

        // Unfiltered, every entry on the server comes exactly once, ours included.
        let started = Instant::now();
        let everything = client.list_entries(&ListFilter::default()).await.unwrap();
        eprintln!(
            "unfiltered list of {} entries in {:?}",
            everything.len(),
            started.elapsed()
        );
        let all_ids: Vec<String> = everything.iter().map(|e| e.spec.id.to_string()).collect();
        let all = sorted_unique(&all_ids);
        for count in PAGING_COUNTS {
            for spec in specs(spire, &format!("paging-{count}"), count) {
                assert!(all.contains(spec.id.as_str()), "{} missing", spec.id);
            }
        }

        // Other filters, as upstream defines them.
        let one = spec(spire, &format!("paging-{}", PAGING_COUNTS[2]), 7);
        let by_id = client
            .list_entries(&ListFilter::default().by_spiffe_id(one.spiffe_id.clone()))
            .await
            .unwrap();
        assert_eq!(by_id.len(), 1);
        assert_eq!(by_id[0].spec, one);
        let pod_uid = one
            .selectors
            .iter()
            .find(|s| s.value().starts_with("pod-uid:"))
            .unwrap();
        let by_selector = client
            .list_entries(
                &ListFilter::default().by_selectors([pod_uid.clone()], SelectorMatch::Superset),
            )
            .await
            .unwrap();
        assert_eq!(by_selector.len(), 1);
        assert_eq!(by_selector[0].spec.id, one.id);
        let under_agent = client
            .count_entries(
                &ListFilter::default()
                    .by_parent_id(id(spire.agent_id()))
                    .by_hint("paging-120"),
            )
            .await
            .unwrap();
        assert_eq!(under_agent, 120);
        assert_eq!(client.entry(&one.id).await.unwrap().unwrap().spec, one);
    })
    .await;
}

#[tokio::test]
async fn creating_the_same_entries_again_succeeds_as_already_existing_without_duplicates() {
    let spire = Spire::shared();
    within(120, async {
        let client = admin_socket_client(spire).await;
        let specs = specs(spire, "again", 120);
        create_all(&client, &specs).await;

        let again = client.batch_create(&specs).await.unwrap();
        assert_eq!(again.len(), specs.len());
        for (spec, outcome) in specs.iter().zip(again) {
            match outcome {
                Ok(CreateOutcome::AlreadyExists(entry)) => assert_eq!(entry.spec, *spec),
                other => panic!("{}: {other:?}", spec.id),
            }
        }
        assert_eq!(
            sorted_unique(&listed_ids(&client, "again").await).len(),
            120
        );
    })
    .await;
}

#[tokio::test]
async fn deleting_twice_is_fine() {
    let spire = Spire::shared();
    within(120, async {
        let client = admin_socket_client(spire).await;
        let specs = specs(spire, "delete", 230);
        create_all(&client, &specs).await;

        let first = client.batch_delete(&ids(&specs)).await.unwrap();
        assert_eq!(first.len(), 230);
        assert!(
            first
                .iter()
                .all(|o| matches!(o, Ok(DeleteOutcome::Deleted)))
        );
        let second = client.batch_delete(&ids(&specs)).await.unwrap();
        assert!(
            second
                .iter()
                .all(|o| matches!(o, Ok(DeleteOutcome::NotFound)))
        );
        assert!(listed_ids(&client, "delete").await.is_empty());
        assert!(client.entry(&specs[0].id).await.unwrap().is_none());
    })
    .await;
}

#[tokio::test]
async fn the_hint_filter_never_returns_entries_made_by_others() {
    let spire = Spire::shared();
    within(120, async {
        let client = admin_socket_client(spire).await;
        let specs = specs(spire, "ours", 3);
        create_all(&client, &specs).await;
        // Someone else registers workloads in the same namespace: without a hint, with
        // another hint, and with a hint that only starts like ours.
        for (n, hint) in [(100, None), (101, Some("theirs")), (102, Some("ours-not"))] {
            let mut args = vec![
                "-parentID".to_owned(),
                spire.agent_id().to_owned(),
                "-spiffeID".to_owned(),
                format!("spiffe://{}/ns/ours/taskrun/run-{n}", spire.trust_domain()),
                "-selector".to_owned(),
                format!("k8s:pod-uid:ours-uid-{n}"),
                "-selector".to_owned(),
                "k8s:ns:ours".to_owned(),
            ];
            if let Some(hint) = hint {
                args.extend(["-hint".to_owned(), hint.to_owned()]);
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            spire.server_cli(&["entry", "create"], &args).unwrap();
        }
        let listed = sorted_unique(&listed_ids(&client, "ours").await);
        let expected: BTreeSet<String> = specs.iter().map(|s| s.id.to_string()).collect();
        assert_eq!(listed, expected);
        // The namespace selector matches theirs too: only the hint tells ours apart.
        let same_namespace = client
            .list_entries(
                &ListFilter::default()
                    .by_selectors(["k8s:ns:ours".parse().unwrap()], SelectorMatch::Superset),
            )
            .await
            .unwrap();
        assert_eq!(same_namespace.len(), 6);
    })
    .await;
}

#[tokio::test]
async fn an_explicit_id_held_by_another_entry_is_reported_as_taken() {
    let spire = Spire::shared();
    within(60, async {
        let client = admin_socket_client(spire).await;
        let first = spec(spire, "taken", 1);
        create_all(&client, std::slice::from_ref(&first)).await;

        // Same ID, another workload (SPIFFE ID and selectors differ).
        let mut other = spec(spire, "taken", 2);
        other.id = first.id.clone();
        let outcome = client.batch_create(&[other]).await.unwrap().remove(0);
        match outcome {
            Err(Error::EntryIdTaken { id, message }) => {
                assert_eq!(id, first.id);
                eprintln!("server's message for a taken ID: {message}");
            }
            other => panic!("{other:?}"),
        }
        // Nothing changed.
        assert_eq!(client.entry(&first.id).await.unwrap().unwrap().spec, first);
    })
    .await;
}

#[tokio::test]
async fn another_id_for_an_already_registered_workload_returns_the_existing_entry() {
    let spire = Spire::shared();
    within(60, async {
        let client = admin_socket_client(spire).await;
        let first = spec(spire, "similar", 1);
        create_all(&client, std::slice::from_ref(&first)).await;

        // Same SPIFFE ID, parent and selectors; another ID, hint and TTL.
        let mut second = first.clone();
        second.id = EntryId::new("similar.other-id").unwrap();
        second.hint = "similar-other".into();
        second.x509_svid_ttl = Some(Duration::from_secs(60));
        let outcome = client
            .batch_create(&[second.clone()])
            .await
            .unwrap()
            .remove(0);
        match outcome {
            Ok(CreateOutcome::AlreadyExists(entry)) => assert_eq!(entry.spec, first),
            other => panic!("{other:?}"),
        }
        assert!(client.entry(&second.id).await.unwrap().is_none());

        // The same when the existing entry was registered by someone else, with a
        // server-chosen ID.
        let cli_id = spire
            .register(
                &format!("spiffe://{}/ns/similar/cli", spire.trust_domain()),
                "k8s:pod-uid:similar-cli",
            )
            .unwrap();
        let mut ours = EntrySpec::new(
            EntryId::new("similar.ours").unwrap(),
            id(&format!("spiffe://{}/ns/similar/cli", spire.trust_domain())),
            id(spire.agent_id()),
            ["k8s:pod-uid:similar-cli".parse().unwrap()],
        );
        ours.hint = "similar".into();
        let outcome = client.batch_create(&[ours]).await.unwrap().remove(0);
        match outcome {
            Ok(CreateOutcome::AlreadyExists(entry)) => {
                assert_eq!(entry.spec.id.as_str(), cli_id);
                assert_eq!(entry.spec.hint, "");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(listed_ids(&client, "similar").await, [first.id.to_string()]);
    })
    .await;
}

#[test]
fn the_server_accepts_exactly_the_entry_ids_that_entry_id_accepts() {
    let spire = Spire::shared();
    let create = |entry_id: &str, n: usize| {
        spire.server_cli(
            &["entry", "create"],
            &[
                "-entryID",
                entry_id,
                "-parentID",
                spire.agent_id(),
                "-spiffeID",
                &format!("spiffe://{}/ns/ids/w{n}", spire.trust_domain()),
                "-selector",
                &format!("k8s:pod-uid:ids-{n}"),
            ],
        )
    };
    let longest = "L".repeat(255);
    let too_long = "L".repeat(256);
    let cases: [(&str, bool); 7] = [
        ("ids.Az09-_.x", true),
        (&longest, true),
        (&too_long, false),
        ("ids/slash", false),
        ("ids:colon", false),
        ("ids space", false),
        ("ids-ü", false),
    ];
    for (n, (entry_id, valid)) in cases.into_iter().enumerate() {
        let server = create(entry_id, n);
        assert_eq!(server.is_ok(), valid, "{entry_id:?}: {server:?}");
        assert_eq!(EntryId::new(entry_id).is_ok(), valid, "{entry_id:?}");
        if let Err(e) = server {
            eprintln!("server refuses entry ID {entry_id:.20?}: {e:#}");
        }
    }
}

#[tokio::test]
async fn bad_requests_fail_with_errors_that_are_not_retryable() {
    let spire = Spire::shared();
    within(60, async {
        let client = admin_socket_client(spire).await;
        // One entry of the batch names another trust domain; the others go through.
        let good = spec(spire, "bad", 1);
        let mut foreign = spec(spire, "bad", 2);
        foreign.spiffe_id = id("spiffe://elsewhere.test/ns/bad/taskrun/x");
        let outcomes = client.batch_create(&[foreign, good]).await.unwrap();
        match &outcomes[0] {
            Err(e @ Error::EntryRejected { code, message, .. }) => {
                assert_eq!(*code, Code::InvalidArgument);
                assert!(message.contains("invalid spiffe ID"), "{message}");
                assert!(!e.is_retryable());
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(outcomes[1], Ok(CreateOutcome::Created(_))));

        // A reserved path (SPIRE's own namespace) is refused the same way.
        let mut reserved = spec(spire, "bad", 3);
        reserved.spiffe_id = id(&format!(
            "spiffe://{}/spire/not-a-workload",
            spire.trust_domain()
        ));
        let outcome = client.batch_create(&[reserved]).await.unwrap().remove(0);
        assert!(matches!(
            outcome,
            Err(Error::EntryRejected {
                code: Code::InvalidArgument,
                ..
            })
        ));

        // A whole call refused: a filter outside the trust domain.
        let err = client
            .list_entries(&ListFilter::default().by_spiffe_id(id("spiffe://elsewhere.test/x")))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
        assert!(!err.is_retryable());

        // Updating an entry that does not exist.
        let missing = spec(spire, "bad", 4);
        let outcome = client.batch_update(&[missing]).await.unwrap().remove(0);
        assert!(
            matches!(
                outcome,
                Err(Error::EntryRejected {
                    code: Code::NotFound,
                    ..
                })
            ),
            "{outcome:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn batch_update_rewrites_the_modelled_fields() {
    let spire = Spire::shared();
    within(60, async {
        let client = admin_socket_client(spire).await;
        let specs = specs(spire, "update", 60);
        create_all(&client, &specs).await;
        let changed: Vec<EntrySpec> = specs
            .iter()
            .map(|s| {
                let mut s = s.clone();
                s.x509_svid_ttl = Some(Duration::from_secs(1200));
                s.selectors.push("k8s:container-name:sign".parse().unwrap());
                s.selectors.sort();
                s.dns_names = vec!["sign.example".into()];
                s
            })
            .collect();
        let outcomes = client.batch_update(&changed).await.unwrap();
        for (spec, outcome) in changed.iter().zip(outcomes) {
            assert_eq!(outcome.unwrap().spec, *spec);
        }
        let listed = client
            .list_entries(&ListFilter::default().by_hint("update"))
            .await
            .unwrap();
        assert_eq!(listed.len(), 60);
        assert!(listed.iter().all(|e| e.revision_number > 0));
    })
    .await;
}

#[tokio::test]
async fn an_unreachable_admin_socket_is_a_retryable_connect_error() {
    within(30, async {
        let err = Client::connect(
            Endpoint::AdminSocket(PathBuf::from("/nonexistent/tekton-spire/api.sock")),
            ClientConfig::default().connect_timeout(Duration::from_secs(2)),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, Error::Connect { .. }), "{err:?}");
        assert!(err.is_retryable());
    })
    .await;
}

/// The test binary, as the agent's unix attestor with discover_workload_path sees it.
fn this_binary_selector() -> String {
    let exe = std::fs::canonicalize(std::env::current_exe().unwrap()).unwrap();
    format!("unix:path:{}", exe.display())
}

fn register_this_binary(spire: &Spire, spiffe_id: &str, admin: bool) {
    let selector = this_binary_selector();
    let mut args = vec![
        "-parentID",
        spire.agent_id(),
        "-spiffeID",
        spiffe_id,
        "-selector",
        &selector,
    ];
    if admin {
        args.push("-admin");
    }
    spire.server_cli(&["entry", "create"], &args).unwrap();
}

fn mtls_config(spire: &Spire) -> ClientConfig {
    ClientConfig::default()
        .workload_api(spire.workload_socket())
        .svid_timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(5))
        .call_timeout(Duration::from_secs(20))
}

#[tokio::test]
async fn an_admin_workload_lists_entries_over_mtls_and_a_wrong_server_id_is_refused() {
    let spire = Spire::shared();
    let addr = spire.server_addr().unwrap();
    within(120, async {
        register_this_binary(
            spire,
            &format!("spiffe://{}/tekton-spire/controller", spire.trust_domain()),
            true,
        );
        let admin = admin_socket_client(spire).await;
        let specs = specs(spire, "mtls", 5);
        create_all(&admin, &specs).await;

        let started = Instant::now();
        let client = Client::connect(
            Endpoint::tcp(&addr, &trust_domain(spire)),
            mtls_config(spire),
        )
        .await
        .unwrap();
        eprintln!(
            "mTLS client ready (SVID fetched, handshake done) in {:?}",
            started.elapsed()
        );
        let listed = sorted_unique(&listed_ids(&client, "mtls").await);
        assert_eq!(listed.len(), 5);
        // Writes work too.
        let deleted = client.batch_delete(&ids(&specs[..1])).await.unwrap();
        assert!(matches!(deleted[0], Ok(DeleteOutcome::Deleted)));
        client.shutdown().await;

        // A server that cannot prove the expected ID is refused before any call.
        let wrong = Endpoint::Tcp {
            addr: addr.clone(),
            server_id: id(&format!(
                "spiffe://{}/spire/other-server",
                spire.trust_domain()
            )),
        };
        let err = Client::connect(wrong, mtls_config(spire))
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::ServerNotAuthenticated { .. }),
            "{err:?}"
        );
        assert!(!err.is_retryable());

        // A server ID in a trust domain without a bundle cannot be authenticated at all.
        let foreign = Endpoint::Tcp {
            addr,
            server_id: id("spiffe://elsewhere.test/spire/server"),
        };
        let err = Client::connect(foreign, mtls_config(spire))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::NoTrustBundle { .. }), "{err:?}");
        assert!(!err.is_retryable());
    })
    .await;
}

#[tokio::test]
async fn a_workload_without_admin_is_denied_over_mtls() {
    // A private instance: this binary must hold exactly one identity, a non-admin one.
    let spire = Spire::start(Propagation::Tuned).unwrap();
    let addr = spire.server_addr().unwrap();
    within(120, async {
        register_this_binary(
            &spire,
            &format!("spiffe://{}/not-admin", spire.trust_domain()),
            false,
        );
        let client = Client::connect(
            Endpoint::tcp(&addr, &trust_domain(&spire)),
            mtls_config(&spire),
        )
        .await
        .unwrap();
        let err = client
            .list_entries(&ListFilter::default())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::PermissionDenied { .. }), "{err:?}");
        assert!(!err.is_retryable());
        client.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_batch_write_outlasts_the_call_timeout_on_a_slow_server() {
    // A server busy for longer than the call timeout (here: paused) must not make a
    // batch of creates fail: its deadline grows with the entries in it, since SPIRE
    // writes them one at a time behind one lock. (Before, a cold start of 10,000 pods
    // timed out batch after batch and threw the work away.)
    let spire = Spire::start(Propagation::Tuned).unwrap();
    within(120, async {
        let client = Client::connect(
            Endpoint::AdminSocket(spire.server_socket().to_path_buf()),
            ClientConfig::default()
                .call_timeout(Duration::from_secs(2))
                .keepalive(None),
        )
        .await
        .unwrap();
        let specs = specs(&spire, "slow-server", 5);
        let pid = spire.server_pid().unwrap().to_string();
        let signal = |sig: &str| {
            assert!(
                std::process::Command::new("kill")
                    .args([sig, &pid])
                    .status()
                    .unwrap()
                    .success()
            );
        };
        signal("-STOP");
        let create = tokio::spawn({
            let client = client.clone();
            let specs = specs.clone();
            async move { client.batch_create(&specs).await }
        });
        tokio::time::sleep(Duration::from_secs(4)).await;
        signal("-CONT");
        let outcomes = create
            .await
            .unwrap()
            .expect("the batch waited for the server");
        assert_eq!(outcomes.len(), 5);
        assert!(
            outcomes
                .iter()
                .all(|o| matches!(o, Ok(CreateOutcome::Created(_))))
        );
        assert_eq!(listed_ids(&client, "slow-server").await.len(), 5);
        // A single read keeps the plain call timeout.
        signal("-STOP");
        let list = tokio::spawn({
            let client = client.clone();
            async move { client.list_entries(&ListFilter::default()).await }
        });
        tokio::time::sleep(Duration::from_secs(4)).await;
        signal("-CONT");
        assert!(matches!(list.await.unwrap(), Err(Error::Timeout { .. })));
    })
    .await;
}
