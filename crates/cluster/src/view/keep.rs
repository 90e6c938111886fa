//! What the view keeps of each object it lists: the object without the metadata no
//! reader uses and without the list capacity decoding over-allocated ([`trim`]), or just
//! the key names (ConfigMaps, Secrets). Applied as each page arrives, so only what
//! readers keep outlives the page.

use std::any::Any;
use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, Endpoints, Pod, PodSpec, PodTemplateSpec, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;

use kai_analyze::snapshot::{name_of, ns_of, KeysOnly};

use super::LAST_APPLIED;

/// Drop the metadata no reader uses, and give back what decoding over-allocated (see
/// [`compact`]). `managedFields` alone was about half of the heap on a 2,000-pod
/// cluster, so it goes page by page, before the next page is read.
pub(super) fn trim<K: Resource + 'static>(mut obj: K) -> K {
    let meta = obj.meta_mut();
    meta.managed_fields = None;
    if let Some(a) = meta.annotations.as_mut() {
        a.remove(LAST_APPLIED);
    }
    compact(&mut obj);
    obj
}

/// Shrink the lists inside the kinds kept by the thousand (pods, and the pod templates
/// and endpoints that come with them) to their length. Decoding grows each list one
/// element at a time, and the first element of a type under 1 KiB reserves room for
/// four: a pod's one `ContainerStatus` (752 B) took 3,008 B, its one env var 1,120 B,
/// its one volume mount 608 B. On the 10,000-pod benchmark cluster that was about 40 MB
/// of empty slots that lived as long as the list. Only capacity changes: every reader
/// sees the same objects.
fn compact<K: 'static>(obj: &mut K) {
    let any: &mut dyn Any = obj;
    if let Some(p) = any.downcast_mut::<Pod>() {
        compact_meta(&mut p.metadata);
        if let Some(spec) = p.spec.as_mut() {
            compact_pod_spec(spec);
        }
        if let Some(st) = p.status.as_mut() {
            fit(&mut st.conditions);
            fit(&mut st.host_ips);
            fit(&mut st.pod_ips);
            fit(&mut st.resource_claim_statuses);
            for list in [
                &mut st.container_statuses,
                &mut st.init_container_statuses,
                &mut st.ephemeral_container_statuses,
            ] {
                for cs in list.iter_mut().flatten() {
                    fit(&mut cs.allocated_resources_status);
                    fit(&mut cs.volume_mounts);
                }
                fit(list);
            }
        }
    } else if let Some(e) = any.downcast_mut::<Endpoints>() {
        compact_meta(&mut e.metadata);
        for s in e.subsets.iter_mut().flatten() {
            fit(&mut s.addresses);
            fit(&mut s.not_ready_addresses);
            fit(&mut s.ports);
        }
        fit(&mut e.subsets);
    } else if let Some(r) = any.downcast_mut::<ReplicaSet>() {
        compact_meta(&mut r.metadata);
        if let Some(t) = r.spec.as_mut().and_then(|s| s.template.as_mut()) {
            compact_template(t);
        }
    } else if let Some(d) = any.downcast_mut::<Deployment>() {
        compact_meta(&mut d.metadata);
        if let Some(s) = d.spec.as_mut() {
            compact_template(&mut s.template);
        }
    }
}

fn fit<T>(list: &mut Option<Vec<T>>) {
    if let Some(l) = list {
        l.shrink_to_fit();
    }
}

fn compact_meta(meta: &mut ObjectMeta) {
    fit(&mut meta.owner_references);
    fit(&mut meta.finalizers);
}

fn compact_template(t: &mut PodTemplateSpec) {
    if let Some(m) = t.metadata.as_mut() {
        compact_meta(m);
    }
    if let Some(spec) = t.spec.as_mut() {
        compact_pod_spec(spec);
    }
}

fn compact_pod_spec(spec: &mut PodSpec) {
    let containers = spec
        .containers
        .iter_mut()
        .chain(spec.init_containers.iter_mut().flatten());
    for c in containers {
        fit(&mut c.args);
        fit(&mut c.command);
        fit(&mut c.env);
        fit(&mut c.env_from);
        fit(&mut c.ports);
        fit(&mut c.resize_policy);
        fit(&mut c.volume_devices);
        fit(&mut c.volume_mounts);
    }
    spec.containers.shrink_to_fit();
    fit(&mut spec.init_containers);
    fit(&mut spec.ephemeral_containers);
    fit(&mut spec.host_aliases);
    fit(&mut spec.image_pull_secrets);
    fit(&mut spec.readiness_gates);
    fit(&mut spec.resource_claims);
    fit(&mut spec.scheduling_gates);
    fit(&mut spec.tolerations);
    fit(&mut spec.topology_spread_constraints);
    fit(&mut spec.volumes);
}

fn keys_only(meta: &ObjectMeta, keys: impl Iterator<Item = String>) -> KeysOnly {
    KeysOnly {
        namespace: ns_of(meta).to_string(),
        name: name_of(meta).to_string(),
        keys: keys.collect::<BTreeSet<_>>(),
    }
}

pub(super) fn configmap_keys(c: ConfigMap) -> KeysOnly {
    let keys = c
        .data
        .unwrap_or_default()
        .into_keys()
        .chain(c.binary_data.unwrap_or_default().into_keys());
    keys_only(&c.metadata, keys)
}

/// A Secret reduced to its key names; its values are remembered first, so a copy in a
/// log or an event is scrubbed, and then dropped.
pub(super) fn secret_keys(s: Secret) -> KeysOnly {
    kai_text::redact::remember_k8s_secret(&s);
    let keys = s
        .data
        .unwrap_or_default()
        .into_keys()
        .chain(s.string_data.unwrap_or_default().into_keys());
    keys_only(&s.metadata, keys)
}
