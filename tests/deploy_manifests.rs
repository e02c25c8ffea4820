//! deploy/ applied to the real kube-apiserver: every object is accepted, every pod of
//! the default install passes the namespace's restricted Pod Security Standard (the API
//! server's own PodSecurity admission), each service account may do exactly what it needs
//! (checked by the API server's own RBAC authorizer through SubjectAccessReviews), and the
//! opt-in admission policy lets only Tekton's service account create pods that claim a
//! TaskRun.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::time::Duration;

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::discovery::{Discovery, Scope};
use tekton_spire_testbed::kube::Kube;

fn deploy_file(file: &str) -> String {
    std::fs::read_to_string(format!("{}/deploy/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// The objects of `deploy/<file>`.
fn objects(file: &str) -> Vec<DynamicObject> {
    serde_yaml_ng::Deserializer::from_str(&deploy_file(file))
        .map(|document| serde::Deserialize::deserialize(document).unwrap())
        .collect()
}

/// Creates every object of `deploy/<file>`; returns their kinds.
async fn apply(client: &kube::Client, discovery: &Discovery, file: &str) -> Vec<String> {
    let mut kinds = Vec::new();
    for object in objects(file) {
        let types = object
            .types
            .clone()
            .expect("every object has apiVersion and kind");
        let gvk = kube::api::GroupVersionKind::try_from(&types).unwrap();
        let (resource, capabilities) = discovery
            .resolve_gvk(&gvk)
            .unwrap_or_else(|| panic!("{gvk:?} is not served"));
        let api: Api<DynamicObject> = match capabilities.scope {
            Scope::Cluster => Api::all_with(client.clone(), &resource),
            Scope::Namespaced => Api::namespaced_with(
                client.clone(),
                object
                    .metadata
                    .namespace
                    .as_deref()
                    .expect("namespaced objects name their namespace"),
                &resource,
            ),
        };
        api.create(&PostParams::default(), &object)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "{file}: {} {:?} refused: {e}",
                    types.kind, object.metadata.name
                )
            });
        kinds.push(types.kind);
    }
    kinds
}

/// Whether `user` may `verb` the resource, as the API server's authorizer says.
async fn may(
    client: &kube::Client,
    user: &str,
    verb: &str,
    group: &str,
    resource: &str,
    subresource: Option<&str>,
    namespace: &str,
) -> bool {
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(user.into()),
            resource_attributes: Some(ResourceAttributes {
                verb: Some(verb.into()),
                group: Some(group.into()),
                resource: Some(resource.into()),
                subresource: subresource.map(Into::into),
                namespace: Some(namespace.into()),
                ..ResourceAttributes::default()
            }),
            ..SubjectAccessReviewSpec::default()
        },
        ..SubjectAccessReview::default()
    };
    Api::<SubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await
        .unwrap()
        .status
        .unwrap()
        .allowed
}

const ENTRIES: &str = "system:serviceaccount:tekton-spire:tekton-spire-controller";
const VERDICTS: &str = "system:serviceaccount:tekton-spire:tekton-spire-verdict";

