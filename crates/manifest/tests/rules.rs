//! Every rule fires on a manifest written to trigger it and stays quiet on a near miss;
//! the clean bundle triggers nothing at all. A rule without a case here fails
//! `every_rule_has_cases`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kai_manifest::{check_files, ClusterFacts, Options, ServiceFact, RULES};

/// A bundle that follows every rule: a Deployment, its Service, Ingress, PDB and HPA,
/// and a CronJob.
const CLEAN: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      securityContext:
        runAsNonRoot: true
      containers:
      - name: web
        image: registry.example:5000/web:1.4.2
        ports:
        - name: http
          containerPort: 8080
        env:
        - name: MODE
          value: production
        - name: DB_PASSWORD
          valueFrom:
            secretKeyRef: {name: db, key: password}
        resources:
          requests: {cpu: 100m, memory: 128Mi}
          limits: {cpu: 500m, memory: 256Mi}
        readinessProbe:
          httpGet: {path: /ready, port: http}
        livenessProbe:
          tcpSocket: {port: 8080}
        securityContext:
          allowPrivilegeEscalation: false
          readOnlyRootFilesystem: true
          capabilities:
            drop: [ALL]
      volumes:
      - name: tmp
        emptyDir: {}
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - name: http
    port: 80
    targetPort: http
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
spec:
  rules:
  - host: web.example
    http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service:
            name: web
            port: {number: 80}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: web
spec:
  minAvailable: 1
  selector:
    matchLabels: {app: web}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: web
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 2
  maxReplicas: 5
  metrics:
  - type: Resource
    resource:
      name: cpu
      target: {type: Utilization, averageUtilization: 70}
---
apiVersion: batch/v1
kind: CronJob
metadata:
  name: report
spec:
  schedule: "*/15 * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          securityContext: {runAsUser: 1000}
          containers:
          - name: report
            image: busybox:1.36
            resources:
              requests: {cpu: 10m, memory: 16Mi}
              limits: {memory: 32Mi}
            securityContext:
              allowPrivilegeEscalation: false
              readOnlyRootFilesystem: true
"#;

fn rules_fired(text: &str, opts: &Options) -> Vec<String> {
    let r = check_files(&[("t.yaml".into(), text.into())], opts);
    r.findings.iter().map(|f| f.rule.to_string()).collect()
}

fn edit(pairs: &[(&str, &str)]) -> String {
    let mut s = CLEAN.to_string();
    for (from, to) in pairs {
        assert!(s.contains(from), "the clean bundle has no {from:?}");
        s = s.replacen(from, to, 1);
    }
    s
}

