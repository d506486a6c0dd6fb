#!/bin/bash
# Train the bundled reach policy on a GPU machine without internet (the workspace's device
# tool): EGL libraries from carried .gl/*.deb, MuJoCo from carried .whl/*.whl (see README).
# Usage, from the workspace root: src/reach_training/tools/device_train.sh [train options]
set -e -o pipefail
OUT=${OUT:-out/reach_training}
mkdir -p "$OUT"
if [ -d .gl ]; then for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig; fi
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PYTHONPATH:$PWD/src/vision_policy:$PWD/src/mujoco_twin:$PWD/src/reach_training
export MUJOCO_GL=egl PYTHONUNBUFFERED=1
nvidia-smi -L || true
echo "cpus: $(nproc)"
python3 - <<'PY' 2>&1 | tee "$OUT/train.txt"
import time
from mujoco_twin.sim import ReachArmSim, SimConfig
from OpenGL import GL
sim = ReachArmSim(SimConfig(image_width=640, image_height=480))
sim.render()
print('GL renderer:', GL.glGetString(GL.GL_RENDERER).decode())
t = time.perf_counter()
for _ in range(200):
    sim.render()
print(f'640x480 render: {(time.perf_counter() - t) / 200 * 1e3:.2f} ms')
PY
python3 -m reach_training.train --out "$OUT" "$@" 2>&1 | tee -a "$OUT/train.txt"
python3 -m vision_policy.tools.export --card models/reach_policy.yaml \
  --output "$OUT/reach_policy.onnx" --factory reach_training.model:build \
  --weights "$OUT/student.pt" 2>&1 | tee -a "$OUT/train.txt"
