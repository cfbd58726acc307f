"""Test-wide settings and shared fixtures.

The tests compare JAX results with float64 NumPy transcriptions at relative tolerances down to
1e-5. On GPUs JAX's default float32 matrix product rounds through TF32 (about 1e-3 relative), which
fails those comparisons (seen on an H100: 7 of the Network ADS learning-rule tests) while the
code is correct; the tests therefore ask for full float32 products everywhere. On CPUs this
changes nothing.
"""

import json

import jax
import numpy as np
import pytest

jax.config.update("jax_default_matmul_precision", "highest")


@pytest.fixture
def rewrite_checkpoint():
    """``rewrite(path, mutate) -> path``: rewrite a saved checkpoint in place after
    ``mutate(meta, arrays)`` changed its metadata dict and/or its arrays (corruption tests)."""

    def rewrite(path, mutate):
        with np.load(path) as z:
            arrays = {k: z[k] for k in z.files}
        meta = json.loads(arrays["__meta__"].tobytes())
        mutate(meta, arrays)
        arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
        with open(path, "wb") as fh:
            np.savez(fh, **arrays)
        return path

    return rewrite
