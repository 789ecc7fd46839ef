"""Scheduling strategies of the Ray stand-in (the subset the SDK uses)."""


class NodeAffinitySchedulingStrategy:
    """Run a task on the node with node_id; soft=False fails when it is gone."""

    def __init__(self, node_id, soft, _spill_on_unavailable=False, _fail_on_unavailable=False):
        self.node_id = node_id
        self.soft = soft
        self._spill_on_unavailable = _spill_on_unavailable
        self._fail_on_unavailable = _fail_on_unavailable
