#!/usr/bin/env bash
# The system packages `make run` and `make test` need, installed when missing.
#
#   scripts/system-deps.sh run    what `make run` needs: a C compiler with OpenMP (the
#                                 kernels), curl (the instances' user data), Python's venv
#   scripts/system-deps.sh test   everything the checks need: the above, plus OpenBLAS and
#                                 LAPACK (LINPACK), Debian's Chromium (the report's browser
#                                 tests), an aarch64 cross compiler and qemu-user (the SVE
#                                 kernel under emulation), iperf3 and fio (network and
#                                 storage benchmarks)
#
# Each need is probed (a command on PATH, a library in the ldconfig cache, a Python
# module); only what is missing is installed, as root with apt-get (update first). Not
# root, or no apt-get: one line naming the exact command to run, and exit 2. Debian's
# package names (Debian 12 is what the tests are run on).
set -euo pipefail

what="${1:-test}"
python="${PYTHON:-python3}"
case "$what" in
  run | test) ;;
  *)
    echo "error: usage: scripts/system-deps.sh run|test" >&2
    exit 2
    ;;
esac

has_command() { PATH="$PATH:/sbin:/usr/sbin" command -v "$1" >/dev/null 2>&1; }
has_library() {
  local ldconfig
  ldconfig="$(PATH="$PATH:/sbin:/usr/sbin" command -v ldconfig || true)"
  [ -n "$ldconfig" ] && "$ldconfig" -p | grep -q "$1"
}
has_venv() { "$python" -c "import ensurepip, venv" >/dev/null 2>&1; }

missing() {
  local need=()
  has_venv || need+=(python3-venv)
  has_command gcc || need+=(gcc)
  has_library 'libgomp\.so' || need+=(libgomp1)
  has_command curl || need+=(curl)
  if [ "$what" = test ]; then
    has_library 'libopenblas' || need+=(libopenblas-dev)
    has_library 'liblapack\.so' || need+=(liblapack-dev)
    has_command chromium || need+=(chromium)
    has_command aarch64-linux-gnu-gcc || need+=(gcc-aarch64-linux-gnu)
    has_command qemu-aarch64 || need+=(qemu-user)
    has_command iperf3 || need+=(iperf3)
    has_command fio || need+=(fio)
    has_command mkfs.ext4 || need+=(e2fsprogs)  # the storage safety tests format a loop device
    has_command losetup || need+=(mount)  # losetup (Debian ships it in "mount")
  fi
  echo "${need[@]:-}"
}

read -r -a need <<<"$(missing)"
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ] || ! has_command apt-get; then
  if has_command apt-get; then
    how="run: sudo apt-get update && sudo apt-get install -y ${need[*]}"
  else
    how="this machine has no apt-get: install the equivalents of Debian's ${need[*]}"
  fi
  echo "error: make $what needs system packages that are missing: ${need[*]}; $how" >&2
  exit 2
fi

echo "installing system packages for make $what: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${need[@]}" >/dev/null
read -r -a still <<<"$(missing)"
if [ ${#still[@]} -gt 0 ]; then
  echo "error: still missing after apt-get install: ${still[*]}" >&2
  exit 1
fi
