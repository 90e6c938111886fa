#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs the Debian packages it needs,
# builds (once, cached in ~/.cache/kai) the Kubernetes 1.20 control-plane binaries the
# real test cluster runs, checks formatting and lints, runs every test, and checks that
# no cluster process is left behind.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
scripts/build-cluster.sh >/dev/null

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings

# Test binaries run one after another; each starts its own loopback cluster when it
# needs one. Two test threads keep a 2-core machine responsive.
cargo test --workspace --no-fail-fast -- --test-threads=2

# Nothing the suite started may outlive it. A leftover is ours when its ancestry reaches
# this script or when it was orphaned (its parent died and it went to PID 1); a cluster
# whose parent is a live process outside this run belongs to another run on the same
# machine (a developer's test in another checkout) and is not this suite's leak.
ours() {
  local pid=$1 p
  p=$(ps -o ppid= -p "$pid" 2>/dev/null | tr -d ' ')
  [ -z "$p" ] && return 1 # gone meanwhile
  [ "$p" = 1 ] && return 0
  while [ -n "$p" ] && [ "$p" -gt 1 ]; do
    [ "$p" = "$$" ] && return 0
    p=$(ps -o ppid= -p "$p" 2>/dev/null | tr -d ' ')
  done
  return 1
}
left=""
for pid in $(pgrep -f "kai/testcluster/.*/bin/kube-|/usr/bin/etcd .*kai" || true); do
  if ours "$pid"; then left="$left $pid"; fi
done
if [ -n "$left" ]; then
  echo "FAIL: test-cluster processes left running after the suite:" >&2
  ps -o pid,args -p $left >&2 || true
  exit 1
fi
echo "no test-cluster processes left running"
