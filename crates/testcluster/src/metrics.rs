//! A fake resource metrics API (`metrics.k8s.io/v1beta1`, what metrics-server serves),
//! so that the real HorizontalPodAutoscaler controller in the cluster's controller manager
//! computes replica counts and writes its own status and events.
//!
//! The apiserver reaches it through the aggregation layer: an APIService names a Service
//! in kube-system whose Endpoints hold this server's address. Endpoints may not be
//! loopback addresses, so the server listens on the machine's first non-loopback IPv4
//! address, and the apiserver runs with `--enable-aggregator-routing=true` (it dials the
//! endpoint itself; there is no kube-proxy). Without such an address nothing is
//! registered and HPAs read no metrics, as on a cluster without metrics-server.
//!
//! A pod has CPU usage only when it says so: the annotation [`CPU_USAGE_ANNOTATION`]
//! (e.g. `"450m"`) on a Running pod is reported for each of its containers. Pods without
//! it get no metrics (an HPA on them reports `FailedGetResourceMetric`, as one does when
//! metrics-server has nothing for its pods).

use std::net::{IpAddr, Ipv4Addr};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{
    ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, PostParams,
};
use kube::{Api, Client};
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::https;
use crate::proxy::percent_decode;
use crate::Error;

/// Pod annotation: the CPU usage the fake metrics API reports for each container.
pub const CPU_USAGE_ANNOTATION: &str = "kai.test/cpu-usage";

const SERVICE: &str = "kai-fake-metrics";
const GROUP_VERSION: &str = "metrics.k8s.io/v1beta1";
const FIELD_MANAGER: &str = "kai-testcluster";

/// The first non-loopback, non-link-local IPv4 address of an interface that is up.
fn host_ipv4() -> Option<Ipv4Addr> {
    let mut addrs: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `addrs` with a list we free with freeifaddrs below; each
    // entry's `ifa_addr` is read as a sockaddr_in only when its family is AF_INET.
    unsafe {
        if libc::getifaddrs(&mut addrs) != 0 {
            return None;
        }
        let mut found = None;
        let mut cur = addrs;
        while !cur.is_null() {
            let ifa = &*cur;
            let up = ifa.ifa_flags & (libc::IFF_UP as u32) != 0;
            if up
                && !ifa.ifa_addr.is_null()
                && i32::from((*ifa.ifa_addr).sa_family) == libc::AF_INET
            {
                let sin = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                if !ip.is_loopback() && !ip.is_link_local() && !ip.is_unspecified() {
                    found = Some(ip);
                    break;
                }
            }
            cur = ifa.ifa_next;
        }
        libc::freeifaddrs(addrs);
        found
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}

fn not_found(path: &str) -> Response<Full<Bytes>> {
    json_response(
        StatusCode::NOT_FOUND,
        &json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404,
            "reason": "NotFound", "message": format!("{path}: not served by kai's fake metrics API")}),
    )
}

fn list(kind: &str, items: Vec<Value>) -> Value {
    json!({"kind": kind, "apiVersion": GROUP_VERSION, "metadata": {}, "items": items})
}

/// The metrics of the Running pods in `ns` (matching `selector`) that carry
/// [`CPU_USAGE_ANNOTATION`].
async fn pod_metrics(client: &Client, ns: &str, selector: Option<&str>) -> Result<Value, String> {
    let mut lp = ListParams::default();
    if let Some(s) = selector.filter(|s| !s.is_empty()) {
        lp = lp.labels(s);
    }
    let pods = Api::<Pod>::namespaced(client.clone(), ns)
        .list(&lp)
        .await
        .map_err(|e| e.to_string())?;
    let now = jiff::Timestamp::now().to_string();
    let items = pods
        .items
        .iter()
        .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
        .filter_map(|p| {
            let cpu = p.metadata.annotations.as_ref()?.get(CPU_USAGE_ANNOTATION)?;
            let containers: Vec<Value> = p
                .spec
                .as_ref()?
                .containers
                .iter()
                .map(|c| json!({"name": c.name, "usage": {"cpu": cpu, "memory": "32Mi"}}))
                .collect();
            Some(json!({
                "metadata": {"name": p.metadata.name, "namespace": ns, "creationTimestamp": now},
                "timestamp": now,
                "window": "1s",
                "containers": containers,
            }))
        })
        .collect();
    Ok(list("PodMetricsList", items))
}

async fn handle(client: &Client, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    let selector = req.uri().query().and_then(|q| {
        q.split('&')
            .find_map(|kv| kv.strip_prefix("labelSelector="))
            .map(percent_decode)
    });
    match path {
        "/healthz" | "/readyz" | "/livez" => {
            return json_response(StatusCode::OK, &json!("ok"));
        }
        "/apis/metrics.k8s.io/v1beta1" | "/apis/metrics.k8s.io/v1beta1/" => {
            return json_response(
                StatusCode::OK,
                &json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": GROUP_VERSION,
                "resources": [
                    {"name": "pods", "singularName": "", "namespaced": true, "kind": "PodMetrics", "verbs": ["get", "list"]},
                    {"name": "nodes", "singularName": "", "namespaced": false, "kind": "NodeMetrics", "verbs": ["get", "list"]}
                ]}),
            );
        }
        "/apis/metrics.k8s.io/v1beta1/pods" => {
            return json_response(StatusCode::OK, &list("PodMetricsList", Vec::new()));
        }
        "/apis/metrics.k8s.io/v1beta1/nodes" => {
            return json_response(StatusCode::OK, &list("NodeMetricsList", Vec::new()));
        }
        _ => {}
    }
    let ns = path
        .strip_prefix("/apis/metrics.k8s.io/v1beta1/namespaces/")
        .and_then(|rest| rest.strip_suffix("/pods"))
        .map(percent_decode);
    match ns {
        Some(ns) if !ns.contains('/') => {
            match pod_metrics(client, &ns, selector.as_deref()).await {
                Ok(v) => json_response(StatusCode::OK, &v),
                Err(e) => json_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 500, "message": e}),
                ),
            }
        }
        _ => not_found(path),
    }
}