/// (rule, a bundle where it fires, a near miss where it must not, options).
fn cases() -> Vec<(&'static str, String, String, Options)> {
    let o = Options::default;
    vec![
        ("yaml-parse", edit(&[("name: web\n  labels", "name: [web\n  labels")]), edit(&[("name: web\n  labels", "name: \"[web\"\n  labels")]), o()),
        ("schema-unknown-field", edit(&[("replicas: 2", "replica: 2")]), edit(&[("replicas: 2", "replicas: 3")]), o()),
        ("schema-invalid", edit(&[("replicas: 2", "replicas: two")]), edit(&[("replicas: 2", "replicas: \"2\"".replace('"', "").as_str())]), o()),
        ("schema-unknown-kind", format!("{CLEAN}---\napiVersion: example.com/v1\nkind: Widget\nmetadata: {{name: w}}\n"), CLEAN.into(), o()),
        ("missing-requests", edit(&[("requests: {cpu: 100m, memory: 128Mi}\n          limits: {cpu: 500m, memory: 256Mi}", "limits: {memory: 256Mi}")]), edit(&[("requests: {cpu: 100m, memory: 128Mi}\n          limits: {cpu: 500m, memory: 256Mi}", "limits: {cpu: 500m, memory: 256Mi}")]), o()),
        ("missing-limits", edit(&[("limits: {cpu: 500m, memory: 256Mi}", "limits: {cpu: 500m}")]), edit(&[("limits: {cpu: 500m, memory: 256Mi}", "limits: {memory: 256Mi}")]), o()),
        ("requests-exceed-limits", edit(&[("memory: 128Mi}", "memory: 1Gi}")]), edit(&[("memory: 128Mi}", "memory: 256Mi}")]), o()),
        ("missing-readiness-probe", edit(&[("        readinessProbe:\n          httpGet: {path: /ready, port: http}\n", "")]), edit(&[("readinessProbe:\n          httpGet: {path: /ready, port: http}", "readinessProbe:\n          exec: {command: [true]}")]), o()),
        ("missing-liveness-probe", edit(&[("        livenessProbe:\n          tcpSocket: {port: 8080}\n", "")]), edit(&[("livenessProbe:\n          tcpSocket: {port: 8080}", "livenessProbe:\n          exec: {command: [true]}")]), o()),
        ("probe-port-not-exposed", edit(&[("tcpSocket: {port: 8080}", "tcpSocket: {port: 9090}")]), edit(&[("tcpSocket: {port: 8080}", "tcpSocket: {port: http}")]), o()),
        ("image-latest", edit(&[("web:1.4.2", "web:latest")]), edit(&[("web:1.4.2", "web:latest-1.4")]), o()),
        ("image-untagged", edit(&[("web:1.4.2", "web")]), edit(&[("web:1.4.2", "web@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")]), o()),
        ("run-as-root", edit(&[("runAsNonRoot: true", "runAsNonRoot: false")]), edit(&[("runAsNonRoot: true", "runAsUser: 10001")]), o()),
        ("privilege-escalation", edit(&[("allowPrivilegeEscalation: false\n          readOnly", "readOnly")]), CLEAN.into(), o()),
        ("privileged", edit(&[("readOnlyRootFilesystem: true\n          capabilities", "readOnlyRootFilesystem: true\n          privileged: true\n          capabilities")]), edit(&[("readOnlyRootFilesystem: true\n          capabilities", "readOnlyRootFilesystem: true\n          privileged: false\n          capabilities")]), o()),
        ("capabilities-added", edit(&[("drop: [ALL]", "add: [NET_ADMIN]")]), edit(&[("drop: [ALL]", "add: []")]), o()),
        ("writable-root-fs", edit(&[("readOnlyRootFilesystem: true\n          capabilities", "readOnlyRootFilesystem: false\n          capabilities")]), CLEAN.into(), o()),
        ("host-network", edit(&[("securityContext:\n        runAsNonRoot", "hostNetwork: true\n      securityContext:\n        runAsNonRoot")]), edit(&[("securityContext:\n        runAsNonRoot", "hostNetwork: false\n      securityContext:\n        runAsNonRoot")]), o()),
        ("host-pid", edit(&[("securityContext:\n        runAsNonRoot", "hostPID: true\n      securityContext:\n        runAsNonRoot")]), edit(&[("securityContext:\n        runAsNonRoot", "hostPID: false\n      securityContext:\n        runAsNonRoot")]), o()),
        ("host-ipc", edit(&[("securityContext:\n        runAsNonRoot", "hostIPC: true\n      securityContext:\n        runAsNonRoot")]), edit(&[("securityContext:\n        runAsNonRoot", "hostIPC: false\n      securityContext:\n        runAsNonRoot")]), o()),
        ("host-path", edit(&[("emptyDir: {}", "hostPath: {path: /var/run}")]), CLEAN.into(), o()),
        ("duplicate-env", edit(&[("name: DB_PASSWORD", "name: MODE")]), CLEAN.into(), o()),
        ("env-secret-literal", edit(&[("valueFrom:\n            secretKeyRef: {name: db, key: password}", "value: hunter2")]), edit(&[("valueFrom:\n            secretKeyRef: {name: db, key: password}", "value: \"\"")]), o()),
        ("duplicate-container-name", edit(&[("volumes:\n      - name: tmp", "initContainers:\n      - name: web\n        image: busybox:1.36\n        securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true}\n      volumes:\n      - name: tmp")]), edit(&[("volumes:\n      - name: tmp", "initContainers:\n      - name: init\n        image: busybox:1.36\n        securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true}\n      volumes:\n      - name: tmp")]), o()),
        ("selector-template-mismatch", edit(&[("matchLabels: {app: web}\n  template", "matchLabels: {app: webs}\n  template")]), edit(&[("labels: {app: web}\n    spec", "labels: {app: web, tier: front}\n    spec")]), o()),
        ("missing-app-label", edit(&[("matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}", "matchLabels: {tier: web}\n  template:\n    metadata:\n      labels: {tier: web}")]), edit(&[("labels: {app: web}\n    spec", "labels: {app.kubernetes.io/name: web, app: web}\n    spec")]), o()),
        ("single-replica", edit(&[("replicas: 2", "replicas: 1"), ("minAvailable: 1", "maxUnavailable: 1")]), CLEAN.into(), o()),
        ("service-selector-no-match", edit(&[("selector: {app: web}\n  ports", "selector: {app: api}\n  ports")]), edit(&[("selector: {app: web}\n  ports", "selector: {}\n  ports")]), o()),
        ("service-target-port", edit(&[("targetPort: http", "targetPort: 8081")]), edit(&[("targetPort: http", "targetPort: 8080")]), o()),
        ("service-nodeport", edit(&[("selector: {app: web}\n  ports", "type: NodePort\n  selector: {app: web}\n  ports")]), edit(&[("selector: {app: web}\n  ports", "type: ClusterIP\n  selector: {app: web}\n  ports")]), o()),
        ("ingress-backend-missing", edit(&[("name: web\n            port", "name: api\n            port")]), format!("{}---\napiVersion: v1\nkind: Service\nmetadata: {{name: api}}\nspec: {{ports: [{{port: 80}}]}}\n", edit(&[("name: web\n            port", "name: api\n            port")])), o()),
        ("ingress-backend-port", edit(&[("port: {number: 80}", "port: {number: 8080}")]), edit(&[("port: {number: 80}", "port: {name: http}")]), o()),
        ("pdb-blocks-eviction", edit(&[("minAvailable: 1", "minAvailable: 2")]), edit(&[("minAvailable: 1", "maxUnavailable: 1")]), o()),
        ("hpa-target-no-requests", edit(&[("name: cpu\n", "name: memory\n"), ("requests: {cpu: 100m, memory: 128Mi}\n          limits: {cpu: 500m, memory: 256Mi}", "requests: {cpu: 100m}\n          limits: {cpu: 500m}")]), edit(&[("requests: {cpu: 100m, memory: 128Mi}\n          limits: {cpu: 500m, memory: 256Mi}", "requests: {cpu: 100m}\n          limits: {cpu: 500m, memory: 256Mi}")]), o()),
        ("namespace-mismatch", edit(&[("name: web\n  labels", "name: web\n  namespace: prod\n  labels")]), edit(&[("name: web\n  labels", "name: web\n  namespace: shop\n  labels")]), Options { namespace: Some("shop".into()), ..Options::default() }),
        ("deprecated-api", edit(&[("apiVersion: policy/v1\n", "apiVersion: policy/v1beta1\n")]), CLEAN.into(), o()),
        ("duplicate-object", format!("{CLEAN}---\napiVersion: v1\nkind: Service\nmetadata: {{name: web}}\nspec: {{selector: {{app: web}}, ports: [{{port: 80, targetPort: http}}]}}\n"), format!("{CLEAN}---\napiVersion: v1\nkind: Service\nmetadata: {{name: web2}}\nspec: {{selector: {{app: web}}, ports: [{{port: 80, targetPort: http}}]}}\n"), o()),
        ("cronjob-schedule", edit(&[("\"*/15 * * * *\"", "\"every 15 minutes\"")]), edit(&[("\"*/15 * * * *\"", "\"@hourly\"")]), o()),
    ]
}

