"""A Serve application whose code cannot be imported."""

import not_a_module_of_anyone  # noqa: F401
from ray import serve


@serve.deployment
class Broken:
    pass


app = Broken.bind()