/// Serves the fake metrics API on the host's address and registers it with the
/// apiserver (APIService, Service, Endpoints). Does nothing, with a log line, when the
/// host has no address the apiserver may use as an endpoint.
/// Serve the API and register it; only a caller with a client certificate `client_ca`
/// (DER: the apiserver's front-proxy CA) signed gets an answer.
pub(crate) async fn start(client: Client, client_ca: Vec<u8>) -> Result<(), Error> {
    let Some(ip) = host_ipv4() else {
        tracing::warn!("no non-loopback IPv4 address: the fake metrics API is not served");
        return Ok(());
    };
    let acceptor = https::self_signed_acceptor(vec![ip.to_string()], "metrics", Some(client_ca))?;
    let listener = TcpListener::bind((IpAddr::V4(ip), 0))
        .await
        .map_err(|e| Error::io("binding the fake metrics API's port", e))?;
    let port = listener
        .local_addr()
        .map_err(|e| Error::io("reading the fake metrics API's port", e))?
        .port();
    let served = client.clone();
    https::serve(listener, acceptor, "fake metrics API", move |req| {
        let client = served.clone();
        async move { handle(&client, &req).await }
    });
    register(&client, ip, port).await
}

async fn register(client: &Client, ip: Ipv4Addr, port: u16) -> Result<(), Error> {
    // (A 1.20 apiserver's server-side apply wants each port's protocol spelled out.)
    let pp = PatchParams::apply(FIELD_MANAGER).force();
    // The Service and its Endpoints: core/v1 objects named SERVICE in kube-system, with
    // their spec and subsets.
    for (kind, field, value) in [
        (
            "Service",
            "spec",
            json!({"ports": [{"name": "https", "protocol": "TCP", "port": 443, "targetPort": port}]}),
        ),
        (
            "Endpoints",
            "subsets",
            json!([{"addresses": [{"ip": ip.to_string()}], "ports": [{"name": "https", "protocol": "TCP", "port": port}]}]),
        ),
    ] {
        let ar = ApiResource::from_gvk(&GroupVersionKind::gvk("", "v1", kind));
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "kube-system", &ar);
        let mut body = json!({"apiVersion": "v1", "kind": kind,
            "metadata": {"name": SERVICE, "namespace": "kube-system"}});
        body[field] = value;
        api.patch(SERVICE, &pp, &Patch::Apply(body))
            .await
            .map_err(|source| Error::Kube {
                context: format!("registering the fake metrics API ({SERVICE})"),
                source,
            })?;
    }
    // A 1.20 apiserver cannot server-side apply APIServices (it panics: "FieldManager
    // must be installed"): create, or replace the one a previous run left.
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(
        "apiregistration.k8s.io",
        "v1",
        "APIService",
    ));
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
    let name = "v1beta1.metrics.k8s.io";
    let mut obj: DynamicObject = serde_json::from_value(
        json!({"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
            "metadata": {"name": name},
            "spec": {"group": "metrics.k8s.io", "version": "v1beta1",
                "service": {"namespace": "kube-system", "name": SERVICE, "port": 443},
                "insecureSkipTLSVerify": true,
                "groupPriorityMinimum": 100, "versionPriority": 100}}),
    )
    .map_err(|e| Error::Other(format!("the fake metrics APIService: {e}")))?;
    let err = |source| Error::Kube {
        context: format!("registering the fake metrics API ({name})"),
        source,
    };
    match api.create(&PostParams::default(), &obj).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {
            let old = api.get(name).await.map_err(err)?;
            obj.metadata.resource_version = old.metadata.resource_version;
            api.replace(name, &PostParams::default(), &obj)
                .await
                .map_err(err)?;
        }
        Err(e) => return Err(err(e)),
    }
    // Until the aggregator has found the server, discovery of every group fails (its
    // handler for the group answers 404 "page not found"): wait, so that nothing
    // started after the cluster sees that.
    let started = std::time::Instant::now();
    loop {
        let req = http::Request::get("/apis/metrics.k8s.io/v1beta1")
            .body(Vec::new())
            .map_err(|e| Error::Other(format!("the fake metrics API: {e}")))?;
        match client.request_text(req).await {
            Ok(_) => break,
            Err(e) if started.elapsed() > std::time::Duration::from_secs(60) => {
                // An APIService that never becomes available breaks discovery for every
                // client (kube's and kubectl's): take it away again, so the cluster is
                // one without a metrics API rather than a half-broken one.
                if let Err(del) = api.delete(name, &Default::default()).await {
                    tracing::warn!("could not remove the unavailable APIService {name}: {del}");
                }
                return Err(err(e));
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
        }
    }
    tracing::debug!(
        "fake metrics API on {ip}:{port}, served after {:?}",
        started.elapsed()
    );
    Ok(())
}
