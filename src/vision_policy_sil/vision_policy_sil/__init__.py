"""SIL bringup for the vision policy: NITROS image pipeline and the Isaac Sim command adapter."""
