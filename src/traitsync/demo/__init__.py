"""``traitsync demo``: the whole flow on the embedded default, with a local receiver."""

from traitsync.demo.runner import run_demo

__all__ = ["run_demo"]
