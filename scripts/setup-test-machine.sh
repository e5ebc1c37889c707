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
  tmux        # a real terminal for the live view's tests
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
python3 -m pip install --quiet --disable-pip-version-check "tox>=4"
