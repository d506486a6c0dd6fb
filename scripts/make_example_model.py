#!/usr/bin/env python3
"""
Regenerate models/reach_policy.onnx, the bundled reach policy, from trained weights.

    python3 scripts/make_example_model.py --weights out/reach_training/student.pt
    python3 scripts/make_example_model.py --train --out out/reach_training   # GPU, ~10 min

--weights exports a student trained by reach_training_train (src/reach_training) with
the card models/reach_policy.yaml embedded; --train trains first. Both run
vision_policy_export's export_policy, which checks onnxruntime against PyTorch.
"""
import argparse
from pathlib import Path
import sys

ROOT = Path(__file__).resolve().parent.parent
for package in ('vision_policy', 'mujoco_twin', 'reach_training'):
    sys.path.insert(0, str(ROOT / 'src' / package))

from vision_policy.card import load_card  # noqa: E402
from vision_policy.tools.export import export_policy, load_module  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument('--weights', help='student state dict (student.pt from training)')
parser.add_argument('--train', action='store_true', help='train first (reach_training_train)')
parser.add_argument('--out', default='out/reach_training', help='training output folder')
args = parser.parse_args()
if not args.weights and not args.train:
    parser.error('give --weights FILE (from reach_training_train) or --train')
weights = args.weights
if args.train:
    from reach_training.train import main as train_main
    if train_main(['--out', args.out]) != 0:
        sys.exit(1)
    weights = str(Path(args.out) / 'student.pt')
card = load_card(ROOT / 'models' / 'reach_policy.yaml')
module = load_module(None, 'reach_training.model:build', weights)
err = export_policy(module, card, ROOT / 'models' / 'reach_policy.onnx')
print(f'models/reach_policy.onnx written from {weights}; max |onnxruntime - torch| = {err:.2e}')
