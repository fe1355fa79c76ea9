#!/usr/bin/env bash
# What the tests need besides npm packages: redis-server, redis-sentinel, redis-cli and nginx
# (started by the tests on free ports), chromium (driven by playwright-core at /usr/bin/chromium),
# and ip and nft for the multi-host lab's network namespaces. On Debian or Ubuntu as root, installs what is missing; elsewhere, says what to install.
set -euo pipefail

declare -A package_of=([redis-server]=redis-server [redis-sentinel]=redis-sentinel [redis-cli]=redis-tools [nginx]=nginx [chromium]=chromium [nft]=nftables [ip]=iproute2)
missing=()
for cmd in "${!package_of[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${package_of[$cmd]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing ${missing[*]} (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "roomcast tests need: ${missing[*]}. Install them (Debian/Ubuntu: apt-get install ${missing[*]}) and run again." >&2
  exit 1
fi
