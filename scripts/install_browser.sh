#!/usr/bin/env bash
# The browser the web app's tests drive with Playwright: Debian's chromium, installed with apt-get (as root,
# or with sudo) when missing; never `playwright install`, which downloads a browser of its own. Without it
# those tests cannot run, so this fails rather than let them skip. Run by `bash scripts/setup.sh --test`.
#
#   ATTENTIVE_ERASER_NO_BROWSER=1        skip this step (the browser tests then fail)
#   ATTENTIVE_ERASER_CHROMIUM=PATH       the browser the tests use (default /usr/bin/chromium)
set -euo pipefail
CHROMIUM=${ATTENTIVE_ERASER_CHROMIUM:-/usr/bin/chromium}
if [ -x "$CHROMIUM" ] || [ "${ATTENTIVE_ERASER_NO_BROWSER:-0}" = 1 ]; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1; then
  SUDO=sudo
else
  echo "error: $CHROMIUM is missing and this user cannot install it (not root, no sudo): install Debian's" \
    "chromium package, or set ATTENTIVE_ERASER_NO_BROWSER=1" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "error: $CHROMIUM is missing and there is no apt-get to install it; the browser tests need it" >&2
  exit 1
fi
echo "setup: installing Debian's chromium for the browser tests with ${SUDO:+sudo }apt-get" \
  "(ATTENTIVE_ERASER_NO_BROWSER=1 skips this)" >&2
if ! { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq chromium chromium-driver; } >/dev/null; then
  echo "error: could not install chromium with apt-get; the browser tests need $CHROMIUM" >&2
  exit 1
fi
if [ ! -x "$CHROMIUM" ]; then
  echo "error: chromium was installed but $CHROMIUM is missing" >&2
  exit 1
fi
