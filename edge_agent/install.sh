#!/usr/bin/env bash
# Install the MCOMS edge agent as a systemd service on Raspberry Pi OS (Bookworm).
#   sudo ./edge_agent/install.sh            (from a checkout of the MCOMS repository)
# Re-running it upgrades the agent and keeps the configuration, token and outbox.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
prefix=/opt/mcoms-edge
etc=/etc/mcoms-edge

if [ "$(id -u)" -ne 0 ]; then
  echo "run as root: sudo $0" >&2
  exit 1
fi

echo "== packages"
apt-get update -q
apt-get install -y -q python3 python3-venv

echo "== user mcoms-edge (member of dialout, which owns the USB serial adapters)"
if ! id mcoms-edge >/dev/null 2>&1; then
  useradd --system --no-create-home --home-dir /var/lib/mcoms-edge \
    --shell /usr/sbin/nologin --groups dialout mcoms-edge
fi

echo "== the agent in $prefix/venv"
python3 -m venv "$prefix/venv"
"$prefix/venv/bin/pip" install --quiet --upgrade pip
"$prefix/venv/bin/pip" install --quiet --upgrade "$here"
install -d "$prefix/docs"
if [ -f "$here/../docs/edge-agent.md" ]; then
  install -m 0644 "$here/../docs/edge-agent.md" "$prefix/docs/edge-agent.md"
fi

echo "== configuration in $etc"
install -d -m 0750 -o root -g mcoms-edge "$etc"
if [ ! -f "$etc/config.yaml" ]; then
  install -m 0640 -o root -g mcoms-edge "$here/config.example.yaml" "$etc/config.yaml"
  echo "   wrote $etc/config.yaml from the example: edit server.url, bus.port and meters"
fi
if [ ! -f "$etc/token" ]; then
  install -m 0640 -o root -g mcoms-edge /dev/null "$etc/token"
  echo "   put the gateway's token (shown once when it was registered) in $etc/token"
fi

echo "== systemd unit"
install -m 0644 "$here/systemd/mcoms-edge.service" /etc/systemd/system/mcoms-edge.service
if command -v systemd-analyze >/dev/null; then
  systemd-analyze verify /etc/systemd/system/mcoms-edge.service
fi
systemctl daemon-reload
systemctl enable mcoms-edge.service

if [ -s "$etc/token" ]; then
  systemctl restart mcoms-edge.service
  echo "== started: journalctl -u mcoms-edge -f"
else
  echo "== enabled, not started: add the token, then: sudo systemctl start mcoms-edge"
fi
