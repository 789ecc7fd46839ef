# raydeploy's validation job: one task pinned to every ALIVE node; prints
# where each ran. Submitted through Ray's Jobs API by final-validation.
import json
import socket

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

ray.init(address="auto")


@ray.remote(num_cpus=1)
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
