#!/usr/bin/env bash
# Installs what bpf-harness needs on a Debian 12 host, and nothing that is already there:
# Debian packages (QEMU, clang, libbpf, busybox, dropbear, ...) and the npm dependencies.
# Safe to run again; quick when everything is in place.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  qemu-system-x86   # the guest
  clang llvm        # BPF objects
  gcc make libc6-dev libbpf-dev libelf-dev zlib1g-dev libzstd-dev  # the static guest agent
  busybox-static dropbear-bin iproute2 bash dash bpftool  # programs copied into the guest image
  cpio kmod xz-utils zstd lz4 gzip  # initramfs archives; depmod and unpacking kernel modules; a kernel for direct (PVH) boot
  util-linux        # setpriv: QEMU dies with its parent
  jq                # the agent's host smoke test (tests/integration/agent-host.test.ts)
  tmux              # tests/integration/shell.test.ts drives npm run shell through a terminal multiplexer
  flex bison bc perl libssl-dev  # kernel source builds (npm run kernels -- build)
  ccache            # a bisect's steps (npm run bisect) compile only what they have not compiled before
  ca-certificates
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# Compilers for the harness's own tests of `run` as a test runner (go test -exec and a cargo runner,
# tests/integration/run.test.ts), unless the host has them already (rustup's cargo, say).
command -v go >/dev/null || missing+=(golang-go)
command -v cargo >/dev/null || missing+=(cargo)
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=()
  [ "$(id -u)" -eq 0 ] || SUDO=(sudo)
  "${SUDO[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# The default kernel's headers, pinned to its version (tests/integration/faults.test.ts builds a module that
# WARNs against them). Skipped with a note when the archive no longer has that version.
pin=$(jq -r --arg k "$(jq -r .default kernels/catalog.json)" '.[$k] | "\(.package | sub("^linux-image-"; "linux-headers-"))=\(.version)"' kernels/lock.json)
if ! dpkg-query -W -f='${Status} ${Version}' "${pin%%=*}" 2>/dev/null | grep -q "install ok installed ${pin#*=}"; then
  SUDO=()
  [ "$(id -u)" -eq 0 ] || SUDO=(sudo)
  echo "setup: installing $pin (kernel headers of the default kernel)"
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -q --no-install-recommends "$pin" \
    || echo "setup: note: $pin is not installable; the test that builds a WARN module will be skipped"
fi

if ! command -v node >/dev/null || ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)'; then
  echo "setup: Node.js 20 or newer is needed (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm dependencies"
  npm ci --no-audit --no-fund
fi
echo "setup: ready"
