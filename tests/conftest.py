"""Test-wide settings.

The tests compare JAX results with float64 NumPy transcriptions at relative tolerances down to
1e-5. On GPUs JAX's default float32 matrix product rounds through TF32 (about 1e-3 relative), which
fails those comparisons (seen on an H100: 7 of the Network ADS learning-rule tests) while the
code is correct; the tests therefore ask for full float32 products everywhere. On CPUs this
changes nothing.
"""

import jax

jax.config.update("jax_default_matmul_precision", "highest")
