"""The benchmarks behind ``occlupose bench``, ``occlupose model-bench`` and ``occlupose soak``.

``command`` (the bench command: runs, report, JSON), ``speed`` (the contenders, side by side),
quality without ground truth in ``metrics`` (ID switches, jitter), ``events`` (occlusion events),
``occluders`` (drawing them), ``tracker_adapters`` (the trackers compared) and ``replay`` (the pass
that runs them), ``stills`` (keypoint AP on still images), ``chart``, ``targets`` (checked against
``configs/bench.yaml``), ``report`` (the printed table), ``models`` (pose model speed and size) and
``soak`` (a long batch run over a synthetic scene, watching memory); identity against ground truth:
``mot_eval`` (scoring MOT-format results with TrackEval, ``occlupose eval-track``) and ``mot`` (the trackers
on MOT sequences, ``occlupose bench --mot``).
"""
