"""
Training side of the bundled reach policy (not needed on a robot).

``task``: the task, the scripted expert and the command semantics of the twin;
``randomization``: domain randomisation of one MuJoCo model;
``env``: one environment with the card's exact observation and action pipeline;
``vec_env``: many environments stepped as one batch by a process pool;
``model``: the image student network; ``train``: DAgger; ``evaluate``: success rates.
"""
