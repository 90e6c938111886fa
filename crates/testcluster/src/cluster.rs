//! Starting and stopping the control plane, and the handle tests hold.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use k8s_openapi::api::core::v1::{Node, ServiceAccount};
use kube::api::{Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use serde_json::json;

use crate::kubelet::{self, Kubelet};
use crate::process::{self, Proc};
use crate::scenario::NodeSpec;
use crate::{pki, Error};

pub const ADMIN_CONTEXT: &str = "kai-admin";
pub const RESTRICTED_CONTEXT: &str = "kai-restricted";
/// The one namespace where the `restricted` user may read (no Secrets).
pub const RESTRICTED_NAMESPACE: &str = "restricted-ok";
pub const RESTRICTED_USER: &str = "restricted";
/// Nodes every cluster starts with (4 CPU, 8Gi each).
pub const DEFAULT_NODES: [&str; 2] = ["kai-node-1", "kai-node-2"];
const VERSION: &str = "1.20.2";
const BUILD_SCRIPT: &str = include_str!("../../../scripts/build-cluster.sh");
const DEPS_SCRIPT: &str = include_str!("../../../scripts/install-deps.sh");
const DIR_PREFIX: &str = "kai-testcluster-";

/// `$KAI_CACHE_DIR`, else `$XDG_CACHE_HOME/kai`, else `~/.cache/kai` (as the build script).
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("KAI_CACHE_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("kai");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into());
    PathBuf::from(home).join(".cache").join("kai")
}

/// Where the built kube-apiserver, kube-controller-manager and kube-scheduler live.
pub fn bin_dir() -> PathBuf {
    cache_dir().join("testcluster").join(VERSION).join("bin")
}

const BINARIES: [&str; 3] = [
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
];

/// Makes sure the control-plane binaries exist, building them (once, ~5 minutes) with the
/// embedded `scripts/build-cluster.sh` if not. Blocking.
pub fn ensure_binaries() -> Result<PathBuf, Error> {
    let bin = bin_dir();
    if BINARIES.iter().all(|b| bin.join(b).is_file()) {
        return Ok(bin);
    }
    eprintln!(
        "kai: building the local test cluster (Kubernetes {VERSION}) into {}; the first build takes about 5 minutes",
        bin.display()
    );
    // The script calls install-deps.sh beside itself: write both to a scratch directory.
    let scratch = tempdir(&std::env::temp_dir(), "build")?;
    let script = scratch.join("build-cluster.sh");
    std::fs::write(&script, BUILD_SCRIPT).map_err(|e| Error::io("writing the build script", e))?;
    std::fs::write(scratch.join("install-deps.sh"), DEPS_SCRIPT)
        .map_err(|e| Error::io("writing the build script", e))?;
    let status = std::process::Command::new("bash")
        .arg(&script)
        .env("KAI_CACHE_DIR", cache_dir())
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| Error::io("running bash for the build script", e));
    let _ = std::fs::remove_dir_all(&scratch);
    let status = status?;
    if !status.success() {
        return Err(Error::Build(format!(
            "scripts/build-cluster.sh exited with {status}; its output is above. It needs Debian's \
             deb-src for `kubernetes` and golang-go; run it by hand to see what is missing."
        )));
    }
    if BINARIES.iter().all(|b| bin.join(b).is_file()) {
        Ok(bin)
    } else {
        Err(Error::Build(format!(
            "the build finished but {} lacks some of {BINARIES:?}",
            bin.display()
        )))
    }
}

fn tempdir(base: &Path, tag: &str) -> Result<PathBuf, Error> {
    let dir = base.join(format!(
        "{DIR_PREFIX}{}-{tag}-{}",
        std::process::id(),
        pki::token()?.get(..8).unwrap_or("x")
    ));
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    Ok(dir)
}