#[tokio::test]
async fn the_manifests_apply_their_pods_are_restricted_and_each_service_account_gets_least_privilege()
 {
    tokio::time::timeout(Duration::from_secs(120), async {
        let kube = tokio::task::spawn_blocking(Kube::shared).await.unwrap();
        let client = kube.client().await.unwrap();
        let discovery = Discovery::new(client.clone()).run().await.unwrap();
        // What `kubectl apply -k deploy/` applies: these files and the images component;
        // the admission policy stays opt-in.
        let kustomization: serde_json::Value =
            serde_yaml_ng::from_str(&deploy_file("kustomization.yaml")).unwrap();
        assert_eq!(
            kustomization["resources"],
            serde_json::json!(["controller.yaml", "verdict.yaml", "pdb.yaml"])
        );
        assert_eq!(kustomization["components"], serde_json::json!(["images"]));
        assert_eq!(
            apply(&client, &discovery, "controller.yaml").await,
            [
                "Namespace",
                "ServiceAccount",
                "ClusterRole",
                "ClusterRoleBinding",
                "Role",
                "RoleBinding",
                "ConfigMap",
                "Deployment"
            ]
        );
        assert_eq!(
            apply(&client, &discovery, "verdict.yaml").await,
            [
                "ServiceAccount",
                "ClusterRole",
                "ClusterRoleBinding",
                "Role",
                "RoleBinding",
                "Deployment"
            ]
        );
        assert_eq!(
            apply(&client, &discovery, "pdb.yaml").await,
            ["PodDisruptionBudget", "PodDisruptionBudget"]
        );
        every_pod_passes_the_restricted_pod_security_standard(&client).await;
        // (account, verb, group, resource, subresource, namespace, allowed, why)
        let expected = [
            // The entry controller (SPIRE admin): reads, and writes no TaskRun.
            (
                ENTRIES,
                "watch",
                "tekton.dev",
                "taskruns",
                None,
                "team-a",
                true,
                "reads TaskRuns",
            ),
            (
                ENTRIES,
                "list",
                "",
                "pods",
                None,
                "team-a",
                true,
                "reads pods",
            ),
            (
                ENTRIES,
                "create",
                "events.k8s.io",
                "events",
                None,
                "team-a",
                true,
                "entry events",
            ),
            (
                ENTRIES,
                "update",
                "coordination.k8s.io",
                "leases",
                None,
                "tekton-spire",
                true,
                "its lease",
            ),
            (
                ENTRIES,
                "patch",
                "tekton.dev",
                "taskruns",
                Some("status"),
                "team-a",
                false,
                "the account with SPIRE admin rights must not write TaskRun status",
            ),
            (
                ENTRIES,
                "patch",
                "tekton.dev",
                "taskruns",
                None,
                "team-a",
                false,
                "TaskRun specs",
            ),
            (ENTRIES, "create", "", "pods", None, "team-a", false, "pods"),
            (
                ENTRIES, "get", "", "secrets", None, "team-a", false, "secrets",
            ),
            (
                ENTRIES,
                "update",
                "coordination.k8s.io",
                "leases",
                None,
                "team-a",
                false,
                "leases only in its namespace",
            ),
            // The verdict controller: TaskRun status, nothing of pods or secrets.
            (
                VERDICTS,
                "patch",
                "tekton.dev",
                "taskruns",
                Some("status"),
                "team-a",
                true,
                "the verdict",
            ),
            (
                VERDICTS,
                "watch",
                "tekton.dev",
                "taskruns",
                None,
                "team-a",
                true,
                "reads TaskRuns",
            ),
            (
                VERDICTS,
                "update",
                "coordination.k8s.io",
                "leases",
                None,
                "tekton-spire",
                true,
                "its lease",
            ),
            (
                VERDICTS,
                "patch",
                "tekton.dev",
                "taskruns",
                None,
                "team-a",
                false,
                "TaskRun specs",
            ),
            (VERDICTS, "list", "", "pods", None, "team-a", false, "pods"),
            (
                VERDICTS, "get", "", "secrets", None, "team-a", false, "secrets",
            ),
        ];
        for (user, verb, group, resource, sub, ns, allowed, why) in expected {
            assert_eq!(
                may(&client, user, verb, group, resource, sub, ns).await,
                allowed,
                "{user} {verb} {resource}/{sub:?} in {ns}: {why}"
            );
        }
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn only_tektons_service_account_may_create_pods_that_claim_a_taskrun() {
    tokio::time::timeout(Duration::from_secs(120), async {
        let kube = tokio::task::spawn_blocking(Kube::shared).await.unwrap();
        let client = kube.client().await.unwrap();
        let discovery = Discovery::new(client.clone()).run().await.unwrap();
        let namespace = tekton_spire_testbed::kube::create_namespace(client.clone(), "vap-")
            .await
            .unwrap();
        // Both may create and update pods in the namespace, as far as RBAC goes.
        let rbac: Vec<DynamicObject> = serde_json::from_value(serde_json::json!([
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
             "metadata": {"name": "pods", "namespace": namespace},
             "rules": [{"apiGroups": [""], "resources": ["pods", "pods/ephemeralcontainers"],
                        "verbs": ["create", "update", "patch", "get"]}]},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
             "metadata": {"name": "pods", "namespace": namespace},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pods"},
             "subjects": [
                 {"kind": "ServiceAccount", "name": "tekton-pipelines-controller", "namespace": "tekton-pipelines"},
                 {"kind": "ServiceAccount", "name": "builder", "namespace": namespace}]}
        ]))
        .unwrap();
        for object in rbac {
            let gvk = kube::api::GroupVersionKind::try_from(object.types.as_ref().unwrap()).unwrap();
            let (resource, _) = discovery.resolve_gvk(&gvk).unwrap();
            Api::<DynamicObject>::namespaced_with(client.clone(), &namespace, &resource)
                .create(&PostParams::default(), &object)
                .await
                .unwrap();
        }
        let as_user = |user: String| {
            async move {
                let mut config = kube.config().await.unwrap();
                config.auth_info.impersonate = Some(user);
                kube::Client::try_from(config).unwrap()
            }
        };
        let builder = as_user(format!("system:serviceaccount:{namespace}:builder")).await;
        let tekton =
            as_user("system:serviceaccount:tekton-pipelines:tekton-pipelines-controller".into())
                .await;
        let pod = |name: &str, label: bool, owner: bool| -> Pod {
            let mut metadata = serde_json::json!({"name": name});
            if label {
                metadata["labels"] = serde_json::json!({"tekton.dev/taskRun": "build"});
            }
            if owner {
                metadata["ownerReferences"] = serde_json::json!([{"apiVersion": "tekton.dev/v1",
                    "kind": "TaskRun", "name": "build", "uid": "4b1c0a4e-0000-4000-8000-000000000001",
                    "controller": true}]);
            }
            serde_json::from_value(serde_json::json!({"metadata": metadata,
                "spec": {"containers": [{"name": "step-sign", "image": "registry.invalid/sign:1"}]}}))
            .unwrap()
        };
        // Before the policy, the attack works.
        let pods = |c: &kube::Client| Api::<Pod>::namespaced(c.clone(), &namespace);
        pods(&builder)
            .create(&PostParams::default(), &pod("before-policy", true, true))
            .await
            .expect("without the policy anyone with pods/create can claim a TaskRun");
        apply(&client, &discovery, "admission-policy/policy.yaml").await;
        // Denied by the rule itself, not by an error in the policy (which would deny too).
        let denied = |result: Result<Pod, kube::Error>| {
            matches!(result, Err(kube::Error::Api(s)) if (s.code == 403 || s.code == 422)
                && s.message.contains("only Tekton's controller may create"))
        };
        // The policy is enforced once the API server has loaded it.
        tekton_spire_testbed::kube::eventually(
            Duration::from_secs(60),
            "the policy to deny a claiming pod",
            || async {
                let result = pods(&builder)
                    .create(&PostParams::default(), &pod("by-label", true, false))
                    .await;
                Ok(denied(result).then_some(()))
            },
        )
        .await
        .unwrap();
        assert!(denied(
            pods(&builder)
                .create(&PostParams::default(), &pod("by-owner", false, true))
                .await
        ));
        // Adding a claim to an existing pod is refused too.
        pods(&builder)
            .create(&PostParams::default(), &pod("plain", false, false))
            .await
            .expect("pods that claim nothing are not affected");
        let claim = serde_json::json!({"metadata": {"labels": {"tekton.dev/taskRun": "build"}}});
        let patched = pods(&builder)
            .patch("plain", &PatchParams::default(), &Patch::Merge(&claim))
            .await;
        assert!(denied(patched), "adding a claim");
        // Tekton's controller may.
        pods(&tekton)
            .create(&PostParams::default(), &pod("by-tekton", true, true))
            .await
            .expect("Tekton's controller creates TaskRun pods");
        // Unrelated updates of a claiming pod (by anyone) pass; changing the claim does not.
        let note = serde_json::json!({"metadata": {"labels": {"note": "x"}}});
        pods(&builder)
            .patch("by-tekton", &PatchParams::default(), &Patch::Merge(&note))
            .await
            .expect("an update that keeps the claim passes");
        let other = serde_json::json!({"metadata": {"labels": {"tekton.dev/taskRun": "another"}}});
        assert!(
            denied(
                pods(&builder)
                    .patch("by-tekton", &PatchParams::default(), &Patch::Merge(&other))
                    .await
            ),
            "the claim was moved to another TaskRun"
        );
    })
    .await
    .expect("test timed out");
}

/// A pod made from a Deployment's template, in its namespace.
fn pod_of(deployment: &DynamicObject) -> Pod {
    let mut template = deployment.data["spec"]["template"].clone();
    template["metadata"]["name"] = serde_json::json!(format!(
        "{}-probe",
        deployment.metadata.name.as_deref().unwrap()
    ));
    template["metadata"]["namespace"] = serde_json::json!(deployment.metadata.namespace);
    serde_json::from_value(template).unwrap()
}

/// Every Deployment's pod of the default install is admitted, as a dry run, by the API
/// server's PodSecurity admission in its namespace (labelled restricted); and the same pod
/// with one property off is refused, so the standard is enforced there.
async fn every_pod_passes_the_restricted_pod_security_standard(client: &kube::Client) {
    let dry_run = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let deployments: Vec<DynamicObject> = ["controller.yaml", "verdict.yaml"]
        .into_iter()
        .flat_map(objects)
        .filter(|o| o.types.as_ref().is_some_and(|t| t.kind == "Deployment"))
        .collect();
    assert_eq!(deployments.len(), 2, "the entry and the verdict controller");
    for deployment in &deployments {
        let pod = pod_of(deployment);
        let namespace = pod.metadata.namespace.clone().unwrap();
        Api::<Pod>::namespaced(client.clone(), &namespace)
            .create(&dry_run, &pod)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "a pod of {:?} is refused in {namespace}: {e}",
                    deployment.metadata.name
                )
            });
    }
    let mut lax = pod_of(&deployments[1]);
    if let Some(spec) = lax.spec.as_mut() {
        for container in &mut spec.containers {
            if let Some(sc) = container.security_context.as_mut() {
                sc.allow_privilege_escalation = Some(true);
            }
        }
    }
    let refused = Api::<Pod>::namespaced(client.clone(), "tekton-spire")
        .create(&dry_run, &lax)
        .await;
    assert!(
        matches!(&refused, Err(kube::Error::Api(s)) if s.message.contains("violates PodSecurity")),
        "a pod that allows privilege escalation must be refused: {refused:?}"
    );
}

/// The benchmark measures the controller with the environment of deploy/controller.yaml;
/// both Deployments run the same binary and keep glibc to one malloc arena.
#[test]
fn both_deployments_keep_glibc_to_one_malloc_arena() {
    for file in ["controller.yaml", "verdict.yaml"] {
        let deployment = objects(file)
            .into_iter()
            .find(|o| o.types.as_ref().is_some_and(|t| t.kind == "Deployment"))
            .unwrap();
        let env = &deployment.data["spec"]["template"]["spec"]["containers"][0]["env"];
        assert!(
            env.as_array().is_some_and(|env| env.iter().any(|e| {
                e["name"] == "GLIBC_TUNABLES" && e["value"] == "glibc.malloc.arena_max=1"
            })),
            "{file}: {env}"
        );
    }
}
