"""
Translate Isaac Lab run files (env.yaml, agent.yaml, IO_descriptors.yaml, ONNX) into cards.

``importer.import_run`` is the entry point; each other module has one job:
reading Isaac Lab's YAML safely, resolving joint-name regexes, reading the
ONNX signature, translating env.yaml or IO descriptors, and the report.
"""
