#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager and kube-scheduler 1.20.2 from
# Debian's kubernetes source package and caches them outside the repository, so
# only the first run pays for the build (a few minutes on 2 cores).
set -euo pipefail

VERSION=1.20.2
CACHE="${KAI_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kai}/testcluster/$VERSION"
BIN="$CACHE/bin"
WANT=(kube-apiserver kube-controller-manager kube-scheduler)

have_all=1
for b in "${WANT[@]}"; do [ -x "$BIN/$b" ] || have_all=0; done
if [ $have_all -eq 1 ]; then
  echo "$BIN"
  exit 0
fi

bash "$(dirname "$0")/install-deps.sh"

echo "kai: building the test cluster binaries (Kubernetes $VERSION) into $BIN; the first run takes about 5 minutes" >&2
WORK="$CACHE/src"
rm -rf "$WORK"
mkdir -p "$WORK" "$BIN"
cd "$WORK"
apt-get source -qq --download-only kubernetes >&2
dpkg-source -x --no-check kubernetes_*.dsc src >/dev/null 2>&1 || dpkg-source -x kubernetes_*.dsc src >&2
cd src

# The vendored reflect2 1.0.1 faults at run time under Go >= 1.18; Debian ships 1.0.2.
R2=/usr/share/gocode/src/github.com/modern-go/reflect2
if [ -d "$R2" ] && [ -d vendor/github.com/modern-go/reflect2 ]; then
  rm -rf vendor/github.com/modern-go/reflect2
  mkdir -p vendor/github.com/modern-go/reflect2
  cp -r "$R2"/. vendor/github.com/modern-go/reflect2/
  find vendor/github.com/modern-go/reflect2 -name '*_test.go' -delete
fi

export GOPROXY=off GOFLAGS=-mod=vendor GO111MODULE=on GOCACHE="$CACHE/gocache"
export KUBE_GIT_VERSION="v$VERSION" KUBE_GIT_TREE_STATE=clean KUBE_GIT_COMMIT=debian
make WHAT="cmd/kube-apiserver cmd/kube-controller-manager cmd/kube-scheduler" >&2

for b in "${WANT[@]}"; do
  install -m 0755 "_output/bin/$b" "$BIN/$b.tmp"
  mv "$BIN/$b.tmp" "$BIN/$b"
done
cd "$CACHE"
rm -rf "$WORK" "$CACHE/gocache"
echo "$BIN"
