"""Example vision_policy plugins; each module is one policy's terms and sources."""
