#!/usr/bin/env python3
"""Regenerate models/reach_policy.onnx from the card beside it, with fixed seeded weights."""
from pathlib import Path
import sys

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / 'src' / 'vision_policy'))

from vision_policy.card import load_card  # noqa: E402
from vision_policy.example_model import build  # noqa: E402
from vision_policy.tools.export import export_policy  # noqa: E402

card = load_card(ROOT / 'models' / 'reach_policy.yaml')
err = export_policy(build(), card, ROOT / 'models' / 'reach_policy.onnx')
print(f'models/reach_policy.onnx written; max |onnxruntime - torch| = {err:.2e}')
