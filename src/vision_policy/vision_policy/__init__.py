"""vision_policy: run an Isaac Lab vision policy (ONNX) on a ROS 2 robot."""
