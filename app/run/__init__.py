"""The run layer: composes posecore's stages with the tracker (``pipeline``), writes results
(``sinks``) and drives a run over a source (``loop``). It sits above ``posecore`` and ``trackers``."""
