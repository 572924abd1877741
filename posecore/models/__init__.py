"""Pose models, each built by a function registered by name (see :mod:`posecore.models.registry`).

Importing this package registers every builder: ``hrnet_w32``, ``hrnet_w48``, ``hrnet_small``
(plain heatmap models), ``dag_hrnet_w32``, ``dag_hrnet_w48``, ``dag_hrnet_small`` (the DAG),
``fgmh_gcn``, ``couplegraph`` (pose refiners) and ``yolo_refiner`` (the runtime refiner on YOLO's
own features).
"""

from . import couplegraph, dag, gcn, pose_hrnet, yolo_refiner  # noqa: F401  (importing registers the builders)
from .registry import available_configs, build_model, get_builder, list_models, load_model_config, register_model

__all__ = ["available_configs", "build_model", "get_builder", "list_models", "load_model_config", "register_model"]
