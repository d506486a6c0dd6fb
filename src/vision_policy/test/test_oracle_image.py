"""
Image parity with Isaac Lab's ``mdp.image`` inside its ObservationManager (isaaclab_oracle.py).

Isaac Lab renders at the training size straight into ``camera.data.output``
(NHWC: rgb uint8 (1, H, W, 3), depth float32 (1, H, W, 1)). This workspace
receives a ``sensor_msgs/Image`` payload, views it (``view_image``), runs the
card's ``ImagePipeline`` and the ``image`` term of ``ObservationBuilder``. The
source here has the card's size, as the importer writes ``resize`` = the training
camera's size: a camera of another size is resized, which Isaac Lab never does,
so that step has no oracle (test_image.py covers it).
"""

import isaaclab_oracle as oracle
import numpy as np
import pytest
from vision_policy.card import card_from_dict
from vision_policy.image import ImagePipeline, view_image
from vision_policy.observation import ObservationBuilder, Sample

il = oracle.load_or_skip()
torch = pytest.importorskip('torch')

WIDTH, HEIGHT = 32, 24          # not square: a transposed image cannot pass
TICKS = 100


class ImageRig:
    """Isaac Lab's image term and this workspace's pipeline + builder on the same frames."""

    def __init__(self, data_type, normalize, encoding, layout='NHWC', seed=0):
        self.rng = np.random.default_rng(seed)
        self.data_type, self.encoding = data_type, encoding
        self.env = oracle.SyntheticEnv(il, ['j'], [0.0])
        # The manager calls every term once at construction to learn its shape.
        self.env.scene.sensors['tiled_camera'].data.output[data_type] = self.frame()[0]
        self.env.set_observations({'camera': oracle.group_cfg(il, {'image': il.ObservationTermCfg(
            func=il.mdp.image, params={'sensor_cfg': il.SceneEntityCfg('tiled_camera'),
                                       'data_type': data_type, 'normalize': normalize})})})
        rgb = data_type == 'rgb'
        channels = 3 if rgb else 1
        shape = [1, HEIGHT, WIDTH, channels] if layout == 'NHWC' else [1, channels, HEIGHT, WIDTH]
        self.card = card_from_dict({
            'control_dt': 0.02, 'joint_names': ['j'],
            'inputs': [{'name': 'image', 'shape': shape, 'group': 'camera'}],
            'observations': {'camera': {'terms': [{'name': 'image'}]}},
            # As the importer writes it (env_yaml.image_spec).
            'image': {'data_type': 'rgb' if rgb else 'depth', 'resize': [WIDTH, HEIGHT],
                      'source_encodings': [encoding], 'layout': layout,
                      'normalize': ('isaaclab' if normalize else 'none') if rgb else 'none'},
            'action': {'joint_names': ['j']}})
        self.pipeline = ImagePipeline(self.card.image)
        self.builder = ObservationBuilder(self.card)

    def frame(self):
        """One random frame: (Isaac Lab output tensor, ROS payload bytes, step)."""
        if self.data_type == 'rgb':
            rgb = self.rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
            order = {'rgb8': [0, 1, 2], 'bgr8': [2, 1, 0], 'rgba8': [0, 1, 2, 3],
                     'bgra8': [2, 1, 0, 3]}[self.encoding]
            rgba = np.concatenate([rgb, self.rng.integers(0, 256, (HEIGHT, WIDTH, 1),
                                                          dtype=np.uint8)], axis=2)
            payload = np.ascontiguousarray(rgba[:, :, order])
            return torch.from_numpy(rgb.copy())[None], payload.tobytes(), payload.strides[0]
        metres = self.rng.uniform(0.1, 20.0, (HEIGHT, WIDTH)).astype(np.float32)
        metres[self.rng.random((HEIGHT, WIDTH)) < 0.1] = np.inf      # no return: +inf
        if self.encoding == '16UC1':
            millimetres = np.round(np.nan_to_num(metres, posinf=0.0) * 1000.0).astype(np.uint16)
            metres = np.where(np.isinf(metres), np.inf, millimetres / np.float32(1000.0))
            metres = metres.astype(np.float32)
            payload = millimetres
        else:
            payload = metres
        return torch.from_numpy(metres.copy())[None, :, :, None], payload.tobytes(), \
            payload.strides[0]

    def run(self, ticks=TICKS):
        """Max |Isaac Lab - workspace| over the ticks."""
        worst = 0.0
        camera = self.env.scene.sensors['tiled_camera']
        for _ in range(ticks):
            output, payload, step = self.frame()
            camera.data.output[self.data_type] = output
            expected = oracle.to_numpy(
                self.env.observation_manager.compute(update_history=True)['camera'])
            view = view_image(payload, WIDTH, HEIGHT, self.encoding, step)
            sample = Sample(joint_pos=np.zeros(1, np.float32), joint_vel=np.zeros(1, np.float32),
                            last_action=np.zeros(1, np.float32),
                            images={'': self.pipeline.process(view, self.encoding)})
            got = self.builder.build(sample)['image'][0]
            if self.card.image.layout == 'NCHW':
                got = got.transpose(1, 2, 0)
            worst = max(worst, oracle.max_abs_diff(expected, got))
        return worst


