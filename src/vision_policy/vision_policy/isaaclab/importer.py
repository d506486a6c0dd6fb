"""Find the run files, translate them, wire the card to the ONNX, and validate it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional, Sequence

from . import direct_env, env_yaml, io_descriptors, leapp
from .assemble import assemble
from .joint_names import JointNameError
from .onnx_io import OnnxSignature, OnnxSignatureError, read_signature, read_tensors
from .report import ImportReport
from .yaml_loader import load_file
from ..card import card_from_dict, CardError, PolicyCard
from ..observation import ObservationBuilder
from ..registry import load_registry, Registry


@dataclass(frozen=True)
class ImportResult:
    """A validated card (or a template for direct envs), its plain data, and the report."""

    report: ImportReport
    card: Optional[PolicyCard] = None
    card_data: Optional[dict] = None
    template: Optional[str] = None


@dataclass(frozen=True)
class RunFiles:
    """The Isaac Lab files found for one policy."""

    env: Optional[Path] = None
    agent: Optional[Path] = None
    descriptors: Optional[Path] = None
    onnx: Optional[Path] = None


def _first(folder: Path, names: Sequence[str]) -> Optional[Path]:
    return next((folder / n for n in names if (folder / n).is_file()), None)


def find_files(path: str | Path, onnx: Optional[str | Path] = None) -> RunFiles:
    """Locate env.yaml, agent.yaml, IO_descriptors.yaml and the ONNX for a run folder or file."""
    path = Path(path)
    if path.is_file():
        folder = path.parent
        is_desc = 'io_descriptors' in path.name.lower()
        files = RunFiles(env=None if is_desc else path, descriptors=path if is_desc else None,
                         agent=None if is_desc else _first(folder, ['agent.yaml']))
        run = folder.parent if folder.name == 'params' else folder
    elif path.is_dir():
        files = RunFiles(env=_first(path, ['params/env.yaml', 'env.yaml']),
                         agent=_first(path, ['params/agent.yaml', 'agent.yaml']),
                         descriptors=_first(path, ['IO_descriptors.yaml',
                                                   'params/IO_descriptors.yaml']))
        run = path
    else:
        raise FileNotFoundError(f'{path}: no such run folder or file')
    found = Path(onnx) if onnx else _first(run, ['exported/policy.onnx', 'policy.onnx'])
    return RunFiles(files.env, files.agent, files.descriptors, found)


def import_run(path: str | Path, onnx: Optional[str | Path] = None,
               joint_names: Optional[Sequence[str]] = None,
               joint_limits: Optional[Mapping[str, tuple]] = None,
               registry: Optional[Registry] = None) -> ImportResult:
    """
    Import an Isaac Lab run folder, env.yaml or IO_descriptors.yaml into a policy card.

    Isaac Lab funcs and action classes map to the built-in or registered terms
    of ``registry`` (default: every installed entry point). Unsupported terms
    or actions, and width mismatches, are problems in the report (no card);
    unreadable files raise IsaacLabFileError, DescriptorError or
    FileNotFoundError.
    """
    registry = registry if registry is not None else load_registry()
    files = find_files(path, onnx)
    report = ImportReport(source=str(path))
    sig = _signature(files.onnx, report)
    if files.descriptors is not None:
        return _from_descriptors(files, sig, report)
    if files.env is None:
        raise FileNotFoundError(f'{path}: neither params/env.yaml nor IO_descriptors.yaml found')
    env = load_file(files.env)
    if leapp.is_bundle(env):
        return _from_leapp(env, files.env, onnx, registry)
    agent = load_file(files.agent) if files.agent else None
    if direct_env.is_direct(env):
        return _direct(env, agent, report, joint_names, Path(path).name)
    if not joint_names:
        report.problem('joint_names', 'env.yaml does not list the robot joints: give them in '
                       'articulation order (--joint-names, --joint-names-file, --urdf or '
                       '--from-joint-states)')
        return ImportResult(report)
    twice = sorted({n for n in joint_names if list(joint_names).count(n) > 1})
    if twice:
        report.problem('joint_names', f'the joint names given list {twice} more than once')
        return ImportResult(report)
    name = str((agent or {}).get('experiment_name') or Path(path).name or 'isaaclab_policy')
    try:
        tr = env_yaml.translate(env, agent, joint_names, report, joint_limits, name, registry)
    except JointNameError as exc:
        # Patterns of env.yaml that match none of the given names: the names are wrong.
        report.problem('joint_names', f'{exc}. The joint names given '
                                      f'{list(joint_names)} do not match env.yaml')
        return ImportResult(report)
    return _finish(assemble(tr, sig, report), report, registry)


def _direct(env: Mapping, agent: Optional[Mapping], report: ImportReport,
            joint_names: Optional[Sequence[str]], name: str) -> ImportResult:
    """Isaac Lab's own direct camera tasks get a complete card, other direct envs a template."""
    task = direct_env.recognise(env)
    if task is None:
        return ImportResult(report, template=direct_env.template(env, agent, report))
    if task.refuse is not None:
        report.problem(f'direct task {task.name}', task.refuse)
        return ImportResult(report)
    name = str(((agent or {}).get('params') or {}).get('config', {}).get('name') or name)
    data = direct_env.cartpole_card(env, agent, report, joint_names, name)
    if data is None:
        return ImportResult(report)
    report.problem('action', f'{task.name} applies an effort ({direct_env.EFFORT_TERM}); no '
                             f'built-in action term commands efforts: the card is complete, '
                             f'the node refuses it at configure')
    return ImportResult(report, card_data=data,
                        template=direct_env.card_text(data, task, report))


