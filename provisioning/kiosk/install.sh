#!/usr/bin/env bash
# Turn a fresh Debian/Ubuntu mini-PC into a kiosk: a locked-down "kiosk" user whose only
# program is Chromium showing the kiosk page, started at boot by systemd.
#   sudo bash provisioning/kiosk/install.sh [URL]
# URL defaults to the edge on this machine: http://127.0.0.1:8080/ui/kiosk.html?kiosk=k1
set -euo pipefail
[ "$(id -u)" -eq 0 ] || { echo "run as root (sudo)" >&2; exit 1; }
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
URL="${1:-http://127.0.0.1:8080/ui/kiosk.html?kiosk=k1}"
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq --no-install-recommends xserver-xorg xinit x11-xserver-utils chromium \
    fonts-noto-cjk >/dev/null
id kiosk >/dev/null 2>&1 || useradd --create-home --shell /usr/sbin/nologin kiosk
install -d /usr/local/lib/madoguchi /etc/madoguchi
install -m 0755 "$HERE/kiosk-session" /usr/local/lib/madoguchi/kiosk-session
install -m 0644 "$HERE/madoguchi-kiosk.service" /etc/systemd/system/madoguchi-kiosk.service
install -m 0644 "$HERE/60-madoguchi.rules" /etc/udev/rules.d/60-madoguchi.rules
printf 'MADOGUCHI_URL=%s\n' "$URL" > /etc/madoguchi/kiosk.env
# Xorg may be started by a non-console user only with this wrapper setting
printf 'allowed_users=anybody\nneeds_root_rights=yes\n' > /etc/X11/Xwrapper.config
udevadm control --reload-rules || true
systemctl daemon-reload
systemctl enable madoguchi-kiosk.service
systemctl set-default graphical.target
echo "kiosk installed: it starts at the next boot (or: systemctl start madoguchi-kiosk)"