/// Removes work directories left by test processes that died without cleaning up.
fn sweep_stale(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(DIR_PREFIX)
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !process::pid_alive(pid) {
            tracing::debug!("removing stale {}", e.path().display());
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Tmpfs when there is one: etcd's fsyncs cost nothing there.
fn default_base() -> PathBuf {
    let shm = Path::new("/dev/shm");
    let writable = std::fs::metadata(shm).is_ok_and(|m| m.is_dir() && !m.permissions().readonly());
    if writable {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

#[derive(Debug, Clone)]
pub struct TestClusterOptions {
    /// Certificates, logs and etcd data. Default: a fresh directory under /dev/shm (or
    /// $TMPDIR), removed at stop. A given directory is kept.
    pub work_dir: Option<PathBuf>,
    /// Also write the kubeconfig here (e.g. a stable path for `kai testcluster up`).
    pub kubeconfig_path: Option<PathBuf>,
    /// Register `kai-node-1` and `kai-node-2`.
    pub default_nodes: bool,
    /// Give up starting after this long (binaries present).
    pub start_timeout: Duration,
}

impl Default for TestClusterOptions {
    fn default() -> Self {
        TestClusterOptions {
            work_dir: None,
            kubeconfig_path: None,
            default_nodes: true,
            start_timeout: Duration::from_secs(90),
        }
    }
}

struct Control {
    shutdown: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

pub(crate) struct Inner {
    pub(crate) kubeconfig: PathBuf,
    pub(crate) server: String,
    work_dir: Option<PathBuf>,
    remove_work_dir: bool,
    procs: Arc<Mutex<Vec<Proc>>>,
    pids: Vec<u32>,
    ports: Vec<u16>,
    control: Mutex<Option<Control>>,
    stopped: AtomicBool,
    pub(crate) discovery: tokio::sync::Mutex<Option<crate::setup::Resolver>>,
}

/// A running cluster (owned: stopped on `stop()`/drop), or one attached to by kubeconfig.
pub struct TestCluster {
    pub(crate) inner: Arc<Inner>,
}

struct Launched {
    kubeconfig: PathBuf,
    server: String,
    pids: Vec<u32>,
    ports: Vec<u16>,
}

impl TestCluster {
    /// Starts etcd, kube-apiserver, kube-controller-manager, kube-scheduler and the fake
    /// kubelet; returns once Pods can be created (default ServiceAccount token present, nodes
    /// Ready). Builds the binaries first if they are missing.
    pub async fn start(opts: TestClusterOptions) -> Result<TestCluster, Error> {
        // Ports are picked free and then bound by the child a moment later; another
        // process (any outgoing connection's ephemeral port) can take one in between.
        // That start fails with "address already in use" and is tried again on new ports.
        let mut tries = 0;
        loop {
            tries += 1;
            match Self::start_once(opts.clone()).await {
                Err(Error::ComponentExited { ref tail, .. })
                    if tries < 3 && tail.contains("address already in use") =>
                {
                    tracing::warn!("a test cluster port was taken during start-up; starting again");
                }
                r => return r,
            }
        }
    }

    async fn start_once(opts: TestClusterOptions) -> Result<TestCluster, Error> {
        let procs: Arc<Mutex<Vec<Proc>>> = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<Result<Launched, Error>>();
        let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let base = default_base();
        let (work_dir, remove_work_dir) = match &opts.work_dir {
            Some(d) => {
                std::fs::create_dir_all(d)
                    .map_err(|e| Error::io(format!("creating {}", d.display()), e))?;
                (d.clone(), false)
            }
            None => {
                sweep_stale(&base);
                (tempdir(&base, "cluster")?, true)
            }
        };
        let thread_procs = procs.clone();
        let thread_dir = work_dir.clone();
        // One long-lived thread per cluster: it forks the children (so PDEATHSIG ties them
        // to this thread's life) and runs the fake kubelet, whatever runtime the caller has.
        let thread = std::thread::Builder::new()
            .name("kai-testcluster".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(Error::io("building a tokio runtime", e)));
                        return;
                    }
                };
                rt.block_on(async {
                    // The build may block for minutes; on this dedicated runtime nothing
                    // else is waiting, so calling it directly is fine.
                    let r = match ensure_binaries() {
                        Ok(bin) => launch(&opts, &bin, &thread_dir, &thread_procs).await,
                        Err(e) => Err(e),
                    };
                    let ok = r.is_ok();
                    let _ = ready_tx.send(r);
                    if ok {
                        let _ = shutdown_rx.await;
                    }
                });
                // Stop the kubelet before the apiserver goes, then the processes.
                drop(rt);
                process::kill_all(&mut lock(&thread_procs), Duration::from_secs(3));
            })
            .map_err(|e| Error::io("spawning the cluster thread", e))?;
        let cleanup = |procs: &Arc<Mutex<Vec<Proc>>>| {
            process::kill_all(&mut lock(procs), Duration::from_secs(1));
            if remove_work_dir {
                let _ = std::fs::remove_dir_all(&work_dir);
            }
        };
        let launched = match ready_rx.await {
            Ok(Ok(l)) => l,
            Ok(Err(e)) => {
                let _ = thread.join();
                cleanup(&procs);
                return Err(e);
            }
            Err(_) => {
                let _ = thread.join();
                cleanup(&procs);
                return Err(Error::Other(
                    "the cluster thread died during start-up".into(),
                ));
            }
        };
        Ok(TestCluster {
            inner: Arc::new(Inner {
                kubeconfig: launched.kubeconfig,
                server: launched.server,
                work_dir: Some(work_dir.clone()),
                remove_work_dir,
                procs,
                pids: launched.pids,
                ports: launched.ports,
                control: Mutex::new(Some(Control {
                    shutdown: shutdown_tx,
                    thread,
                })),
                stopped: AtomicBool::new(false),
                discovery: tokio::sync::Mutex::new(None),
            }),
        })
    }

    /// Uses a cluster started elsewhere (e.g. by `kai testcluster up`), through its
    /// kubeconfig with the `kai-admin` and `kai-restricted` contexts. `stop` does nothing.
    pub fn attach(kubeconfig: impl Into<PathBuf>) -> Result<TestCluster, Error> {
        let kubeconfig = kubeconfig.into();
        let kc = Kubeconfig::read_from(&kubeconfig)?;
        let server = kc
            .clusters
            .first()
            .and_then(|c| c.cluster.as_ref())
            .and_then(|c| c.server.clone())
            .unwrap_or_default();
        Ok(TestCluster {
            inner: Arc::new(Inner {
                kubeconfig,
                server,
                work_dir: None,
                remove_work_dir: false,
                procs: Arc::new(Mutex::new(Vec::new())),
                pids: Vec::new(),
                ports: Vec::new(),
                control: Mutex::new(None),
                stopped: AtomicBool::new(false),
                discovery: tokio::sync::Mutex::new(None),
            }),
        })
    }

    pub fn kubeconfig_path(&self) -> &Path {
        &self.inner.kubeconfig
    }

    /// `https://127.0.0.1:<port>`
    pub fn server_url(&self) -> &str {
        &self.inner.server
    }

    /// Certificates, component logs (`<component>.log`) and etcd data; `None` when attached.
    pub fn work_dir(&self) -> Option<&Path> {
        self.inner.work_dir.as_deref()
    }

    /// PIDs of the etcd and kube-* processes this handle started (empty when attached).
    pub fn pids(&self) -> &[u32] {
        &self.inner.pids
    }

    /// Loopback ports this cluster listens on: etcd client, etcd peer, apiserver, kubelet.
    pub fn ports(&self) -> &[u16] {
        &self.inner.ports
    }

    pub async fn config_for_context(&self, context: &str) -> Result<Config, Error> {
        let kc = Kubeconfig::read_from(&self.inner.kubeconfig)?;
        let opts = KubeConfigOptions {
            context: Some(context.to_string()),
            ..KubeConfigOptions::default()
        };
        Ok(Config::from_custom_kubeconfig(kc, &opts).await?)
    }

    pub async fn admin_config(&self) -> Result<Config, Error> {
        self.config_for_context(ADMIN_CONTEXT).await
    }

    pub async fn restricted_config(&self) -> Result<Config, Error> {
        self.config_for_context(RESTRICTED_CONTEXT).await
    }

    /// A new client on the caller's runtime (clients must not outlive the runtime that made them).
    pub async fn admin_client(&self) -> Result<Client, Error> {
        client(self.admin_config().await?)
    }

    /// A [`crate::RecordingProxy`] that forwards as `context` (admin or restricted),
    /// with its kubeconfig written into `dir`.
    pub async fn recording_proxy(
        &self,
        context: &str,
        dir: &Path,
        namespace: &str,
    ) -> Result<crate::RecordingProxy, Error> {
        let client = client(self.config_for_context(context).await?)?;
        crate::RecordingProxy::start(client, dir, namespace).await
    }

    pub async fn restricted_client(&self) -> Result<Client, Error> {
        client(self.restricted_config().await?)
    }

    /// Stops every process, the fake kubelet, and removes the work directory. Idempotent.
    pub async fn stop(&self) -> Result<(), Error> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.stop_blocking())
            .await
            .map_err(|e| Error::Other(format!("stopping the cluster: {e}")))
    }

    /// Stops like [`TestCluster::stop`], for non-async callers.
    pub fn stop_blocking(&self) {
        self.inner.stop_blocking();
    }
}