#[test]
fn the_clean_bundle_triggers_nothing() {
    assert_eq!(
        rules_fired(CLEAN, &Options::default()),
        Vec::<String>::new()
    );
}

#[test]
fn every_rule_fires_on_its_case_and_not_on_the_near_miss() {
    for (rule, fires, clean, opts) in cases() {
        let got = rules_fired(&fires, &opts);
        assert!(
            got.iter().any(|r| r == rule),
            "{rule} did not fire; got {got:?}"
        );
        let got = rules_fired(&clean, &opts);
        assert!(
            !got.iter().any(|r| r == rule),
            "{rule} fired on its near miss; got {got:?}"
        );
    }
}

#[test]
fn every_rule_has_cases() {
    let covered: Vec<&str> = cases().iter().map(|c| c.0).collect();
    for r in RULES {
        assert!(covered.contains(&r.id), "rule {} has no test case", r.id);
    }
    assert!(RULES.len() >= 29, "{} rules", RULES.len());
}

#[test]
fn the_ignore_annotation_silences_named_rules_on_that_object_only() {
    let text = edit(&[
        ("web:1.4.2", "web:latest"),
        ("name: web\n  labels", "name: web\n  annotations:\n    kai.dev/ignore: \"image-latest,  service-nodeport\"\n  labels"),
    ]);
    assert_eq!(
        rules_fired(&text, &Options::default()),
        Vec::<String>::new()
    );
}

#[test]
fn an_ingress_backend_in_the_cluster_counts() {
    let text = edit(&[("name: web\n            port", "name: api\n            port")]);
    let facts = |port| Options {
        cluster: Some(ClusterFacts {
            services: vec![ServiceFact {
                namespace: "default".into(),
                name: "api".into(),
                ports: vec![(None, port)],
            }],
            workloads: vec![],
        }),
        ..Options::default()
    };
    assert_eq!(rules_fired(&text, &facts(80)), Vec::<String>::new());
    assert_eq!(
        rules_fired(&text, &facts(81)),
        vec!["ingress-backend-port".to_string()]
    );
    assert_eq!(
        rules_fired(&text, &Options::default()),
        vec!["ingress-backend-missing".to_string()]
    );
}
