#!/usr/bin/env bash
# Install what tracekit's test suite needs on a Debian/Ubuntu machine (run as root).
# Idempotent: packages already present are not fetched again.
set -euo pipefail

packages=(
  iproute2    # ip netns, veth: the namespace test network
  nftables    # nft: firewall rules on lab routers
  traceroute  # the system traceroute, a cross-check and benchmark peer
  util-linux  # setpriv: run without CAP_NET_RAW
  procps      # ps and ss: check that nothing is left running or half open
  chromium    # headless browser: render the HTML map
  graphviz    # dot: render the graphs of the tracekit-dot plugin
  dnsmasq-base  # a DNS server (no service) for the tracekit-dns plugin's tests
  python3-venv  # python3 -m venv: a place for tox where pip may not install (below)
  tmux        # a real terminal for the live view's tests
  time        # GNU time: a run's own peak memory (a child's wait4 figure counts its parent's)
)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# tox 4, on PATH for the command that follows this script (README: `... && tox`).
# - Already there: nothing to do.
# - A Python whose pip may install (a virtual environment, pyenv...): into it.
# - Stock Debian/Ubuntu, whose Python refuses pip ("externally-managed-environment", PEP 668)
#   or has none: into a virtual environment of its own, linked as /usr/local/bin/tox.
venv=${TRACEKIT_TOX_VENV:-/opt/tracekit-test-venv}
bin_dir=${TRACEKIT_TOX_BIN:-/usr/local/bin}
tox_is_4() {
  local version
  version=$(tox --version 2>/dev/null) || return 1
  [[ ${version%%.*} -ge 4 ]]
}
if tox_is_4; then
  :
elif python3 -m pip install --quiet --disable-pip-version-check "tox>=4" 2>/dev/null \
    && tox_is_4; then
  :
else
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "tox>=4"
  mkdir -p "$bin_dir"
  ln -sf "$venv/bin/tox" "$bin_dir/tox"
  hash -r
  tox_is_4 || { echo "tox is in $venv/bin, but $bin_dir is not on PATH" >&2; exit 1; }
fi