impl Inner {
    pub(crate) fn stop_blocking(&self) {
        if self.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        let control = lock(&self.control).take();
        if let Some(c) = control {
            let _ = c.shutdown.send(());
            if c.thread.thread().id() != std::thread::current().id() {
                let _ = c.thread.join();
            }
        }
        self.kill_now();
    }

    /// Kills the children at once without the cluster thread (process exit, atexit).
    pub(crate) fn kill_now(&self) {
        process::kill_all(&mut lock(&self.procs), Duration::from_secs(2));
        if self.remove_work_dir {
            if let Some(d) = &self.work_dir {
                let _ = std::fs::remove_dir_all(d);
            }
        }
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        // Only the last handle stops (clones share `inner`).
        if Arc::strong_count(&self.inner) == 1 {
            self.inner.stop_blocking();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn client(config: Config) -> Result<Client, Error> {
    Client::try_from(config).map_err(|e| Error::kube("building a client", e))
}

fn write(path: &Path, text: &str) -> Result<(), Error> {
    std::fs::write(path, text).map_err(|e| Error::io(format!("writing {}", path.display()), e))
}

fn kubeconfig_yaml(server: &str, ca_pem: &str, users: &[(&str, &str, &str)]) -> String {
    // users: (context/user name, token, default namespace)
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    let doc = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "kai-testcluster", "cluster": {"server": server, "certificate-authority-data": ca}}],
        "users": users.iter().map(|(n, t, _)| json!({"name": n, "user": {"token": t}})).collect::<Vec<_>>(),
        "contexts": users.iter().map(|(n, _, ns)| json!({"name": n, "context": {"cluster": "kai-testcluster", "user": n, "namespace": ns}})).collect::<Vec<_>>(),
        "current-context": users.first().map(|u| u.0).unwrap_or_default(),
        "preferences": {},
    });
    serde_yaml::to_string(&doc).unwrap_or_default()
}

