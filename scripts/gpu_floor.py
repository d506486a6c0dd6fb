#!/usr/bin/env python3
"""
GPU floor for the bundled policy: what one tick costs on a CUDA GPU with PyTorch.

Run on a machine with a CUDA GPU and PyTorch (no ROS needed):
    python3 scripts/gpu_floor.py [--runs 2000] [--factory reach_training.model:build]
Prints p50/p99 of: the network forward alone; a full tick (upload of a 640x480 rgb8
frame, area resize to 64x64, Isaac Lab normalisation, forward, download of the
actions); onnxruntime on models/reach_policy.onnx with every provider it offers; and
vision_policy's PolicyRuntime (I/O binding; on CUDA device-side input buffers) on each.
The default factory builds the bundled policy's network (src/reach_training); without
PyTorch those rows are skipped.

With CUDA it also times the session under each of several CUDA provider options, both
back to back and paced at --pace Hz (a node runs once per camera frame: the GPU and the
caches are cold between runs, which a tight loop hides), and prints each one's largest
action difference from the CPU provider on the same inputs (tf32 changes the numbers).
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
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        print('torch: not installed, torch rows skipped')
        return
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


def ort_floor(runs, pace):
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
        binding_floor(model, provider, runs,
                      pace if provider == 'CUDAExecutionProvider' else 0.0)
    if 'CUDAExecutionProvider' in ort.get_available_providers():
        cuda_variants(model, runs, pace)


# CUDA provider options tried (onnxruntime-gpu's defaults otherwise). A CUDA graph replays
# fixed device addresses, so that variant binds its outputs to device buffers as well.
CUDA_VARIANTS = (
    ('defaults', {}),
    ('cudnn_conv_algo_search=HEURISTIC', {'cudnn_conv_algo_search': 'HEURISTIC'}),
    ('cudnn_conv_use_max_workspace=0', {'cudnn_conv_use_max_workspace': '0'}),
    ('do_copy_in_default_stream=0', {'do_copy_in_default_stream': '0'}),
    ('use_tf32=0', {'use_tf32': '0'}),
    ('enable_cuda_graph=1', {'enable_cuda_graph': '1'}),
    ('enable_cuda_graph=1, use_tf32=0', {'enable_cuda_graph': '1', 'use_tf32': '0'}),
)


def timed(run, runs, pace):
    """Return the run times back to back and, with pace > 0, one run every 1 / pace s."""
    tight = []
    for _ in range(runs):
        t0 = time.perf_counter()
        run()
        tight.append(time.perf_counter() - t0)
    paced = []
    for _ in range(int(pace * 6)):  # 6 s of a camera-rate node
        time.sleep(1.0 / pace)
        t0 = time.perf_counter()
        run()
        paced.append(time.perf_counter() - t0)
    return tight, paced


def cuda_variants(model, runs, pace):
    """Time the CUDA provider under each of CUDA_VARIANTS, device-side I/O binding."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    cpu = ort.InferenceSession(str(model), so, providers=['CPUExecutionProvider'])
    rng = np.random.default_rng(0)
    feeds = {i.name: rng.standard_normal([d if isinstance(d, int) else 1 for d in i.shape])
             .astype(np.float32) for i in cpu.get_inputs()}
    want = cpu.run(None, feeds)[0]
    print(f'CUDA provider options, device-side inputs; paced: one run every {1e3 / pace:.1f} ms')
    for label, options in CUDA_VARIANTS:
        try:
            sess = ort.InferenceSession(str(model), so,
                                        providers=[('CUDAExecutionProvider', options)])
        except Exception as exc:  # noqa: B902 (an option this build refuses: say so, go on)
            print(f'  {label}: session not created ({exc})')
            continue
        graph = options.get('enable_cuda_graph') == '1'
        binding = sess.io_binding()
        device = {}
        for name, array in feeds.items():
            device[name] = ort.OrtValue.ortvalue_from_numpy(array, 'cuda', 0)
            binding.bind_ortvalue_input(name, device[name])
        outputs = {o.name: np.zeros([d if isinstance(d, int) else 1 for d in o.shape],
                                    np.float32) for o in sess.get_outputs()}
        device_out = {}
        for name, array in outputs.items():
            if graph:
                device_out[name] = ort.OrtValue.ortvalue_from_numpy(array, 'cuda', 0)
                binding.bind_ortvalue_output(name, device_out[name])
            else:
                binding.bind_output(name, 'cpu', 0, np.float32, list(array.shape),
                                    array.ctypes.data)

        def run():
            for name, value in device.items():
                value.update_inplace(feeds[name])
            sess.run_with_iobinding(binding)
            for name, value in device_out.items():
                np.copyto(outputs[name], value.numpy())

        for _ in range(100):
            run()
        tight, paced = timed(run, runs, pace)
        diff = float(np.abs(outputs[sess.get_outputs()[0].name] - want).max())
        print(f'  {label:<34} back to back {percentiles(tight)}')
        print(f'  {"":<34} paced        {percentiles(paced)}  max |CUDA - CPU| {diff:.2e}')


def binding_floor(model, provider, runs, pace=0.0):
    """
    Time vision_policy's PolicyRuntime: host arrays bound, or CUDA device buffers.

    On CUDA also with a session that replays a CUDA graph (device-side outputs too).
    """
    import onnxruntime as ort
    from vision_policy.observation import ObservationBuilder
    from vision_policy.runtime import load_policy, PolicyRuntime, RuntimeOptions
    session, card = load_policy(model, None, RuntimeOptions(providers=(provider,)))
    sessions = [session]
    if provider == 'CUDAExecutionProvider':
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.intra_op_num_threads = 1
        so.log_severity_level = 3
        sessions.append(ort.InferenceSession(
            str(model), so, providers=[(provider, {'enable_cuda_graph': '1'})]))
    for session in sessions:
        builder = ObservationBuilder(card)
        for buf in builder.inputs.values():
            buf[...] = np.random.default_rng(0).standard_normal(buf.shape)
        runtime = PolicyRuntime(session, card, builder.inputs, warmup_runs=100)
        kind = 'host arrays bound'
        if runtime.device_inputs:
            kind = 'device buffers, one upload and one read-back per run'
        if runtime.cuda_graph:
            kind += ', CUDA graph'
        tight, paced = timed(runtime.run, runs, pace)
        print(f'PolicyRuntime {runtime.provider} ({kind}): {percentiles(tight)}')
        if paced:
            print(f'  paced at {pace:g} Hz: {percentiles(paced)}')


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--runs', type=int, default=2000)
    parser.add_argument('--factory', default='reach_training.model:build',
                        help="'module:function' building the network (random weights)")
    parser.add_argument('--pace', type=float, default=30.0,
                        help='rate (Hz) of the paced CUDA runs, as a node at camera rate')
    args = parser.parse_args()
    torch_floor(args.runs, args.factory)
    ort_floor(args.runs, args.pace)


if __name__ == '__main__':
    main()
