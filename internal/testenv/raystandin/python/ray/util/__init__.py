"""ray.util of the Ray stand-in: get_node_ip_address and scheduling strategies."""

import os


def get_node_ip_address():
    """The IP of the node this process runs on (as the stand-in agent set it)."""
    return os.environ.get("RAY_STANDIN_NODE_IP", "127.0.0.1")


from ray.util import scheduling_strategies  # noqa: E402,F401