RGB_CASES = [(encoding, normalize) for normalize in (True, False)
             for encoding in ('rgb8', 'bgr8', 'rgba8', 'bgra8')]


@pytest.mark.parametrize('encoding, normalize', RGB_CASES)
def test_rgb_matches_isaaclab(encoding, normalize):
    worst = ImageRig('rgb', normalize, encoding, seed=len(encoding)).run()
    card_normalize = 'isaaclab' if normalize else 'none'
    oracle.report(f'image rgb normalize={normalize} ({encoding} source)',
                  f'mdp.image(data_type=rgb, normalize={normalize})', worst,
                  f'card normalize {card_normalize}, NHWC' +
                  ('; Isaac Lab gives uint8, the model input is float32' if not normalize else ''))
    assert worst <= oracle.TOLERANCE


def test_rgb_nchw_is_the_isaaclab_image_transposed():
    worst = ImageRig('rgb', True, 'rgb8', layout='NCHW', seed=7).run()
    oracle.report('image rgb layout NCHW', 'mdp.image(data_type=rgb)', worst,
                  'same values, channels first: for a model exported with the permute outside')
    assert worst <= oracle.TOLERANCE


@pytest.mark.parametrize('data_type', ['distance_to_image_plane', 'distance_to_camera', 'depth'])
@pytest.mark.parametrize('encoding', ['32FC1', '16UC1'])
def test_depth_matches_isaaclab(data_type, encoding):
    worst = ImageRig(data_type, True, encoding, seed=3).run()
    note = '+inf (no return) -> 0 in both'
    if encoding == '16UC1':
        note += '; millimetres / 1000 in float32 (training depth on a whole-mm grid)'
    oracle.report(f'image {data_type} ({encoding} source)',
                  f'mdp.image(data_type={data_type}, normalize=True)', worst, note)
    assert worst <= oracle.TOLERANCE


def test_depth_nan_and_unnormalized_inf_differ_on_purpose():
    # Isaac Lab sets only +inf to 0 (normalize=True) and passes NaN and -inf through; with
    # normalize=False it passes +inf too. This workspace sets every non-finite depth to 0:
    # a NaN or inf reaching the network gives a NaN or saturated action, and a robot-side
    # camera reports invalid depth as NaN and too close as -inf (REP 117).
    rig = ImageRig('distance_to_image_plane', True, '32FC1', seed=11)
    camera = rig.env.scene.sensors['tiled_camera']
    depth = np.full((HEIGHT, WIDTH), 2.5, dtype=np.float32)
    depth[0, :4] = [np.nan, -np.inf, np.inf, 1.0]
    camera.data.output['distance_to_image_plane'] = torch.from_numpy(
        depth.copy())[None, :, :, None]
    expected = oracle.to_numpy(rig.env.observation_manager.compute()['camera'])[..., 0]
    got = rig.pipeline.process(view_image(depth.tobytes(), WIDTH, HEIGHT, '32FC1', WIDTH * 4),
                               '32FC1')[..., 0]
    assert np.isnan(expected[0, 0]) and expected[0, 1] == -np.inf and expected[0, 2] == 0.0
    assert got[0, :4].tolist() == [0.0, 0.0, 0.0, 1.0]
    finite = np.isfinite(expected)
    worst = oracle.max_abs_diff(expected[finite], got[finite])
    oracle.report('image depth NaN / -inf', 'mdp.image(depth)', worst,
                  'intended: NaN and -inf -> 0 here, passed through by Isaac Lab '
                  '(+inf -> 0 in both); equal elsewhere')
    assert worst <= oracle.TOLERANCE
