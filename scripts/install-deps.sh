#!/usr/bin/env bash
# Installs the Debian packages kai's local test cluster and test suite need.
# Idempotent: does nothing when everything is already present.
set -euo pipefail

need=()
pkgs=(etcd-server golang-go rsync dpkg-dev golang-github-modern-go-reflect2-dev openssl ca-certificates python3)
# kubectl is only used to compare against in tests and benchmarks; any version will do.
command -v kubectl >/dev/null 2>&1 || pkgs+=(kubernetes-client)
for pkg in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done

SRC=/etc/apt/sources.list.d/kai-deb-src.sources
want_src=0
[ -f "$SRC" ] || want_src=1

if [ ${#need[@]} -eq 0 ] && [ $want_src -eq 0 ]; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

if [ $want_src -eq 1 ]; then
  # The kubernetes source package (deb-src) is what the cluster binaries are built from.
  . /etc/os-release
  suite="${VERSION_CODENAME:-bookworm}"
  echo "kai: enabling deb-src for Debian $suite" >&2
  $SUDO tee "$SRC" >/dev/null <<SRCEOF
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRCEOF
fi

echo "kai: installing Debian packages: ${need[*]:-none}" >&2
$SUDO apt-get update -qq
if [ ${#need[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi
