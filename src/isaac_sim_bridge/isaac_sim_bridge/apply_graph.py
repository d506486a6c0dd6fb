"""
Create a GraphSpec in the open Isaac Sim stage through og.Controller.edit.

Only runs inside Isaac Sim (its python.sh), after the ``isaacsim.ros2.bridge``
extension is enabled; Isaac Sim modules are imported inside the function.
The og.Controller.edit call shape (graph dict with evaluator_name and pipeline_stage,
then CREATE_NODES / CONNECT / SET_VALUES) follows the Isaac Sim docs tutorial
"ROS2 Joint Control: Extension Python Scripting" and the standalone example
source/standalone_examples/api/isaacsim.ros2.bridge/camera_periodic.py (v5.1.0).
"""
from __future__ import annotations

from typing import Any

from isaac_sim_bridge.graph_spec import GraphSpec, PrimTargets


def apply_graph(spec: GraphSpec) -> Any:
    """Create the graph described by ``spec`` and return the og.Graph."""
    import omni.graph.core as og
    import usdrt.Sdf

    stages = {
        'on_demand': og.GraphPipelineStage.GRAPH_PIPELINE_STAGE_ONDEMAND,
        'simulation': og.GraphPipelineStage.GRAPH_PIPELINE_STAGE_SIMULATION,
    }

    def convert(value: Any) -> Any:
        # OmniGraph 'target' attributes take a list of usdrt paths.
        if isinstance(value, PrimTargets):
            return [usdrt.Sdf.Path(path) for path in value.paths]
        return value

    keys = og.Controller.Keys
    graph, _, _, _ = og.Controller.edit(
        {
            'graph_path': spec.graph_path,
            'evaluator_name': spec.evaluator_name,
            'pipeline_stage': stages[spec.pipeline_stage],
        },
        {
            keys.CREATE_NODES: [(node.name, node.node_type) for node in spec.nodes],
            keys.CONNECT: [(c.src, c.dst) for c in spec.connections],
            keys.SET_VALUES: [(v.path, convert(v.value)) for v in spec.values],
        },
    )
    return graph