def _from_leapp(data: dict, path: Path, onnx: Optional[str | Path],
                registry: Registry) -> ImportResult:
    """Import a LEAPP bundle's YAML; its own ONNX (or the one given) gives the shapes."""
    report = ImportReport(source=str(path))
    model = Path(onnx) if onnx else leapp.model_path(data, path)
    shapes = None
    if model is not None:
        try:
            shapes = {t.name: t.shape for t in read_tensors(model)[0]}
        except OnnxSignatureError as exc:
            report.problem('ONNX model', str(exc))
    card = leapp.translate(data, path, report, shapes)
    report.warnings.append('a LEAPP bundle records no joint limits or defaults: set '
                           'position_lower_limits / position_upper_limits for the robot')
    return _finish(card, report, registry)


def _signature(onnx: Optional[Path], report: ImportReport) -> Optional[OnnxSignature]:
    if onnx is None:
        report.warnings.append('no ONNX model given: widths are not checked')
        return None
    try:
        return read_signature(onnx)
    except OnnxSignatureError as exc:
        report.problem('ONNX model', str(exc))
        return None


def _from_descriptors(files: RunFiles, sig: Optional[OnnxSignature],
                      report: ImportReport) -> ImportResult:
    data = load_file(files.descriptors)
    name = files.descriptors.parent.name or 'isaaclab_policy'
    tr = io_descriptors.translate(data, report, name)
    model_width = sig.obs.width if sig is not None and sig.obs is not None else None
    if not io_descriptors.history_recorded(data) and tr.width and model_width and \
            model_width != tr.width and model_width % tr.width == 0:
        # Older exports do not record history; the ONNX width says how many steps.
        steps = model_width // tr.width
        report = ImportReport(source=report.source)
        tr = io_descriptors.translate(data, report, name, history_length=steps)
        report.warnings.append(f'these IO descriptors do not record history_length; the ONNX '
                               f'input ({model_width}) is {steps} x the per-step width, so '
                               f'history_length {steps} is assumed for every term: confirm it')
    return _finish(assemble(tr, sig, report), report)


def _finish(data: Optional[dict], report: ImportReport,
            registry: Optional[Registry] = None) -> ImportResult:
    if data is None:
        return ImportResult(report)
    try:
        card = card_from_dict(data)
        ObservationBuilder(card, registry)  # resolves every term, checks the widths once more
    except CardError as exc:
        report.problem('card', str(exc))
        return ImportResult(report, card_data=data)
    return ImportResult(report, card=card, card_data=data)