async fn launch(
    opts: &TestClusterOptions,
    bin: &Path,
    dir: &Path,
    procs: &Arc<Mutex<Vec<Proc>>>,
) -> Result<Launched, Error> {
    let t0 = Instant::now();
    let deadline = t0 + opts.start_timeout;
    let p = pki::generate()?;
    let admin_token = pki::token()?;
    let restricted_token = pki::token()?;
    let component_token = pki::token()?;
    let f = |n: &str| dir.join(n);
    write(&f("ca.crt"), &p.ca_pem)?;
    write(&f("apiserver.crt"), &p.serving_cert_pem)?;
    write(&f("apiserver.key"), &p.serving_key_pem)?;
    write(&f("sa.key"), &p.sa_key_pem)?;
    write(&f("sa.pub"), &p.sa_pub_pem)?;
    write(&f("front-proxy-ca.crt"), &p.front_proxy_ca_pem)?;
    write(&f("front-proxy-client.crt"), &p.front_proxy_client_cert_pem)?;
    write(&f("front-proxy-client.key"), &p.front_proxy_client_key_pem)?;
    write(
        &f("tokens.csv"),
        &format!(
            "{admin_token},admin,admin,\"system:masters\"\n\
             {restricted_token},{RESTRICTED_USER},{RESTRICTED_USER}\n\
             {component_token},kai-components,kai-components,\"system:masters\"\n"
        ),
    )?;
    let etcd_port = process::free_port()?;
    let peer_port = process::free_port()?;
    let api_port = process::free_port()?;
    let server = format!("https://127.0.0.1:{api_port}");
    let kubeconfig = opts
        .kubeconfig_path
        .clone()
        .unwrap_or_else(|| f("kubeconfig"));
    write(
        &kubeconfig,
        &kubeconfig_yaml(
            &server,
            &p.ca_pem,
            &[
                (ADMIN_CONTEXT, &admin_token, "default"),
                (RESTRICTED_CONTEXT, &restricted_token, RESTRICTED_NAMESPACE),
            ],
        ),
    )?;
    if opts.kubeconfig_path.is_some() {
        write(
            &f("kubeconfig"),
            &std::fs::read_to_string(&kubeconfig).unwrap_or_default(),
        )?;
    }
    write(
        &f("components.kubeconfig"),
        &kubeconfig_yaml(
            &server,
            &p.ca_pem,
            &[("kai-components", &component_token, "default")],
        ),
    )?;
    let s = |p: PathBuf| p.display().to_string();
    let args = |v: &[&str]| v.iter().map(|a| a.to_string()).collect::<Vec<String>>();

    let etcd_url = format!("http://127.0.0.1:{etcd_port}");
    let peer_url = format!("http://127.0.0.1:{peer_port}");
    let etcd = process::spawn(
        "etcd",
        Path::new("etcd"),
        &args(&[
            "--name=kai",
            &format!("--data-dir={}", s(f("etcd"))),
            &format!("--listen-client-urls={etcd_url}"),
            &format!("--advertise-client-urls={etcd_url}"),
            &format!("--listen-peer-urls={peer_url}"),
            &format!("--initial-advertise-peer-urls={peer_url}"),
            &format!("--initial-cluster=kai={peer_url}"),
            "--log-level=warn",
        ]),
        &f("etcd.log"),
    )?;
    lock(procs).push(etcd);
    let apiserver = process::spawn(
        "kube-apiserver",
        &bin.join("kube-apiserver"),
        &args(&[
            &format!("--etcd-servers={etcd_url}"),
            &format!("--secure-port={api_port}"),
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            "--insecure-port=0",
            &format!("--tls-cert-file={}", s(f("apiserver.crt"))),
            &format!("--tls-private-key-file={}", s(f("apiserver.key"))),
            &format!("--client-ca-file={}", s(f("ca.crt"))),
            &format!("--token-auth-file={}", s(f("tokens.csv"))),
            "--authorization-mode=Node,RBAC",
            &format!("--service-account-key-file={}", s(f("sa.pub"))),
            &format!("--service-account-signing-key-file={}", s(f("sa.key"))),
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            // A /16: the scan benchmark creates 1,000 Services with cluster IPs (a /24 holds
            // 254); the `kubernetes` Service keeps 10.0.0.1, which the serving cert names.
            "--service-cluster-ip-range=10.0.0.0/16",
            "--kubelet-preferred-address-types=InternalIP",
            // Nodes are created with the right taints already (see kubelet::node_object).
            "--disable-admission-plugins=TaintNodesByCondition",
            "--allow-privileged=true",
            "--profiling=false",
            // The apiserver dials aggregated APIs (the fake metrics API) at their
            // Endpoints: there is no kube-proxy for their Service's cluster IP.
            "--enable-aggregator-routing=true",
            // ... showing them its front-proxy client certificate, the one caller the
            // fake metrics API accepts (it listens on a non-loopback address).
            &format!(
                "--proxy-client-cert-file={}",
                s(f("front-proxy-client.crt"))
            ),
            &format!("--proxy-client-key-file={}", s(f("front-proxy-client.key"))),
            &format!(
                "--requestheader-client-ca-file={}",
                s(f("front-proxy-ca.crt"))
            ),
            &format!("--requestheader-allowed-names={}", pki::FRONT_PROXY_CLIENT),
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            &format!("--cert-dir={}", s(f("certs"))),
        ]),
        &f("kube-apiserver.log"),
    )?;
    lock(procs).push(apiserver);

    let config = {
        let kc = Kubeconfig::read_from(&kubeconfig)?;
        let o = KubeConfigOptions {
            context: Some(ADMIN_CONTEXT.to_string()),
            ..KubeConfigOptions::default()
        };
        Config::from_custom_kubeconfig(kc, &o).await?
    };
    let admin = client(config)?;
    let ca_der = rustls::pki_types::CertificateDer::from(
        pem_to_der(&p.ca_pem).ok_or_else(|| Error::Other("bad CA PEM".into()))?,
    );
    wait_until(procs, deadline, "the apiserver's /readyz", || {
        readyz(api_port, ca_der.clone(), admin_token.clone())
    })
    .await?;
    tracing::debug!("apiserver ready after {:?}", t0.elapsed());

    bootstrap_rbac(&admin).await?;

    // The controller manager and the scheduler: the same client set-up, no leader
    // election, no serving ports.
    let comp_kc = format!("--kubeconfig={}", s(f("components.kubeconfig")));
    let component = |name: &str, own: &[&str]| -> Result<(), Error> {
        let mut argv = args(&[
            &comp_kc,
            "--leader-elect=false",
            "--port=0",
            "--secure-port=0",
            "--kube-api-qps=200",
            "--kube-api-burst=400",
        ]);
        argv.extend(args(own));
        let child = process::spawn(name, &bin.join(name), &argv, &f(&format!("{name}.log")))?;
        lock(procs).push(child);
        Ok(())
    };
    component(
        "kube-controller-manager",
        &[
            &format!("--service-account-private-key-file={}", s(f("sa.key"))),
            &format!("--root-ca-file={}", s(f("ca.crt"))),
            "--use-service-account-credentials=false",
            "--cluster-name=kai",
        ],
    )?;
    component("kube-scheduler", &[])?;

    let kubelet = Kubelet::start(admin.clone()).await?;
    let kubelet_port = kubelet.state.port.load(std::sync::atomic::Ordering::SeqCst);
    // HPAs get metrics for pods that ask for them; without, they read none.
    if let Err(e) = crate::metrics::start(admin.clone(), p.front_proxy_ca_der.clone()).await {
        tracing::warn!("the fake metrics API is not served: {e}");
    }
    if opts.default_nodes {
        for n in DEFAULT_NODES {
            kubelet::create_node(&admin, &NodeSpec::new(n)).await?;
        }
        let nodes: Api<Node> = Api::all(admin.clone());
        wait_until(procs, deadline, "the default nodes to be Ready", || async {
            for n in DEFAULT_NODES {
                let node = nodes.get_opt(n).await.ok()??;
                let ready = node
                    .status?
                    .conditions?
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True");
                if !ready {
                    return None;
                }
            }
            Some(())
        })
        .await?;
    }
    // ServiceAccount admission rejects Pods until the namespace's default ServiceAccount
    // has its token (made by the controller manager).
    let sas: Api<ServiceAccount> = Api::namespaced(admin.clone(), "default");
    wait_until(
        procs,
        deadline,
        "the default ServiceAccount token",
        || async {
            let sa = sas.get_opt("default").await.ok()??;
            (!sa.secrets?.is_empty()).then_some(())
        },
    )
    .await?;
    tracing::info!("test cluster ready at {server} in {:.1?}", t0.elapsed());
    // The kubelet's tasks live on this runtime and hold its state themselves.
    drop(kubelet);
    let pids = lock(procs).iter().map(Proc::pid).collect();
    Ok(Launched {
        kubeconfig,
        server,
        pids,
        ports: vec![etcd_port, peer_port, api_port, kubelet_port],
    })
}

