"""The recording report: term ranges against clip bounds, holds, image age, jitter, PNG."""

import numpy as np
import pytest

pytest.importorskip('mcap.reader', reason='mcap not installed')

from test_recording import HELD_TICKS, record  # noqa: E402
from vision_policy import report  # noqa: E402
from vision_policy.recording import McapFile, RecordingError  # noqa: E402


@pytest.fixture(scope='module')
def recorded(tmp_path_factory, model_path):
    path = tmp_path_factory.mktemp('report') / 'run.mcap'
    record(path, model_path)
    return path


def test_summary_figures(recorded):
    r = report.summarise(recorded)
    assert (r.ticks, r.commands) == (40, 40 - len(HELD_TICKS))
    assert r.held_s == {'input too old: image': pytest.approx(0.05 * len(HELD_TICKS))}
    assert list(r.terms) == ['policy/joint_pos_rel', 'policy/joint_vel_rel',
                             'policy/last_action', 'camera/image']
    vel = r.terms['policy/joint_vel_rel']
    # Card: clip [-50, 50] then scale 0.1: the network saw at most +-5.
    assert vel.bound == (-5.0, 5.0) and not vel.outside
    # Recorded velocities are N(0, 0.5) rad/s, scaled by 0.1.
    assert 0.0 < np.max(np.abs(vel.high)) < 0.5
    assert r.terms['camera/image'].low.shape == (3,)  # per channel
    assert len(r.image_age_s) == r.commands and max(r.image_age_s) == 0.0
    assert len(r.tick_interval_s) == r.ticks - 1
    text = r.text()
    assert 'held 0.10 s' in text and 'bound [-5, 5]; ok' in text


def test_terms_at_the_clip_bound_are_flagged(tmp_path, model_path):
    card = (model_path.with_suffix('.yaml')).read_text()
    assert '- {name: joint_pos_rel}' in card
    tight = tmp_path / 'tight.yaml'
    tight.write_text(card.replace('- {name: joint_pos_rel}',
                                  '- {name: joint_pos_rel, clip: [-0.1, 0.1]}'))
    record(tmp_path / 'tight.mcap', model_path, card_path=tight)
    r = report.summarise(tmp_path / 'tight.mcap')
    t = r.terms['policy/joint_pos_rel']
    # Positions are N(0, 0.5) rad: nearly every tick has a joint beyond 0.1 rad.
    assert t.bound == (-0.1, 0.1)
    assert t.at_bound > 0.9 * t.ticks and t.high.max() == pytest.approx(0.1)
    assert 'policy/joint_pos_rel [3]' in r.text() and 'AT CLIP BOUND' in r.text()
    assert not r.terms['policy/joint_vel_rel'].outside


def test_png_and_cli(recorded, tmp_path):
    png = report.plot(report.summarise(recorded), tmp_path / 'r.png')
    assert png.stat().st_size > 20000
    assert report.main([str(recorded), '--out', str(tmp_path / 'out')]) == 0
    written = sorted(p.name for p in (tmp_path / 'out').iterdir())
    assert written == ['run.json', 'run.png', 'run.txt']


def test_plain_bag_and_truncated_file_are_refused(recorded, tmp_path, capsys):
    bag = McapFile(tmp_path / 'bag.mcap')
    bag.close()
    with pytest.raises(RecordingError, match='without vision_policy per-tick data'):
        report.summarise(tmp_path / 'bag.mcap')
    cut = tmp_path / 'cut.mcap'
    cut.write_bytes(recorded.read_bytes()[:5000])
    assert report.main([str(cut), '--out', str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert 'not a complete MCAP file' in err and 'Traceback' not in err
