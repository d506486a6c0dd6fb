"""Joint-name regexes resolved as Isaac Lab does (re.fullmatch, articulation order)."""

import xml.etree.ElementTree as ElementTree

import pytest
from vision_policy.isaaclab.joint_names import JointNameError, per_joint, resolve_names, \
    resolve_values
from vision_policy.isaaclab.urdf import joints_from_tree

ROBOT = ['fl_hx', 'fr_hx', 'arm0_sh0', 'fl_kn', 'fr_kn', 'arm0_el0']


def test_null_is_all_in_articulation_order():
    assert resolve_names(None, ROBOT) == ROBOT


def test_articulation_order_unless_preserve_order():
    # Isaac Lab: without preserve_order the result follows the articulation, not the patterns.
    assert resolve_names(['.*_kn', '.*_hx'], ROBOT) == ['fl_hx', 'fr_hx', 'fl_kn', 'fr_kn']
    assert resolve_names(['.*_kn', '.*_hx'], ROBOT, preserve_order=True) == [
        'fl_kn', 'fr_kn', 'fl_hx', 'fr_hx']


def test_fullmatch_and_negative_lookahead():
    assert resolve_names(['hx'], ['hx', 'fl_hx']) == ['hx']      # not a search
    assert resolve_names(['^(?!arm0).*'], ROBOT) == ['fl_hx', 'fr_hx', 'fl_kn', 'fr_kn']
    assert resolve_names(['(?!fl_).*_kn'], ROBOT) == ['fr_kn']


def test_errors_name_the_pattern():
    with pytest.raises(JointNameError, match=r"\['leg_.\*'\] match none"):
        resolve_names(['leg_.*', '.*_hx'], ROBOT)
    with pytest.raises(JointNameError, match="'fl_hx' matches more than one"):
        resolve_names(['fl_.*', '.*_hx'], ROBOT)
    with pytest.raises(JointNameError, match='not a valid regex'):
        resolve_names(['(unclosed'], ROBOT)


def test_values_dict_and_per_joint():
    data = {'.*_hx': 0.1, 'arm0_.*': -1.0}
    assert resolve_values(data, ROBOT) == {'fl_hx': 0.1, 'fr_hx': 0.1, 'arm0_sh0': -1.0,
                                           'arm0_el0': -1.0}
    assert per_joint(data, ROBOT, 0.0, 'x') == [0.1, 0.1, -1.0, 0.0, 0.0, -1.0]
    assert per_joint(0.5, ['a', 'b'], 1.0, 'x') == [0.5, 0.5]
    assert per_joint(None, ['a'], 1.0, 'x') == [1.0]


def test_urdf_breadth_first_skips_fixed():
    urdf = ElementTree.fromstring("""<robot name='r'>
      <link name='base'/><link name='a1'/><link name='a2'/><link name='b1'/><link name='cam'/>
      <joint name='ja1' type='revolute'><parent link='base'/><child link='a1'/>
        <limit lower='-1' upper='2' effort='1' velocity='1'/></joint>
      <joint name='ja2' type='continuous'><parent link='a1'/><child link='a2'/></joint>
      <joint name='jb1' type='prismatic'><parent link='base'/><child link='b1'/>
        <limit lower='0' upper='0.5' effort='1' velocity='1'/></joint>
      <joint name='jcam' type='fixed'><parent link='base'/><child link='cam'/></joint>
    </robot>""")
    joints = joints_from_tree(urdf)
    # Depth 1 (ja1, jb1) before depth 2 (ja2); the fixed camera joint has no DOF.
    assert joints.names == ('ja1', 'jb1', 'ja2')
    assert joints.limits == {'ja1': (-1.0, 2.0), 'jb1': (0.0, 0.5)}