/// Polls `check` every 100 ms until it yields `Some`, failing early (with the log tail)
/// when a component exits, or at `deadline`.
async fn wait_until<F, Fut>(
    procs: &Arc<Mutex<Vec<Proc>>>,
    deadline: Instant,
    what: &str,
    mut check: F,
) -> Result<(), Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<()>>,
{
    let start = Instant::now();
    loop {
        if check().await.is_some() {
            return Ok(());
        }
        for p in lock(procs).iter_mut() {
            p.check_alive()?;
        }
        if Instant::now() > deadline {
            let logs: Vec<String> = lock(procs)
                .iter()
                .map(|p| format!("--- {}:\n{}", p.log.display(), process::tail(&p.log, 8)))
                .collect();
            return Err(Error::Timeout {
                what: what.to_string(),
                secs: start.elapsed().as_secs(),
                detail: format!("; component logs:\n{}", logs.join("\n")),
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The `restricted` user: read-only on common resources (not Secrets) in `restricted-ok`.
async fn bootstrap_rbac(admin: &Client) -> Result<(), Error> {
    let pp = PatchParams::apply("kai-testcluster").force();
    let objs = [
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": RESTRICTED_NAMESPACE}}),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "kai-read-only", "namespace": RESTRICTED_NAMESPACE},
            "rules": [
                {"apiGroups": [""], "resources": ["pods", "pods/log", "services", "endpoints", "configmaps",
                    "events", "persistentvolumeclaims", "replicationcontrollers", "serviceaccounts",
                    "resourcequotas", "limitranges"], "verbs": ["get", "list", "watch"]},
                {"apiGroups": ["apps"], "resources": ["deployments", "replicasets", "statefulsets",
                    "daemonsets"], "verbs": ["get", "list", "watch"]},
                {"apiGroups": ["batch"], "resources": ["jobs", "cronjobs"], "verbs": ["get", "list", "watch"]},
                {"apiGroups": ["networking.k8s.io", "extensions"], "resources": ["ingresses", "networkpolicies"],
                    "verbs": ["get", "list", "watch"]},
                {"apiGroups": ["autoscaling"], "resources": ["horizontalpodautoscalers"], "verbs": ["get", "list", "watch"]},
                {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"], "verbs": ["get", "list", "watch"]},
                {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["get", "list", "watch"]},
                {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["get", "list", "watch"]},
            ],
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "kai-restricted-read-only", "namespace": RESTRICTED_NAMESPACE},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "kai-read-only"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": RESTRICTED_USER}],
        }),
    ];
    for obj in objs {
        let kind = obj["kind"].as_str().unwrap_or_default().to_string();
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        // The RBAC bootstrap post-start hook may still be running right after /readyz.
        let mut tries = 0;
        loop {
            let r = match kind.as_str() {
                "Namespace" => Api::<k8s_openapi::api::core::v1::Namespace>::all(admin.clone())
                    .patch(&name, &pp, &Patch::Apply(&obj))
                    .await
                    .map(|_| ()),
                "Role" => Api::<k8s_openapi::api::rbac::v1::Role>::namespaced(
                    admin.clone(),
                    RESTRICTED_NAMESPACE,
                )
                .patch(&name, &pp, &Patch::Apply(&obj))
                .await
                .map(|_| ()),
                _ => Api::<k8s_openapi::api::rbac::v1::RoleBinding>::namespaced(
                    admin.clone(),
                    RESTRICTED_NAMESPACE,
                )
                .patch(&name, &pp, &Patch::Apply(&obj))
                .await
                .map(|_| ()),
            };
            match r {
                Ok(()) => break,
                Err(e) if tries < 50 => {
                    tries += 1;
                    tracing::debug!("bootstrap {kind}/{name}: {e}; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(Error::kube(format!("creating {kind} {name}"), e)),
            }
        }
    }
    Ok(())
}

fn pem_to_der(pem: &str) -> Option<Vec<u8>> {
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}

/// One `GET /readyz` over TLS by hand: kube's client logs every non-2xx answer at ERROR
/// level, which would flood the output while the apiserver runs its post-start hooks.
async fn readyz(
    port: u16,
    ca: rustls::pki_types::CertificateDer<'static>,
    token: String,
) -> Option<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca).ok()?;
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .ok()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").ok()?;
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .ok()?;
    let req = format!(
        "GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    tls.write_all(req.as_bytes()).await.ok()?;
    let mut head = [0u8; 12];
    tls.read_exact(&mut head).await.ok()?;
    (&head == b"HTTP/1.1 200").then_some(())
}
