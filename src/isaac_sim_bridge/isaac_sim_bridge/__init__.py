"""Isaac Sim standalone app that bridges a USD robot to ROS 2 through OmniGraph."""
