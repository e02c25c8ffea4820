//! deploy/controller.yaml applied to the real kube-apiserver: every object is accepted,
//! and the controller's service account may do exactly what it needs (checked by the
//! API server's own RBAC authorizer through SubjectAccessReviews).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::time::Duration;

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::{Api, DynamicObject, PostParams};
use kube::discovery::{Discovery, Scope};
use tekton_spire_testbed::kube::Kube;

#[tokio::test]
async fn the_controller_manifests_apply_and_grant_least_privilege() {
    tokio::time::timeout(Duration::from_secs(120), async {
        let kube = tokio::task::spawn_blocking(Kube::shared).await.unwrap();
        let client = kube.client().await.unwrap();
        let discovery = Discovery::new(client.clone()).run().await.unwrap();
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/deploy/controller.yaml"
        ))
        .unwrap();
        let mut kinds = Vec::new();
        for document in serde_yaml_ng::Deserializer::from_str(&text) {
            let object: DynamicObject = serde::Deserialize::deserialize(document).unwrap();
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
                    panic!("{} {:?} refused: {e}", types.kind, object.metadata.name)
                });
            kinds.push(types.kind);
        }
        assert_eq!(
            kinds,
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

        let reviews: Api<SubjectAccessReview> = Api::all(client.clone());
        let may = |verb: &str,
                   group: &str,
                   resource: &str,
                   subresource: Option<&str>,
                   namespace: &str| {
            let review = SubjectAccessReview {
                spec: SubjectAccessReviewSpec {
                    user: Some("system:serviceaccount:tekton-spire:tekton-spire-controller".into()),
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
            let reviews = reviews.clone();
            async move {
                reviews
                    .create(&PostParams::default(), &review)
                    .await
                    .unwrap()
                    .status
                    .unwrap()
                    .allowed
            }
        };
        // What it needs.
        assert!(may("watch", "tekton.dev", "taskruns", None, "team-a").await);
        assert!(may("list", "", "pods", None, "team-a").await);
        assert!(may("patch", "tekton.dev", "taskruns", Some("status"), "team-a").await);
        assert!(
            may(
                "update",
                "coordination.k8s.io",
                "leases",
                None,
                "tekton-spire"
            )
            .await
        );
        // What it must not do.
        assert!(
            !may("patch", "tekton.dev", "taskruns", None, "team-a").await,
            "TaskRun specs are not its to change"
        );
        assert!(!may("create", "", "pods", None, "team-a").await);
        assert!(!may("get", "", "secrets", None, "team-a").await);
        assert!(
            !may("update", "coordination.k8s.io", "leases", None, "team-a").await,
            "leases only in its namespace"
        );
    })
    .await
    .expect("test timed out");
}
