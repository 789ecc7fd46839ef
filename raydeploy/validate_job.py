# raydeploy's validation job: one task pinned to every ALIVE node; prints
# where each ran. Submitted through Ray's Jobs API by final-validation.
#
# The task asks for no resources (num_cpus=0): Ray's default of 1 CPU cannot
# be scheduled with a hard node affinity on a node that gives Ray no CPUs
# (the seed's head has ray_num_cpus 0; GPU-only and custom-resource nodes may
# have none either), and it would wait behind work that holds every CPU of a
# node (Serve replicas). The CPUs, GPUs and custom resources each node gives
# Ray are checked from the state API, not by this probe.
import json
import socket

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

ray.init(address="auto")


@ray.remote(num_cpus=0)
def where():
    return {
        "node_id": ray.get_runtime_context().get_node_id(),
        "ip": ray.util.get_node_ip_address(),
        "hostname": socket.gethostname(),
    }


alive = [n for n in ray.nodes() if n["Alive"]]
refs = [
    where.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=n["NodeID"], soft=False)).remote()
    for n in alive
]
print("RAYDEPLOY_VALIDATION " + json.dumps(ray.get(refs)))
