#!/usr/bin/env python3
"""
GPU floor for the bundled policy: what one tick costs on a CUDA GPU with PyTorch.

Run on a machine with a CUDA GPU and PyTorch (no ROS needed):
    python3 scripts/gpu_floor.py [--runs 2000] [--factory reach_training.model:build]
Prints p50/p99 of: the network forward alone; a full tick (upload of a 640x480 rgb8
frame, area resize to 64x64, Isaac Lab normalisation, forward, download of the
actions); onnxruntime on models/reach_policy.onnx with every provider it offers; and
vision_policy's PolicyRuntime (I/O binding; on CUDA device-side input buffers) on each.
The default factory builds the bundled policy's network (src/reach_training).
"""
import argparse
from pathlib import Path
import sys
import time

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
for package in ('vision_policy', 'reach_training'):
    sys.path.insert(0, str(ROOT / 'src' / package))


def percentiles(samples):
    a = np.asarray(samples) * 1e3
    return f'p50 {np.percentile(a, 50):.3f} ms  p99 {np.percentile(a, 99):.3f} ms  (n={len(a)})'


def torch_floor(runs, factory):
    import importlib
    import torch
    import torch.nn.functional as F
    module, func = factory.split(':')
    build = getattr(importlib.import_module(module), func)
    if not torch.cuda.is_available():
        print('torch: CUDA not available')
        return
    dev = torch.device('cuda')
    print(f'torch {torch.__version__} on {torch.cuda.get_device_name(0)}, network {factory}')
    net = build().to(dev).eval()
    frame = torch.from_numpy(np.random.default_rng(0).integers(
        0, 256, (480, 640, 3), dtype=np.uint8)).pin_memory()
    obs = torch.zeros(1, 9, device=dev)
    image = torch.zeros(1, 3, 64, 64, device=dev)
    fwd, tick = [], []
    with torch.inference_mode():
        for i in range(runs + 200):
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            net(obs, image)
            torch.cuda.synchronize()
            t1 = time.perf_counter()
            x = frame.to(dev, non_blocking=True).permute(2, 0, 1).unsqueeze(0).float()
            x = F.interpolate(x, size=(64, 64), mode='area') / 255.0
            x = x - x.mean(dim=(2, 3), keepdim=True)
            out = net(obs, x).cpu()
            t2 = time.perf_counter()
            if i >= 200:
                fwd.append(t1 - t0)
                tick.append(t2 - t1)
    del out
    print(f'torch CUDA forward only:            {percentiles(fwd)}')
    print(f'torch CUDA full tick (640x480 in):  {percentiles(tick)}')


def ort_floor(runs):
    import onnxruntime as ort
    model = ROOT / 'models' / 'reach_policy.onnx'
    print(f'onnxruntime {ort.__version__}, providers available: {ort.get_available_providers()}')
    for provider in ort.get_available_providers():
        if provider not in ('CUDAExecutionProvider', 'CPUExecutionProvider'):
            continue
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        sess = ort.InferenceSession(str(model), so, providers=[provider])
        feeds = {i.name: np.zeros([d if isinstance(d, int) else 1 for d in i.shape],
                                  np.float32) for i in sess.get_inputs()}
        times = []
        for i in range(runs + 100):
            t0 = time.perf_counter()
            sess.run(None, feeds)
            if i >= 100:
                times.append(time.perf_counter() - t0)
        print(f'onnxruntime {provider}: {percentiles(times)}')
        binding_floor(model, provider, runs)


def binding_floor(model, provider, runs):
    """Time vision_policy's PolicyRuntime: host arrays bound, or CUDA device buffers."""
    from vision_policy.observation import ObservationBuilder
    from vision_policy.runtime import load_policy, PolicyRuntime, RuntimeOptions
    session, card = load_policy(model, None, RuntimeOptions(providers=(provider,)))
    builder = ObservationBuilder(card)
    for buf in builder.inputs.values():
        buf[...] = np.random.default_rng(0).standard_normal(buf.shape)
    runtime = PolicyRuntime(session, card, builder.inputs, warmup_runs=100)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        runtime.run()
        times.append(time.perf_counter() - t0)
    kind = 'inputs in device buffers, one upload and one read-back per run' if \
        runtime.device_inputs else 'host arrays bound'
    print(f'PolicyRuntime {runtime.provider} ({kind}): {percentiles(times)}')


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--runs', type=int, default=2000)
    parser.add_argument('--factory', default='reach_training.model:build',
                        help="'module:function' building the network (random weights)")
    args = parser.parse_args()
    torch_floor(args.runs, args.factory)
    ort_floor(args.runs)


if __name__ == '__main__':
    main()
