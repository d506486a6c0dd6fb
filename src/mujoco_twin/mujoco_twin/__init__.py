"""MuJoCo twin of the reach arm: ROS-free simulator (sim) and ROS 2 node (twin_node)."""
