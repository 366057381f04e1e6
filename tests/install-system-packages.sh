#!/usr/bin/env bash
# The system packages the end-to-end tests need, installed once before pytest (`make test` runs this; so can you):
# headless Chromium and its driver for the browser tests, SLURM and munge for the test cluster, iproute2 for the
# browser's network namespace. Does nothing when every tool is already on PATH; needs root and apt-get otherwise.
set -euo pipefail

declare -A NEEDS=(
  [chromium]=chromium [chromedriver]=chromium-driver [ip]=iproute2 [unshare]=util-linux
  [slurmctld]=slurm-wlm [slurmd]=slurm-wlm [sbatch]=slurm-wlm [munged]=munge
)
missing=()
for tool in "${!NEEDS[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("${NEEDS[$tool]}")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages: all present"
  exit 0
fi
packages=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
if [ "$(id -u)" -ne 0 ]; then
  echo "system packages: missing ${packages}and installing them needs root (the browser and SLURM tests skip without them)" >&2
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "system packages: missing ${packages}and there is no apt-get to install them" >&2
  exit 0
fi
echo "system packages: installing ${packages}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086 # one word per package
apt-get install -y -qq --no-install-recommends $packages >/dev/null
