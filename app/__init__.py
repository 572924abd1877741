"""occlupose's people-facing layer. The Python API's short names are importable from here
(``from app import track, Pipeline, open_source``); they load on first use, so the command line's
``--help`` stays fast."""

from __future__ import annotations

_API = ("track", "make_config", "settings_mapping", "as_dict", "as_arrays", "as_dataframe", "Pipeline",
        "PipelineConfig", "open_source", "FrameResult", "ConfigError", "OccluposeError")

__all__ = list(_API)


def __getattr__(name: str):
    if name in _API:
        from app import api

        return getattr(api, name)
    raise AttributeError(f"module 'app' has no attribute {name!r}")
