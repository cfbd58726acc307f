"""Tasks: data generators with their decision rules and metrics."""

from spikefleet.tasks.registry import TASKS, XorTask, get_task

__all__ = ["TASKS", "XorTask", "get_task"]
